package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/readme"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/report"
)

var (
	update = flag.Bool("update", false, "rewrite README.md's generated blocks from the recorded runs in testdata/")
	record = flag.Bool("record", false, "with -update: run the scenarios again first and keep their captures and kernel samples in testdata/ (other tests read readme-walkthrough.pcapng too)")
)

const readmePath = "../README.md"

// TestReadmeExamples keeps the README's examples of runs true. The
// walkthrough excerpts are made from captures of real runs kept in
// testdata/ (readme-NAME.pcapng), judged and written by today's code, and
// must equal the README's blocks; the check example is today's output on a
// fixture. -update rewrites the blocks; -update -record records new
// captures first.
func TestReadmeExamples(t *testing.T) {
	if *update && *record {
		testenv.NetNS(t)
		out := t.TempDir()
		results, err := lab.Run(context.Background(), []*lab.Scenario{HalfClose(), Walkthrough(), Reset()}, lab.Config{Out: out})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if !r.Pass {
				t.Fatalf("%s failed; nothing recorded:\n%s", r.Scenario, r.Failure())
			}
			b, err := os.ReadFile(filepath.Join(r.Dir, report.CaptureFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(readmeCapture(r.Scenario), b, 0o644); err != nil {
				t.Fatal(err)
			}
			// What the kernel said after each segment is not in the
			// capture: keep result.json's samples beside it.
			k, err := json.MarshalIndent(r.Kernel, "", " ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(readmeKernel(r.Scenario), append(k, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]string{
		"halfclose":   stepsOf(t, walkthroughOf(t, HalfClose()), 7, 9),
		"walkthrough": stepsOf(t, walkthroughOf(t, Walkthrough()), 1, 15),
		"check":       checkExample(t, "scenarios/testdata/readme-reset.pcapng", "-scenario", "halfclose", "-stream", "1"),
		"expect":      checkExample(t, "capture/testdata/keepalive.pcap", "-expect", "handshake,no-rst,closer=server,teardown=FIN,ACK,FIN,ACK"),
	}
	for name, want := range want {
		if *update {
			if err := readme.Update(readmePath, name, want); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := readme.Block(readmePath, name)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("README example %q is not what today's code makes of testdata/; run go test ./scenarios -run TestReadme -update\nREADME:\n%s\ntoday:\n%s", name, got, want)
		}
	}
}

func readmeCapture(name string) string { return filepath.Join("testdata", "readme-"+name+".pcapng") }

// readmeKernel is where the kernel's samples of the recorded run are kept:
// its result.json's "kernel".
func readmeKernel(name string) string {
	return filepath.Join("testdata", "readme-"+name+".kernel.json")
}

// walkthroughOf judges the scenario's recorded capture and returns its
// walkthrough.md.
func walkthroughOf(t *testing.T, sc *lab.Scenario) string {
	t.Helper()
	f, err := capture.Open(readmeCapture(sc.Name))
	if err != nil {
		t.Fatalf("%v (record it with -update -record)", err)
	}
	defer f.Close()
	var pkts []capture.Packet
	if _, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		q := *p
		q.Data = append([]byte(nil), p.Data...)
		pkts = append(pkts, q)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	steps := sc.Steps(lab.Options{})
	v := expect.Match(sc.Name, steps, pkts, expect.Options{})
	if !v.Pass {
		t.Fatalf("the recorded %s capture no longer matches its steps; record it again with -update -record:\n%v", sc.Name, v.Mismatches)
	}
	// A recording without the kernel's samples shows no kernel lines.
	var samples []report.KernelSample
	if b, err := os.ReadFile(readmeKernel(sc.Name)); err == nil {
		if err := json.Unmarshal(b, &samples); err != nil {
			t.Fatal(err)
		}
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	kernel, err := lab.KernelNotes(samples, pkts, expect.English)
	if err != nil {
		t.Fatal(err)
	}
	r := &report.Result{Scenario: sc.Name, Summary: sc.Summary, Pass: true}
	return string(report.Walkthrough(&report.Run{Result: r, Steps: steps, Verdict: &v, Packets: pkts, Link: f.LinkType(), Kernel: kernel}))
}

var stepHead = regexp.MustCompile(`^(\d+)\. `)

// stepsOf returns steps first to last of a walkthrough.md, without the
// blank lines between them.
func stepsOf(t *testing.T, md string, first, last int) string {
	t.Helper()
	var b strings.Builder
	in := false
	for _, l := range strings.Split(md, "\n") {
		if m := stepHead.FindStringSubmatch(l); m != nil {
			n := 0
			for _, c := range m[1] {
				n = n*10 + int(c-'0')
			}
			in = n >= first && n <= last
		} else if strings.HasPrefix(l, "#") {
			in = false
		}
		if in && l != "" {
			b.WriteString(l + "\n")
		}
	}
	if b.Len() == 0 {
		t.Fatalf("no steps %d-%d in:\n%s", first, last, md)
	}
	return b.String()
}

// checkExample is `tcplab check` with flags on a file of the repository:
// a failure, as the README shows it.
func checkExample(t *testing.T, file string, flags ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := append(append([]string{"check"}, flags...), "../"+file)
	code := lab.Command("tcplab", args, &stdout, &stderr, All())
	if code != lab.ExitFail {
		t.Fatalf("check: exit %d, want %d; %s", code, lab.ExitFail, stderr.String())
	}
	shown := make([]string, len(flags))
	for i, f := range flags {
		shown[i] = f
		if strings.ContainsAny(f, " ,>") {
			shown[i] = "'" + f + "'"
		}
	}
	out := "$ bin/tcplab check " + strings.Join(shown, " ") + " " + file + "\n" + stdout.String() + stderr.String()
	return strings.ReplaceAll(out, "../"+file, file)
}

// TestReadmeRunExample: the README's example of `tcplab run` shows what a
// run prints today, but for the numbers (times, counts) and the order in
// which parallel scenarios report progress.
func TestReadmeRunExample(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"run", "-out", out, "handshake", "keepalive", "halfclose"}
	if code := lab.Command("tcplab", args, &stdout, &stderr, All()); code != lab.ExitPass {
		t.Fatalf("run: exit %d\n%s%s", code, stderr.String(), stdout.String())
	}
	today := "$ bin/tcplab run handshake keepalive halfclose\n" + stderr.String() + strings.ReplaceAll(stdout.String(), out, "out")
	if *update {
		if err := readme.Update(readmePath, "run", today); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := readme.Block(readmePath, "run")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := shape(got), shape(today); !slices.Equal(g, w) {
		t.Errorf("README's run example differs from a run today (numbers masked, lines sorted); run go test ./scenarios -run TestReadme -update\nREADME:\n%s\ntoday:\n%s", got, today)
	}
}

var number = regexp.MustCompile(`\d+(\.\d+)?`)

// shape masks the numbers of a run's output, squeezes the spaces that
// aligned them, and sorts its lines.
func shape(s string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		lines = append(lines, strings.Join(strings.Fields(number.ReplaceAllString(l, "N")), " "))
	}
	slices.Sort(lines)
	return lines
}
