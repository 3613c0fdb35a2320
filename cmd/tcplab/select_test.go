package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/report"
	"github.com/tcplab/tcplab/scenarios"
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

// TestAnnotateTimeSequence: -tseq draws the selected connections' data as
// a time-sequence graph, in the language -lang asks for; a selection
// without data, or with more connections than a graph holds, is a usage
// error that writes nothing.
func TestAnnotateTimeSequence(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		want   []string // in the graph, or in stderr when code is 2
		panels int
	}{
		{"one connection", []string{"-stream", "0", "FIXTURE retrans.pcap"}, 0,
			[]string{"retrans.pcap: time-sequence graph", `class="seg retransmission"`, `class="seg fast-retransmission"`, `class="sack"`}, 1},
		{"both directions", []string{"FIXTURE http-keepalive.pcap"}, 0, []string{"client to server", "server to client"}, 2},
		{"zero windows in Chinese", []string{"-lang", "zh", "FIXTURE zero-window.pcap"}, 0, []string{"时间-序号图", `class="zero-window"`}, 1},
		{"no data", []string{"FIXTURE handshake.pcap"}, 2, []string{"-tseq", "no data", "-stream N"}, 0},
		{"a connection without data", []string{"-stream", "7", "FIXTURE retrans.pcap"}, 2, []string{"-tseq", "no data"}, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := filepath.Join(dir, fmt.Sprintf("%d.svg", i))
			args := []string{"annotate", "-tseq", svg}
			for _, a := range tt.args {
				if f, ok := strings.CutPrefix(a, "FIXTURE "); ok {
					a = fixturePath(t, f)
				}
				args = append(args, a)
			}
			code, _, stderr := runTCPLab(t, args...)
			if code != tt.code {
				t.Fatalf("%q: exit %d, want %d: %s", args, code, tt.code, stderr)
			}
			b, err := os.ReadFile(svg)
			if tt.code != 0 {
				if err == nil {
					t.Errorf("%q: wrote a graph", args)
				}
				if strings.Count(stderr, "\n") != 1 {
					t.Errorf("%q: stderr %q, want one line", args, stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("%q: stderr %q lacks %q", args, stderr, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%q: the graph lacks %q", args, w)
				}
			}
			if n := strings.Count(string(b), `class="panel"`); n != tt.panels {
				t.Errorf("%q: %d panels, want %d", args, n, tt.panels)
			}
		})
	}
}

// TestRunTimeSequence runs every scenario and checks that each whose
// capture carries data has its tseq.svg, linked from index.html, and that
// the others have none.
func TestRunTimeSequence(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	code, stdout, stderr := runTCPLab(t, "run", "-out", out)
	if code != 0 {
		t.Fatalf("tcplab run: exit %d\n%s%s", code, stdout, stderr)
	}
	index, err := os.ReadFile(filepath.Join(out, report.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	withData, without := 0, 0
	for _, sc := range scenarios.All() {
		dir := filepath.Join(out, sc.Name)
		f, err := capture.Open(filepath.Join(dir, report.CaptureFile))
		if err != nil {
			t.Fatal(err)
		}
		data := 0
		_, err = capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
			if p.TCP && p.Segment.Len > 0 {
				data++
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		_, err = os.Stat(filepath.Join(dir, report.TimeSeqFile))
		linked := strings.Contains(string(index), `href="`+sc.Name+"/"+report.TimeSeqFile+`"`)
		switch {
		case data > 0 && (err != nil || !linked):
			t.Errorf("%s: %d data segments, but %s: %v, linked from index.html: %v", sc.Name, data, report.TimeSeqFile, err, linked)
		case data == 0 && (err == nil || linked):
			t.Errorf("%s: no data, but a %s (linked: %v)", sc.Name, report.TimeSeqFile, linked)
		}
		if data > 0 {
			withData++
		} else {
			without++
		}
	}
	if withData == 0 || without == 0 {
		t.Errorf("%d scenarios with data, %d without: want some of each", withData, without)
	}
}

// TestAnnotateInterface: a pcapng file of two capture points holds each
// segment twice; annotate says so, -interface N analyses one point alone
// (no copy taken for a retransmission), and a point the file lacks is a
// usage error naming those it has.
func TestAnnotateInterface(t *testing.T) {
	src, err := capture.Open(fixturePath(t, "keepalive.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "points.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := capture.NewWriterPoints(f, []capture.Point{{Name: "client eth0", Link: src.LinkType()}, {Name: "server eth0", Link: src.LinkType()}})
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for {
		data, ci, err := src.ReadPacketData()
		if err != nil {
			break
		}
		frames++
		for point := range 2 {
			c := ci
			c.InterfaceIndex = point
			c.Timestamp = ci.Timestamp.Add(time.Duration(point) * 20 * time.Microsecond)
			if err := w.WritePacket(c, data, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	code, stdout, stderr := runTCPLab(t, "annotate", "-summary", path)
	if code != 0 || !strings.Contains(stdout, "frames of 2 capture points (0 client eth0, 1 server eth0)") || !strings.Contains(stdout, "retransmission=") {
		t.Errorf("both points: exit %d, stdout %q, stderr %q; want the two points named and copies taken for retransmissions", code, stdout, stderr)
	}
	for point := range 2 {
		code, stdout, stderr = runTCPLab(t, "annotate", "-summary", "-interface", strconv.Itoa(point), path)
		if code != 0 || !strings.HasPrefix(stdout, strconv.Itoa(frames)+" frames: "+strconv.Itoa(frames)+" TCP") || strings.Contains(stdout, "retransmission") || strings.Contains(stdout, "capture points") {
			t.Errorf("-interface %d: exit %d, stdout %q, stderr %q; want %d frames and no retransmission", point, code, stdout, stderr, frames)
		}
	}
	code, _, stderr = runTCPLab(t, "annotate", "-interface", "2", path)
	if code != 2 || !strings.Contains(stderr, "-interface 2") || !strings.Contains(stderr, "1 server eth0") {
		t.Errorf("-interface 2: exit %d, stderr %q; want 2 and the interfaces the file has", code, stderr)
	}
}
