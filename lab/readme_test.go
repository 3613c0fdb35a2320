package lab_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeExampleIsTrue: every line of the README's Go code is a line of
// examples/teardown (or of scenarios/rstchallenge.go, for the scripted
// peer's section), but for the "// ..." lines that shorten it, so that
// the section a newcomer follows cannot drift from code that CI runs.
func TestReadmeExampleIsTrue(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../examples/teardown/*.go")
	more, _ := filepath.Glob("../examples/teardown/cmd/*/*.go")
	// The section for packetdrill users quotes a scripted scenario.
	more = append(more, "../scenarios/rstchallenge.go")
	lines := map[string]bool{}
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			lines[strings.TrimSpace(l)] = true
		}
	}
	blocks := strings.Split(string(readme), "```go\n")
	if len(blocks) < 2 {
		t.Fatal("README has no Go code")
	}
	for _, b := range blocks[1:] {
		code, _, _ := strings.Cut(b, "```")
		for _, l := range strings.Split(code, "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "// ...") {
				continue
			}
			if !lines[l] {
				t.Errorf("README's Go code has a line that examples/teardown does not: %q", l)
			}
		}
	}
}

// TestMakeHelp: make's help names every target with its description in
// one column, and shows no unexpanded make variable.
func TestMakeHelp(t *testing.T) {
	out, err := exec.Command("make", "-s", "-C", "..", "help").Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for _, l := range lines {
		if strings.Contains(l, "$(") {
			t.Errorf("unexpanded variable: %q", l)
		}
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "make" {
			t.Errorf("not a target line: %q", l)
			continue
		}
		end := strings.Index(l, "make "+f[1]) + len("make "+f[1])
		c := end + len(l[end:]) - len(strings.TrimLeft(l[end:], " "))
		if col < 0 {
			col = c
		} else if c != col {
			t.Errorf("description of %s at column %d, others at %d", f[1], c, col)
		}
	}
	for _, target := range []string{"lab", "test", "soak", "bench", "bench-bulk", "fuzz"} {
		if !strings.Contains(string(out), "make "+target+" ") {
			t.Errorf("make help lacks %s", target)
		}
	}
}
