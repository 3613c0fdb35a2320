package scenarios

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
)

// TestWalkthroughSteps runs the blog post's session and checks its 15 steps: all
// present in order in walkthrough.md (here in Chinese, the blog post's
// language), each step that puts segments on the wire matched by segments
// that come after those of the step before.
func TestWalkthroughSteps(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	opt := lab.Options{Lang: expect.Chinese}
	results, err := lab.Run(context.Background(), []*lab.Scenario{Walkthrough()}, lab.Config{Out: out, Options: opt})
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; !r.Pass {
		t.Fatalf("walkthrough failed:\n%s", r.Failure())
	}
	dir := filepath.Join(out, "walkthrough")
	md, err := os.ReadFile(filepath.Join(dir, "walkthrough.md"))
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, m := range regexp.MustCompile(`(?m)^(\d+)\. `).FindAllSubmatch(md, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		nums = append(nums, n)
	}
	if len(nums) != 15 {
		t.Fatalf("walkthrough.md has steps %v, want 1..15", nums)
	}
	for i, n := range nums {
		if n != i+1 {
			t.Fatalf("walkthrough.md has steps %v, want 1..15 in order", nums)
		}
	}
	for _, want := range []string{"三次握手后", "window update", "keep-alive", "tcp连接通道完全断开"} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).Match(md) {
			t.Errorf("walkthrough.md lacks the blog post's words %q", want)
		}
	}

	sc := Walkthrough()
	v, err := lab.CheckFile(filepath.Join(dir, "capture.pcapng"), sc, opt, expect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Pass {
		t.Fatalf("capture.pcapng does not match: %+v", v.Mismatches)
	}
	steps := sc.Steps(opt)
	last := -1
	for i, idx := range v.Matched {
		if i == 3 { // step 4, "the connection is established", is a note
			if len(idx) != 0 {
				t.Errorf("step 4 matched segments %v", idx)
			}
			continue
		}
		if len(idx) == 0 {
			t.Errorf("step %d (%s) matched no segment", i+1, steps[i])
			continue
		}
		if idx[0] <= last {
			t.Errorf("step %d starts at segment %d, before the end of step %d (%d)", i+1, idx[0], i, last)
		}
		last = idx[len(idx)-1]
	}
}
