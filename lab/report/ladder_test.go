package report

import (
	"encoding/xml"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/safefile"
	"github.com/tcplab/tcplab/lab/expect"
)

// fakeCapture builds the segments of a made-up capture, one call per
// segment, numbering frames and keeping time.
type fakeCapture struct {
	start time.Time
	seen  []capture.Packet
	steps []expect.StepNum
}

// add appends a segment of stream at time at (since the start), with the
// states after it and the step it matched ("" for none).
func (c *fakeCapture) add(stream int, dir capture.Dir, at time.Duration, flags capture.Flags, seq, ack uint32, n int,
	labels capture.Labels, client, server capture.State, step expect.StepNum) {
	cl := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(40000+stream))
	sv := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), 8000)
	// Raw numbers from each side's ISN: the client's 1000, the server's
	// 5000, as capture.Ending reads them.
	src, dst, isn, peerISN := cl, sv, uint32(1000), uint32(5000)
	if dir == capture.ServerToClient {
		src, dst, isn, peerISN = sv, cl, 5000, 1000
	}
	c.seen = append(c.seen, capture.Packet{
		Info: gopacket.CaptureInfo{Timestamp: c.start.Add(at)},
		TCP:  true,
		Segment: capture.Segment{
			Frame: len(c.seen) + 1, Time: c.start.Add(at), Src: src, Dst: dst,
			Flags: flags, Seq: isn + seq, Ack: peerISN + ack, Window: 512, Len: n,
		},
		Annotation: capture.Annotation{
			Stream: stream, Dir: dir, RelSeq: seq, RelAck: ack, Win: 65536, Labels: labels,
			Client: client, Server: server,
		},
	})
	c.steps = append(c.steps, step)
}

// verdict returns the verdict of the fakeCapture with these mismatches.
func (c *fakeCapture) verdict(mm ...expect.Mismatch) *expect.Verdict {
	return &expect.Verdict{Pass: len(mm) == 0, Mismatches: mm, StepOf: c.steps, Why: make([]*expect.Step, len(c.seen))}
}

var (
	labelKeepAlive    = capture.Labels(0).With(capture.KeepAlive)
	labelKeepAliveACK = capture.Labels(0).With(capture.KeepAliveACK)
)

// handshake adds a three-way handshake on stream s at time at; step0 is the
// number of the step before the first, or -1 when the steps did not match.
func (c *fakeCapture) handshake(s int, at time.Duration, step0 int) {
	st := func(k int) expect.StepNum {
		if step0 < 0 {
			return 0
		}
		return expect.StepNum(step0 + k)
	}
	c.add(s, capture.ClientToServer, at, capture.SYN, 0, 0, 0, 0, capture.SynSent, capture.SynReceived, st(1))
	c.add(s, capture.ServerToClient, at+100*time.Microsecond, capture.SYN|capture.ACK, 0, 1, 0, 0, capture.Established, capture.SynReceived, st(2))
	c.add(s, capture.ClientToServer, at+150*time.Microsecond, capture.ACK, 1, 1, 0, 0, capture.Established, capture.Established, st(3))
}

// keepAliveTalk is a request, a keep-alive after 1.5 s of silence, a
// response and the client's close: every segment matched.
func keepAliveTalk() *fakeCapture {
	c := &fakeCapture{start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	ms := time.Millisecond
	c.handshake(0, 0, 0)
	c.add(0, capture.ClientToServer, 2*ms, capture.PSH|capture.ACK, 1, 1, 5, 0, capture.Established, capture.Established, 5)
	c.add(0, capture.ServerToClient, 3*ms, capture.ACK, 1, 6, 0, 0, capture.Established, capture.Established, 6)
	c.add(0, capture.ServerToClient, 1503*ms, capture.ACK, 0, 6, 0, labelKeepAlive, capture.Established, capture.Established, 7)
	c.add(0, capture.ClientToServer, 1504*ms, capture.ACK, 6, 1, 0, labelKeepAliveACK, capture.Established, capture.Established, 7)
	c.add(0, capture.ServerToClient, 1600*ms, capture.PSH|capture.ACK, 1, 6, 3, 0, capture.Established, capture.Established, 8)
	c.add(0, capture.ClientToServer, 1601*ms, capture.FIN|capture.ACK, 6, 4, 0, 0, capture.FinWait1, capture.CloseWait, 9)
	c.add(0, capture.ServerToClient, 1602*ms, capture.FIN|capture.ACK, 4, 7, 0, 0, capture.TimeWait, capture.LastACK, 10)
	c.add(0, capture.ClientToServer, 1603*ms, capture.ACK, 7, 5, 0, 0, capture.TimeWait, capture.Closed, 11)
	return c
}

// twoStreams has a good first connection and a second one that a RST ends
// where a FIN was expected: Match leaves all of the second unmatched.
func twoStreams() (*fakeCapture, expect.Mismatch) {
	c := &fakeCapture{start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	ms := time.Millisecond
	c.handshake(0, 0, 0)
	c.handshake(1, ms, -1)
	c.add(0, capture.ClientToServer, 2*ms, capture.FIN|capture.ACK, 1, 1, 0, 0, capture.FinWait1, capture.CloseWait, 4)
	c.add(1, capture.ClientToServer, 3*ms, capture.RST|capture.ACK, 1, 1, 0, 0, capture.Closed, capture.Closed, 0)
	c.add(0, capture.ServerToClient, 4*ms, capture.FIN|capture.ACK, 1, 2, 0, 0, capture.TimeWait, capture.LastACK, 5)
	c.add(0, capture.ClientToServer, 5*ms, capture.ACK, 2, 2, 0, 0, capture.TimeWait, capture.Closed, 6)
	return c, expect.Mismatch{
		Scenario: "two", Step: 10, Diffs: []expect.Diff{{Field: expect.FieldFlags, Want: "FIN,ACK", Got: "RST,ACK"}}, Frame: 8,
		Expected: "C>S FIN,ACK     seq=* ack=* len=*", Actual: expect.Format(&c.seen[7], c.seen[0].Segment.Time),
	}
}

func TestLadder(t *testing.T) {
	talk := keepAliveTalk()
	badLen := keepAliveTalk()
	for i := range badLen.steps {
		badLen.steps[i] = 0 // a failed connection has no matched steps
	}
	badLen.seen[3].Segment.Len = 7
	two, rst := twoStreams()
	missing := keepAliveTalk()
	missing.seen = missing.seen[:9]
	missing.steps = missing.steps[:9]

	tests := []struct {
		name string
		c    *fakeCapture
		mm   []expect.Mismatch
		// want* are what the diagram must show.
		wantText       []string
		wantNoText     []string
		wantMismatch   []int // frames drawn as the mismatch
		wantNoStep     int   // arrows of segments that matched no step
		wantClient     []string
		wantServer     []string
		wantGapMarkers int
	}{{
		name: "keep-alive",
		c:    talk,
		wantText: []string{
			"keep-alive PASS", "client", "server", "10.0.0.1:40000", "10.0.0.2:8000",
			"SYN seq=0 ack=0 len=0  step 1", "SYN,ACK seq=0 ack=1 len=0  step 2",
			"PSH,ACK seq=1 ack=1 len=5  step 5", "ACK seq=0 ack=6 len=0 [keep-alive]  step 7",
			"ACK seq=6 ack=1 len=0 [keep-alive-ack]  step 7", "FIN,ACK seq=4 ack=7 len=0  step 10",
			"… 1.5 s later …", "+0.000s", "+1.503s", "11 TCP segments on 1 connection.",
		},
		wantNoText:     []string{"connection 0", "  no step", "  mismatch", "✗"},
		wantClient:     []string{"SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "TIME_WAIT"},
		wantServer:     []string{"SYN_RECEIVED", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"},
		wantGapMarkers: 1,
	}, {
		name: "bad length",
		c:    badLen,
		mm:   []expect.Mismatch{{Scenario: "bad length", Step: 5, Diffs: []expect.Diff{{Field: expect.FieldLen, Want: "5", Got: "7"}}, Frame: 4}},
		wantText: []string{
			"bad length FAIL", "PSH,ACK seq=1 ack=1 len=7  mismatch", "SYN seq=0 ack=0 len=0  no step",
			"✗ step 5: len: expected 5, got 7",
		},
		wantNoText:     []string{"  step 1"},
		wantMismatch:   []int{4},
		wantNoStep:     10,
		wantClient:     []string{"SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "TIME_WAIT"},
		wantServer:     []string{"SYN_RECEIVED", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"},
		wantGapMarkers: 1,
	}, {
		name: "two streams",
		c:    two,
		mm:   []expect.Mismatch{rst},
		wantText: []string{
			"connection 0", "connection 1", "10.0.0.1:40000", "10.0.0.1:40001",
			"RST,ACK seq=1 ack=1 len=0  mismatch", "✗ step 10: flags: expected FIN,ACK, got RST,ACK",
			"FIN,ACK seq=1 ack=2 len=0  step 5", "10 TCP segments on 2 connections.",
		},
		wantMismatch: []int{8},
		wantNoStep:   3,
		// Connection 0's states, then connection 1's, each from the start.
		wantClient: []string{"SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "TIME_WAIT", "SYN_SENT", "ESTABLISHED", "CLOSED"},
		wantServer: []string{"SYN_RECEIVED", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED", "SYN_RECEIVED", "ESTABLISHED", "CLOSED"},
	}, {
		name: "missing segment",
		c:    missing,
		mm:   []expect.Mismatch{{Scenario: "missing segment", Step: 10, Diffs: []expect.Diff{{Field: expect.FieldMissing, Want: "a segment", Got: "none"}}}},
		wantText: []string{
			"missing segment FAIL", "✗ step 10: missing: expected a segment, got none", "FIN,ACK seq=6 ack=4 len=0  step 9",
		},
		wantClient:     []string{"SYN_SENT", "ESTABLISHED", "FIN_WAIT_1"},
		wantServer:     []string{"SYN_RECEIVED", "ESTABLISHED", "CLOSE_WAIT"},
		wantGapMarkers: 1,
	}, {
		name:       "nothing captured",
		c:          &fakeCapture{},
		mm:         []expect.Mismatch{{Scenario: "nothing captured", Step: 1, Diffs: []expect.Diff{{Field: expect.FieldMissing, Want: "a segment", Got: "none"}}}},
		wantText:   []string{"nothing captured FAIL", "No TCP segments were captured.", "✗ step 1: missing"},
		wantNoText: []string{"client"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := Ladder(tt.name, tt.c.seen, tt.c.verdict(tt.mm...), expect.English)
			svg := parseSVG(t, doc)

			root := svg[0]
			if root.name != "svg" {
				t.Fatalf("root element is <%s>, want <svg>", root.name)
			}
			w, _ := strconv.Atoi(root.attr["width"])
			h, _ := strconv.Atoi(root.attr["height"])
			if w <= 0 || h <= 0 || root.attr["viewBox"] != "0 0 "+root.attr["width"]+" "+root.attr["height"] {
				t.Errorf("svg width=%q height=%q viewBox=%q: want positive sizes and a matching viewBox",
					root.attr["width"], root.attr["height"], root.attr["viewBox"])
			}

			var arrows, noStep int
			var mismatched []int
			var texts, clientStates, serverStates []string
			gaps := 0
			for _, e := range svg {
				classes := strings.Fields(e.attr["class"])
				switch {
				case e.name == "line" && slices.Contains(classes, "seg"):
					arrows++
					frame, _ := strconv.Atoi(e.attr["data-frame"])
					if slices.Contains(classes, "mismatch") {
						mismatched = append(mismatched, frame)
						if e.attr["stroke"] != colourBad {
							t.Errorf("mismatched arrow of frame %d has stroke %q, want %q", frame, e.attr["stroke"], colourBad)
						}
					}
					if slices.Contains(classes, "nostep") {
						noStep++
						if e.attr["stroke"] != colourBad {
							t.Errorf("unmatched arrow of frame %d has stroke %q, want %q", frame, e.attr["stroke"], colourBad)
						}
					}
					if slices.Contains(classes, "matched") && e.attr["stroke"] != colourArrow {
						t.Errorf("matched arrow of frame %d has stroke %q, want %q", frame, e.attr["stroke"], colourArrow)
					}
				case e.name == "text" && slices.Contains(classes, "state"):
					if slices.Contains(classes, "client") {
						clientStates = append(clientStates, e.text)
					} else {
						serverStates = append(serverStates, e.text)
					}
				case e.name == "text" && slices.Contains(classes, "gap"):
					gaps++
				}
				if e.name == "text" {
					texts = append(texts, e.text)
				}
			}
			if arrows != len(tt.c.seen) {
				t.Errorf("%d arrows, want one per segment: %d", arrows, len(tt.c.seen))
			}
			if !slices.Equal(mismatched, tt.wantMismatch) {
				t.Errorf("mismatch arrows at frames %v, want %v", mismatched, tt.wantMismatch)
			}
			if noStep != tt.wantNoStep {
				t.Errorf("%d arrows of segments that matched no step, want %d", noStep, tt.wantNoStep)
			}
			if !slices.Equal(clientStates, tt.wantClient) {
				t.Errorf("client states at the left edge:\n got  %v\n want %v", clientStates, tt.wantClient)
			}
			if !slices.Equal(serverStates, tt.wantServer) {
				t.Errorf("server states at the right edge:\n got  %v\n want %v", serverStates, tt.wantServer)
			}
			if gaps != tt.wantGapMarkers {
				t.Errorf("%d gap markers, want %d", gaps, tt.wantGapMarkers)
			}
			all := strings.Join(texts, "\n")
			for _, s := range tt.wantText {
				if !strings.Contains(all, s) {
					t.Errorf("no text %q in the diagram; its texts:\n%s", s, all)
				}
			}
			for _, s := range tt.wantNoText {
				if strings.Contains(all, s) {
					t.Errorf("text %q in the diagram, want none", s)
				}
			}
		})
	}
}

// TestLadderEscapes checks that text from a scenario cannot break the
// document.
func TestLadderEscapes(t *testing.T) {
	c := keepAliveTalk()
	name := `<script>&"'`
	mm := expect.Mismatch{Scenario: name, Step: 5, Diffs: []expect.Diff{{Field: expect.FieldCheck, Want: "check passes", Got: `MSS <1460> & "more"`}}, Frame: 4}
	svg := parseSVG(t, Ladder(name, c.seen, c.verdict(mm), expect.English))
	var found bool
	for _, e := range svg {
		if e.name == "script" {
			t.Fatal("the scenario's name made a <script> element")
		}
		found = found || strings.Contains(e.text, `got MSS <1460> & "more"`)
	}
	if !found {
		t.Error("the mismatch's text did not survive escaping")
	}
}

func TestWriteLadder(t *testing.T) {
	dir := t.TempDir()
	c := keepAliveTalk()
	if err := safefile.WriteFile(filepath.Join(dir, LadderFile), Ladder("keep-alive", c.seen, c.verdict(), expect.English)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ladder.svg"))
	if err != nil {
		t.Fatal(err)
	}
	parseSVG(t, b)
	if names, err := os.ReadDir(dir); err != nil || len(names) != 1 {
		t.Errorf("temporary file left behind: %v %v", names, err)
	}
	if err := safefile.WriteFile(filepath.Join(dir, "no such dir", LadderFile), Ladder("x", nil, nil, expect.English)); err == nil {
		t.Error("writing a ladder into a missing directory succeeded")
	}
}

// svgElem is an element of a parsed SVG document; text is all the
// character data inside it, tspans included.
type svgElem struct {
	name string
	attr map[string]string
	text string
}

// parseSVG decodes the whole document as XML and returns its elements in
// document order; it fails the test if the document is not well formed.
func parseSVG(t *testing.T, doc []byte) []*svgElem {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(doc)))
	d.Strict = true
	var elems, open []*svgElem
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &svgElem{name: tok.Name.Local, attr: map[string]string{}}
			for _, a := range tok.Attr {
				e.attr[a.Name.Local] = a.Value
			}
			elems = append(elems, e)
			open = append(open, e)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			for _, e := range open {
				e.text += string(tok)
			}
		}
	}
	if len(elems) == 0 {
		t.Fatal("the SVG has no elements")
	}
	if len(open) != 0 {
		t.Fatalf("the SVG ends inside <%s>", open[len(open)-1].name)
	}
	return elems
}

// TestLadderSaysHowItEnded: under each connection the ladder says how it
// ended in capture.Ending's words, the walkthrough's, in either language.
func TestLadderSaysHowItEnded(t *testing.T) {
	talk := keepAliveTalk()
	two, rst := twoStreams()
	tests := []struct {
		name string
		c    *fakeCapture
		v    *expect.Verdict
		lang expect.Lang
		want []string
	}{
		{"client closes", talk, talk.verdict(), expect.English, []string{"How it ended: the client closed first (FIN frame 9), the server after it (FIN frame 10); both FINs acknowledged"}},
		{"two connections", two, two.verdict(rst), expect.English, []string{"How it ended: the client closed first (FIN frame 7)", "How it ended: reset by the client (frame 8) in ESTABLISHED"}},
		{"chinese", talk, talk.verdict(), expect.Chinese, []string{"连接如何结束: 客户端先关闭 (FIN 第 9 帧), 服务端随后关闭 (FIN 第 10 帧); 两个 FIN 都已确认"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := string(Ladder("x", tt.c.seen, tt.v, tt.lang))
			for _, w := range tt.want {
				if !strings.Contains(doc, w) {
					t.Errorf("the ladder lacks %q", w)
				}
			}
			walk := string(CaptureWalkthrough("x", tt.c.seen, tt.lang))
			for _, w := range tt.want {
				_, text, _ := strings.Cut(w, ": ")
				if !strings.Contains(walk, text) {
					t.Errorf("the walkthrough lacks %q", text)
				}
			}
		})
	}
}

// TestWalkthroughSaysFINsCrossed: a second FIN that does not acknowledge
// the first is explained as crossed, by capture.Ending's rule; one that
// does, as the second side closing.
func TestWalkthroughSaysFINsCrossed(t *testing.T) {
	ms := time.Millisecond
	crossed := &fakeCapture{start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	crossed.handshake(0, 0, 0)
	crossed.add(0, capture.ClientToServer, 2*ms, capture.FIN|capture.ACK, 1, 1, 0, 0, capture.FinWait1, capture.Established, 5)
	crossed.add(0, capture.ServerToClient, 2*ms, capture.FIN|capture.ACK, 1, 1, 0, 0, capture.Closing, capture.Closing, 6)
	crossed.add(0, capture.ClientToServer, 3*ms, capture.ACK, 2, 2, 0, 0, capture.Closing, capture.TimeWait, 7)
	crossed.add(0, capture.ServerToClient, 3*ms, capture.ACK, 2, 2, 0, 0, capture.TimeWait, capture.TimeWait, 7)
	const says = "the FINs crossed, a simultaneous close"
	if walk := string(CaptureWalkthrough("x", crossed.seen, expect.English)); !strings.Contains(walk, says) {
		t.Errorf("the walkthrough of crossing FINs lacks %q:\n%s", says, walk)
	}
	if walk := string(CaptureWalkthrough("x", keepAliveTalk().seen, expect.English)); strings.Contains(walk, says) {
		t.Errorf("the walkthrough of a client's close says %q:\n%s", says, walk)
	}
}

// TestWalkthroughSaysRSTIgnored: a RST inside the window but not at
// RCV.NXT is told as ignored, challenged, in its step and in the ending,
// in both languages, and is no reset; the exact RST after it is the
// reset.
func TestWalkthroughSaysRSTIgnored(t *testing.T) {
	ms := time.Millisecond
	c := &fakeCapture{start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	c.handshake(0, 0, 0)
	c.add(0, capture.ClientToServer, 2*ms, capture.RST, 101, 0, 0, 0, capture.Established, capture.Established, 4)
	c.add(0, capture.ServerToClient, 2*ms, capture.ACK, 1, 1, 0, 0, capture.Established, capture.Established, 5)
	c.add(0, capture.ClientToServer, 3*ms, capture.RST, 1, 0, 0, 0, capture.Closed, capture.Closed, 6)
	for lang, says := range map[expect.Lang][]string{
		expect.English: {"reset by the client (frame 6) in ESTABLISHED", "the server ignored the client's RST (frame 4): inside its window, but 100 past RCV.NXT, so it answered with a challenge ACK",
			"4. The client sends a RST 100 past RCV.NXT, inside the server's window: it is not taken", "6. The client resets the connection"},
		expect.Chinese: {"客户端在 ESTABLISHED 状态重置了连接 (第 6 帧)", "服务端忽略了客户端的 RST (第 4 帧): 它在窗口内, 但比 RCV.NXT 大 100, 所以回了一个挑战 ACK",
			"4. 客户端发出一个 RST, 比 RCV.NXT 大 100, 在服务端的窗口内: 它不被接受"},
	} {
		walk := string(CaptureWalkthrough("x", c.seen, lang))
		for _, s := range says {
			if !strings.Contains(walk, s) {
				t.Errorf("the %v walkthrough lacks %q:\n%s", lang, s, walk)
			}
		}
	}
}
