package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
)

// TestAnnotateSelect: -stream, -port and a BPF filter (as -filter or after
// the file, as tcpdump takes it) choose what is printed and written; every
// frame is still analysed, so labels do not change.
func TestAnnotateSelect(t *testing.T) {
	retrans := fixturePath(t, "retrans.pcap") // two connections, ports 40000 and 40001
	lines := func(out string) (segs []string, summaries []string) {
		for _, l := range strings.Split(out, "\n") {
			switch {
			case strings.HasPrefix(l, "stream "):
				summaries = append(summaries, l)
			case len(l) > 10 && l[0] == ' ':
				segs = append(segs, l)
			}
		}
		return
	}
	_, all, _ := runTCPLab(t, "annotate", retrans)
	allSegs, _ := lines(all)
	tests := []struct {
		args      []string
		segs      int // -1: any number but all
		summaries int
		want      string // in every segment line
	}{
		{[]string{"-stream", "1"}, 865, 1, "   1 "},
		{[]string{"-port", "40000"}, 884, 1, "   0 "},
		{[]string{"-filter", "tcp src port 40001"}, -1, 1, "   1 C>S"},
		{[]string{"tcp src port 40001"}, -1, 1, "   1 C>S"},
		{[]string{"-summary"}, 0, 2, ""},
	}
	for _, tt := range tests {
		args := append([]string{"annotate"}, tt.args...)
		if !strings.HasPrefix(tt.args[0], "-") {
			args = []string{"annotate", retrans, tt.args[0]}
		} else {
			args = append(args, retrans)
		}
		code, stdout, stderr := runTCPLab(t, args...)
		if code != 0 {
			t.Errorf("%q: exit %d: %s", args, code, stderr)
			continue
		}
		segs, sums := lines(stdout)
		if (tt.segs >= 0 && len(segs) != tt.segs) || (tt.segs < 0 && (len(segs) == 0 || len(segs) >= len(allSegs))) || len(sums) != tt.summaries {
			t.Errorf("%q: %d segments, %d summaries; want %d and %d", args, len(segs), len(sums), tt.segs, tt.summaries)
		}
		for _, s := range segs {
			if !strings.Contains(s, tt.want) {
				t.Errorf("%q: a segment not selected: %s", args, s)
				break
			}
			// The same line as without selection: labels are unchanged.
			found := false
			for _, a := range allSegs {
				if a == s {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%q: %q is not a line of the whole file's annotation", args, s)
				break
			}
		}
	}
	if code, _, stderr := runTCPLab(t, "annotate", retrans, "tcp port"); code != 2 || !strings.Contains(stderr, `filter "tcp port"`) {
		t.Errorf("a bad filter: exit %d, %q", code, stderr)
	}
}

// TestAnnotateLadderAndSelectedCopy: -ladder draws the selected
// connection, one plain arrow per segment, and -o with a selection writes
// only the selected frames.
func TestAnnotateLadderAndSelectedCopy(t *testing.T) {
	dir := t.TempDir()
	svg, copyFile := filepath.Join(dir, "l.svg"), filepath.Join(dir, "one.pcapng")
	code, _, stderr := runTCPLab(t, "annotate", "-stream", "0", "-ladder", svg, "-o", copyFile, fixturePath(t, "http-keepalive.pcap"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "data-frame="); n != 14 {
		t.Errorf("%d arrows, want 14", n)
	}
	if strings.Contains(string(b), "head-bad)") || strings.Contains(string(b), "PASS") {
		t.Error("an unjudged ladder shows a verdict or red arrows")
	}
	f, err := capture.Open(copyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := capture.Walk(f, capture.NewAnnotator(), func(*capture.Packet) error { return nil })
	if err != nil || n.TCP != 14 {
		t.Errorf("the copy has %d TCP frames (%v), want 14", n.TCP, err)
	}
	if code, _, stderr := runTCPLab(t, "annotate", "-ladder", filepath.Join(dir, "x.svg"), fixturePath(t, "retrans.pcap")); code != 0 {
		t.Errorf("two connections: exit %d: %s", code, stderr)
	}
}

// TestAnnotateWalkthrough: -walkthrough tells the selected connection as
// numbered steps, one per segment here, in the language -lang asks for; a
// bad -lang is a usage error that writes nothing.
func TestAnnotateWalkthrough(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ lang, want string }{
		{"en", "1. The client opens a connection"},
		{"zh", "1. 客户端发起连接"},
	} {
		md := filepath.Join(dir, tc.lang+".md")
		code, _, stderr := runTCPLab(t, "annotate", "-stream", "0", "-lang", tc.lang, "-walkthrough", md, fixturePath(t, "http-keepalive.pcap"))
		if code != 0 {
			t.Fatalf("-lang %s: exit %d: %s", tc.lang, code, stderr)
		}
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), "\n14. ") || strings.Contains(string(b), "\n15. ") {
			t.Errorf("-lang %s: want %q and 14 steps:\n%s", tc.lang, tc.want, b)
		}
	}
	bad := filepath.Join(dir, "bad.md")
	code, _, stderr := runTCPLab(t, "annotate", "-lang", "fr", "-walkthrough", bad, fixturePath(t, "http-keepalive.pcap"))
	if code != 2 || !strings.Contains(stderr, "-lang") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("-lang fr: exit %d, stderr %q; want 2 and one line naming -lang", code, stderr)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("-lang fr wrote a walkthrough")
	}
}
