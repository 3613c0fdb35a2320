package pkt_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/readme"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/pkt"
)

const (
	readmePath = "../../README.md"
	readmePkt  = "lab/pkt/testdata/readme.pkt"
)

// times are the figures of a run that change from run to run.
var times = regexp.MustCompile(`\d+(\.\d+)?(s|ms|µs)`)

// blanks are runs of spaces, which a table's column widths vary.
var blanks = regexp.MustCompile(` +`)

// tickLine is the line -tolerance auto prints on a kernel whose tick is
// longer than a millisecond, which the README's machine has and another
// may not.
var tickLine = regexp.MustCompile(`(?m)^ *-tolerance auto: this kernel's tick .*\n`)

// sameRun reports whether two outputs differ only in times, the widths
// of columns and the kernel's tick.
func sameRun(a, b string) bool {
	norm := func(s string) string {
		return blanks.ReplaceAllString(times.ReplaceAllString(tickLine.ReplaceAllString(s, ""), "T"), " ")
	}
	return norm(a) == norm(b)
}

// TestReadmePkt: the README's section for packetdrill users shows the
// script, what tcplab pkt prints on it and its walkthrough (times
// aside), and its Go conversion, as they are today (go test -update
// rewrites them).
func TestReadmePkt(t *testing.T) {
	// The test moves to another folder below: the README's path first.
	rp, err := filepath.Abs(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("testdata/readme.pkt")
	if err != nil {
		t.Fatal(err)
	}
	s, err := pkt.Parse(readmePkt, script)
	if err != nil {
		t.Fatal(err)
	}
	src, err := pkt.Go(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{
		"pkt-script": "$ cat " + readmePkt + "\n" + string(script),
		"pkt-go":     "$ bin/tcplab pkt -go " + readmePkt + "\n" + string(src),
	}
	if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		testenv.SkipOrFail(t, "cannot open /dev/net/tun: "+err.Error(), "run as root, with the tun module")
	} else {
		f.Close()
	}
	// Run where readmePkt and out/pkt are the paths the README shows.
	data, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "lab", "pkt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, filepath.Join(root, "lab", "pkt", "testdata")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	out := filepath.Join(root, "out", "pkt")
	var stdout, stderr bytes.Buffer
	// The example widens the tolerance by the machine's noise, as a busy
	// machine needs: it runs in go test beside other packages' tests.
	if code := lab.Command("tcplab", []string{"pkt", "-tolerance", "auto", readmePkt}, &stdout, &stderr, nil); code != lab.ExitPass {
		t.Fatalf("tcplab pkt: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	blocks["pkt-run"] = "$ bin/tcplab pkt -tolerance auto " + readmePkt + "\n" + strings.TrimPrefix(stdout.String(), "\n")
	walk, err := os.ReadFile(filepath.Join(out, "readme", "walkthrough.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks["pkt-walkthrough"] = "$ cat out/pkt/readme/walkthrough.md\n" + string(walk)
	for name, today := range blocks {
		today = strings.TrimRight(today, "\n") + "\n"
		if flag.Lookup("update").Value.(flag.Getter).Get().(bool) {
			if err := readme.Update(rp, name, today); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := readme.Block(rp, name)
		if err != nil {
			t.Fatal(err)
		}
		if !sameRun(got, today) {
			t.Errorf("README's %s block is not what tcplab pkt does today; run go test ./lab/pkt -run TestReadme -update\nREADME:\n%s\ntoday:\n%s", name, got, today)
		}
	}
}
