package capture

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/internal/testenv"
)

// wiresharkView is what tshark's two-pass analysis says of one TCP frame.
type wiresharkView struct {
	stream   int
	seq, ack uint32 // relative
	len      int
	win      int // calculated (scaled) window
	labels   Labels
}

// wiresharkLabels are the labels that stand for a tcp.analysis field of
// Wireshark's, in label order: all of them.
var wiresharkLabels = func() []Label {
	var ls []Label
	for l := Label(0); l.WiresharkField() != ""; l++ {
		ls = append(ls, l)
	}
	return ls
}()

// tsharkView runs tshark on path and returns its view of each TCP frame, by
// frame number. A field tshark does not show reads as 0.
func tsharkView(t *testing.T, path string) map[int]wiresharkView {
	t.Helper()
	rows, err := tsharkRows(testenv.Tool(t, "tshark"), path, "tcp", viewFields())
	if err != nil {
		t.Fatal(err)
	}
	return viewsOf(t, rows)
}

// viewFields are the fields of tsharkView's view, in the order viewsOf
// reads them.
func viewFields() []string {
	fields := []string{"frame.number", "tcp.stream", "tcp.seq", "tcp.ack", "tcp.len", "tcp.window_size"}
	for _, l := range wiresharkLabels {
		fields = append(fields, l.WiresharkField())
	}
	return fields
}

// tsharkRows runs tshark's two-pass analysis on path and returns, for
// each frame that matches the display filter, the first occurrence of
// each field (empty where the frame has none), a row of columns a frame.
// A field may be asked for once: tshark shows one asked for twice in the
// last of its columns only.
func tsharkRows(tshark, path, filter string, fields []string) ([][]string, error) {
	args := []string{"-r", path, "-2", "-Y", filter, "-T", "fields", "-E", "occurrence=f"}
	for i, f := range fields {
		if slices.Contains(fields[:i], f) {
			return nil, fmt.Errorf("tshark %s: field %s asked for twice", path, f)
		}
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tshark %s: %v: %s", path, err, stderr.String())
	}
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != len(fields) {
			return nil, fmt.Errorf("tshark %s: line %q: %d columns, want %d", path, sc.Text(), len(cols), len(fields))
		}
		rows = append(rows, cols)
	}
	return rows, sc.Err()
}

// viewsOf reads tsharkView's view of each frame from rows whose first
// columns are viewFields'.
func viewsOf(t *testing.T, rows [][]string) map[int]wiresharkView {
	t.Helper()
	num := func(s string) int {
		n, _ := strconv.ParseInt(s, 10, 64) // empty (a field tshark does not show) is 0
		return int(n)
	}
	views := make(map[int]wiresharkView)
	for _, cols := range rows {
		if len(cols) < 6+len(wiresharkLabels) {
			t.Fatalf("tshark row %q: want %d columns", cols, 6+len(wiresharkLabels))
		}
		v := wiresharkView{stream: num(cols[1]), seq: uint32(num(cols[2])), ack: uint32(num(cols[3])), len: num(cols[4]), win: num(cols[5])}
		for i, l := range wiresharkLabels {
			if cols[6+i] != "" {
				v.labels = v.labels.With(l)
			}
		}
		views[num(cols[0])] = v
	}
	return views
}

// crossCheck writes frames into a pcap, runs tshark on it, and compares
// its stream, relative numbers, length, window and analysis flags of every
// TCP frame with tcplab's annotations in got. Truncated segments, which
// tcplab does not analyse, are compared by stream only.
func crossCheck(t *testing.T, lt layers.LinkType, frames []capturedFrame, got []annotated) {
	t.Helper()
	crossCheckExcept(t, lt, frames, got, nil)
}

// crossCheckExcept is crossCheck, but a frame on which tcplab and tshark
// disagree in a way known(tcplab, tshark) accepts only counts as known.
func crossCheckExcept(t *testing.T, lt layers.LinkType, frames []capturedFrame, got []annotated, known func(mine, ws wiresharkView) bool) (nknown int) {
	t.Helper()
	return crossCheckViews(t, tsharkViews(t, []viewCase{{lt, frames}})[0], got, known)
}

// crossCheckViews is crossCheckExcept against ws, tshark's view of the
// frames (tsharkViews), read before; nil where tshark is not installed,
// which skips the test (fails it in CI) as testenv.Tool does.
func crossCheckViews(t *testing.T, ws map[int]wiresharkView, got []annotated, known func(mine, ws wiresharkView) bool) (nknown int) {
	t.Helper()
	if ws == nil {
		testenv.Tool(t, "tshark")
	}
	if len(ws) != len(got) {
		t.Errorf("tshark saw %d TCP frames, tcplab %d", len(ws), len(got))
	}
	// emptyProbe[stream][dir] says whether the last segment in that
	// direction was an empty (Linux) zero-window probe.
	emptyProbe := map[int]*[2]bool{}
	for _, g := range got {
		a := g.ann
		ep := emptyProbe[a.Stream]
		if ep == nil {
			ep = new([2]bool)
			emptyProbe[a.Stream] = ep
		}
		cut := g.seg.Problem == HeaderCut
		labels := asWiresharkAfter(a.Labels, g.seg.Len, ep[1-a.Dir])
		if !cut {
			ep[a.Dir] = a.Labels.Has(ZeroWindowProbe) && g.seg.Len == 0
		}
		w, ok := ws[g.seg.Frame]
		if !ok {
			t.Errorf("frame %d: tshark saw no TCP segment", g.seg.Frame)
			continue
		}
		mine := wiresharkView{stream: a.Stream, seq: a.RelSeq, ack: a.RelAck, len: g.seg.Len, win: a.Win, labels: labels}
		if cut {
			w = wiresharkView{stream: w.stream, labels: w.labels}
			mine = wiresharkView{stream: mine.stream, labels: mine.labels}
		}
		if mine != w && known != nil && known(mine, w) {
			nknown++
			continue
		}
		if mine != w {
			t.Errorf("frame %d (%s %s): tcplab and tshark disagree:\n  tcplab (as Wireshark): %s\n  tshark:                %s",
				g.seg.Frame, a.Dir, g.seg.Flags, mine, w)
		}
	}
	return nknown
}

// asWiresharkAfter maps tcplab's labels of a segment of length n to
// Wireshark's, as Labels.AsWireshark does, except that the answer to a classic
// one-byte zero-window probe keeps its zero-window-probe-ack: Wireshark
// sets it too. Only the answer to an empty probe, which Wireshark takes
// for a keep-alive, loses it (answeredEmptyProbe).
func asWiresharkAfter(l Labels, n int, answeredEmptyProbe bool) Labels {
	ack := l.Has(ZeroWindowProbeACK) && !answeredEmptyProbe
	l = l.AsWireshark(n)
	if ack {
		l = l.With(ZeroWindowProbeACK)
	}
	return l
}

func (v wiresharkView) String() string {
	return fmt.Sprintf("stream=%d seq=%d ack=%d len=%d win=%d [%v]", v.stream, v.seq, v.ack, v.len, v.win, v.labels)
}

// labelsOf builds a label set.
func labelsOf(ls ...Label) Labels {
	var s Labels
	for _, l := range ls {
		s = s.With(l)
	}
	return s
}

// TestLabels runs one short conversation per label, each after a handshake
// with window scale 7 on both SYNs (a 2ms first RTT), and checks the exact
// label set of its last segment. tshark's analysis of the same frames must
// agree on every frame, apart from the documented difference for Linux
// zero-window probes (see Labels.AsWireshark).
//
// After the handshake the client's next seq is 1 and its window 502 (64256
// bytes); the server's window is 509 unless a case says otherwise.
func TestLabels(t *testing.T) {
	ms := time.Millisecond
	data := func(seq uint32, n int, at time.Duration) step { return step{cs, PSH | ACK, seq, 1, n, 502, nil, at} }
	ack := func(a uint32, win uint16, at time.Duration) step { return step{sc, ACK, 1, a, 0, win, nil, at} }
	tests := []struct {
		name  string
		steps []step // after the handshake
		want  Labels // of the last step
	}{{
		name:  "keep-alive",
		steps: []step{data(1, 100, 0), ack(101, 509, 0), {cs, ACK, 100, 1, 0, 502, nil, 2 * time.Second}},
		want:  labelsOf(KeepAlive),
	}, {
		name:  "keep-alive/one-byte",
		steps: []step{data(1, 100, 0), ack(101, 509, 0), {cs, ACK, 100, 1, 1, 502, nil, 2 * time.Second}},
		want:  labelsOf(KeepAlive),
	}, {
		name: "keep-alive-ack",
		steps: []step{data(1, 100, 0), ack(101, 509, 0), {cs, ACK, 100, 1, 0, 502, nil, 2 * time.Second},
			ack(101, 509, 2*time.Second+ms)},
		want: labelsOf(KeepAliveACK),
	}, {
		name:  "window-update",
		steps: []step{data(1, 100, 0), ack(101, 509, 0), ack(101, 1000, 100*ms)},
		want:  labelsOf(WindowUpdate),
	}, {
		name:  "zero-window",
		steps: []step{data(1, 100, 0), ack(101, 0, 0)},
		want:  labelsOf(ZeroWindow),
	}, {
		name:  "zero-window/from-client",
		steps: []step{{sc, PSH | ACK, 1, 1, 100, 509, nil, 0}, {cs, ACK, 1, 101, 0, 0, nil, 0}},
		want:  labelsOf(ZeroWindow),
	}, {
		// The classic probe: one new byte at the next seq.
		name:  "zero-window-probe/one-byte",
		steps: []step{data(1, 100, 0), ack(101, 0, 0), {cs, ACK, 101, 1, 1, 502, nil, 200 * ms}},
		want:  labelsOf(ZeroWindowProbe),
	}, {
		name:  "zero-window-probe-ack/one-byte",
		steps: []step{data(1, 100, 0), ack(101, 0, 0), {cs, ACK, 101, 1, 1, 502, nil, 200 * ms}, ack(101, 0, 201*ms)},
		want:  labelsOf(ZeroWindow, ZeroWindowProbeACK),
	}, {
		// A second classic probe repeats the first byte: the first did
		// not advance the next seq, so it is a probe again, not a
		// retransmission.
		name: "zero-window-probe/second",
		steps: []step{data(1, 100, 0), ack(101, 0, 0), {cs, ACK, 101, 1, 1, 502, nil, 200 * ms}, ack(101, 0, 201*ms),
			{cs, ACK, 101, 1, 1, 502, nil, 600 * ms}},
		want: labelsOf(ZeroWindowProbe),
	}, {
		// Linux probes with an empty segment at snd_una-1; Wireshark 4.0
		// calls it a keep-alive.
		name:  "zero-window-probe/linux-empty",
		steps: []step{data(1, 100, 0), ack(101, 0, 0), {cs, ACK, 100, 1, 0, 502, nil, 200 * ms}},
		want:  labelsOf(ZeroWindowProbe),
	}, {
		name:  "zero-window-probe-ack/linux-empty",
		steps: []step{data(1, 100, 0), ack(101, 0, 0), {cs, ACK, 100, 1, 0, 502, nil, 200 * ms}, ack(101, 0, 201*ms)},
		want:  labelsOf(ZeroWindow, ZeroWindowProbeACK),
	}, {
		// The server opens a window of 10<<7 = 1280 bytes; the client
		// fills it exactly.
		name:  "window-full",
		steps: []step{ack(1, 10, 0), data(1, 1280, 0)},
		want:  labelsOf(WindowFull),
	}, {
		name:  "window-full/not-quite",
		steps: []step{ack(1, 10, 0), data(1, 1279, 0)},
		want:  0,
	}, {
		name:  "dup-ack",
		steps: []step{data(1, 100, 0), data(201, 100, 0), ack(101, 509, 0), ack(101, 509, 0)},
		want:  labelsOf(DupACK),
	}, {
		name:  "dup-ack/second",
		steps: []step{data(1, 100, 0), data(201, 100, 0), ack(101, 509, 0), ack(101, 509, 0), ack(101, 509, 0)},
		want:  labelsOf(DupACK),
	}, {
		// A changed window makes the repeated ack a window update, not
		// a duplicate.
		name:  "dup-ack/window-changed",
		steps: []step{data(1, 100, 0), data(201, 100, 0), ack(101, 509, 0), ack(101, 510, 0)},
		want:  labelsOf(WindowUpdate),
	}, {
		name:  "retransmission",
		steps: []step{data(1, 100, 0), data(1, 100, 300*ms)},
		want:  labelsOf(Retransmission),
	}, {
		name:  "retransmission/syn",
		steps: []step{{cs, SYN, 0, 0, 0, 64240, synOptions(), time.Second}},
		want:  labelsOf(Retransmission),
	}, {
		name:  "retransmission/fin",
		steps: []step{{cs, FIN | ACK, 1, 1, 0, 502, nil, 0}, {cs, FIN | ACK, 1, 1, 0, 502, nil, 300 * ms}},
		want:  labelsOf(Retransmission),
	}, {
		// Two duplicate acks for 101, then 101 again within 20ms.
		name: "fast-retransmission",
		steps: []step{data(1, 100, 0), data(101, 100, 0), data(201, 100, 0),
			ack(101, 509, 0), ack(101, 509, 0), ack(101, 509, 0), data(101, 100, 0)},
		want: labelsOf(FastRetransmission, Retransmission),
	}, {
		// One duplicate ack is not enough, even at once, within the
		// fast-retransmission window: a plain retransmission.
		name: "fast-retransmission/one-dup-ack",
		steps: []step{data(1, 100, 0), data(101, 100, 0), data(201, 100, 0),
			ack(101, 509, 0), ack(101, 509, 0), data(101, 100, 0)},
		want: labelsOf(Retransmission),
	}, {
		name:  "spurious-retransmission",
		steps: []step{data(1, 100, 0), ack(101, 509, 0), data(1, 100, 300*ms)},
		want:  labelsOf(SpuriousRetransmission, Retransmission),
	}, {
		// 101 came first; 1 follows within the first RTT (2ms).
		name:  "out-of-order",
		steps: []step{data(101, 100, 0), data(1, 100, 0)},
		want:  labelsOf(OutOfOrder),
	}, {
		// The same, but later than an RTT: a retransmission.
		name:  "out-of-order/too-late",
		steps: []step{data(101, 100, 0), data(1, 100, 50*ms)},
		want:  labelsOf(Retransmission),
	}, {
		name:  "lost-segment",
		steps: []step{data(101, 100, 0)},
		want:  labelsOf(LostSegment),
	}, {
		// A RST is never a lost segment.
		name:  "lost-segment/rst",
		steps: []step{{cs, RST | ACK, 500, 1, 0, 0, nil, 0}},
		want:  0,
	}, {
		name:  "ack-lost-segment",
		steps: []step{data(1, 100, 0), ack(201, 509, 0)},
		want:  labelsOf(ACKLostSegment),
	}, {
		// The window of a SYN is never scaled: the client fills the
		// SYN/ACK's 65160 bytes exactly.
		name:  "window-full/syn-ack-window",
		steps: []step{data(1, 65160, 0)},
		want:  labelsOf(WindowFull),
	}, {
		// The answer to a probe that takes its byte (ack + 1) is not a
		// zero-window-probe-ack: the ack is not repeated.
		name: "zero-window-probe-ack/byte-taken",
		steps: []step{data(1, 100, 0), ack(101, 0, 0), {cs, ACK, 101, 1, 1, 502, nil, 200 * ms},
			ack(102, 0, 201*ms)},
		want: labelsOf(ZeroWindow, ACKLostSegment),
	}, {
		// The acknowledged probe byte is an ack-lost-segment once; the
		// same ack again is not.
		name: "ack-lost-segment/probe-byte-once",
		steps: []step{data(1, 100, 0), ack(101, 0, 0), {cs, ACK, 101, 1, 1, 502, nil, 200 * ms},
			ack(102, 509, 201*ms), ack(102, 509, 202*ms)},
		want: labelsOf(DupACK),
	}, {
		// Data the server has acknowledged, resent within the RTT of a
		// higher segment: spurious comes first.
		name:  "spurious-retransmission/within-rtt",
		steps: []step{data(1, 100, 3*ms), data(101, 100, 3*ms+ms/5), ack(201, 509, 3*ms+ms/2), data(1, 100, 4*ms)},
		want:  labelsOf(SpuriousRetransmission, Retransmission),
	}, {
		// A FIN resent at once is no out-of-order segment: it ends where
		// the first one did, FIN included.
		name:  "retransmission/fin-at-once",
		steps: []step{{cs, FIN | PSH | ACK, 1, 1, 100, 502, nil, 0}, {cs, FIN | PSH | ACK, 1, 1, 100, 502, nil, 0}},
		want:  labelsOf(Retransmission),
	}, {
		name:  "none/in-order-data",
		steps: []step{data(1, 100, 0), ack(101, 509, 0), data(101, 100, 0)},
		want:  0,
	}}
	convs := make([]conv, len(tests))
	cases := make([]viewCase, len(tests))
	for i, tc := range tests {
		c := conv{steps: append(handshake(), tc.steps...)}
		c.client, c.server = caseEndpoints(t, false, i)
		convs[i], cases[i] = c, viewCase{c.link.linkType(), c.frames(t, 0)}
	}
	ws := tsharkViews(t, cases)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := convs[i]
			got, _ := c.annotate(t)
			last := got[len(got)-1]
			if last.ann.Labels != tc.want {
				t.Errorf("last segment (%s %s seq=%d len=%d): labels [%v], want [%v]",
					last.ann.Dir, last.seg.Flags, last.ann.RelSeq, last.seg.Len, last.ann.Labels, tc.want)
			}
			crossCheckViews(t, ws[i], got, nil)
		})
	}
}

// TestHeaderCut cuts one segment's TCP header: it carries no label and is
// not analysed, the fields that were captured are shown, and the segments
// after it are analysed as if it had not been there.
func TestHeaderCut(t *testing.T) {
	c := conv{steps: append(handshake(),
		step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
		step{sc, ACK, 1, 101, 0, 509, nil, 0},
		step{cs, PSH | ACK, 101, 1, 100, 502, nil, 0},
		step{sc, ACK, 1, 201, 0, 509, nil, 0},
	)}
	tests := []struct {
		tcpBytes         int
		wantSeq, wantAck uint32
		wantFlags        Flags
		wantWindow       WindowKnown
	}{
		{tcpBytes: 6, wantWindow: WindowUnknown},
		{tcpBytes: 10, wantSeq: 1, wantWindow: WindowUnknown},
		{tcpBytes: 14, wantSeq: 1, wantAck: 101, wantFlags: ACK, wantWindow: WindowUnknown},
		{tcpBytes: 16, wantSeq: 1, wantAck: 101, wantFlags: ACK, wantWindow: WindowScaled},
	}
	cases := make([]viewCase, len(tests))
	for i, tc := range tests {
		c := c
		c.client, c.server = caseEndpoints(t, false, i)
		frames := c.frames(t, 0)
		cut := &frames[4]
		cut.data = cut.data[:14+20+tc.tcpBytes] // Ethernet, IPv4, part of TCP
		cut.ci.CaptureLength = len(cut.data)
		cases[i] = viewCase{c.link.linkType(), frames}
	}
	ws := tsharkViews(t, cases)
	for i, tc := range tests {
		t.Run(strconv.Itoa(tc.tcpBytes), func(t *testing.T) {
			frames := cases[i].frames
			got, a := walkFrames(t, c.link.linkType(), frames)
			if len(got) != 7 {
				t.Fatalf("got %d TCP segments, want 7", len(got))
			}
			tr := got[4]
			if tr.seg.Problem != HeaderCut || tr.ann.Labels != 0 {
				t.Errorf("cut segment: problem %q labels [%v], want header-cut and none", tr.seg.Problem, tr.ann.Labels)
			}
			if tr.ann.Stream != 0 || tr.ann.Dir != ServerToClient {
				t.Errorf("cut segment: stream %d %v, want 0 S>C", tr.ann.Stream, tr.ann.Dir)
			}
			if tr.ann.RelSeq != tc.wantSeq || tr.ann.RelAck != tc.wantAck || tr.seg.Flags != tc.wantFlags || tr.ann.Window != tc.wantWindow {
				t.Errorf("cut segment: seq %d ack %d flags %v window %d, want %d %d %v %d",
					tr.ann.RelSeq, tr.ann.RelAck, tr.seg.Flags, tr.ann.Window, tc.wantSeq, tc.wantAck, tc.wantFlags, tc.wantWindow)
			}
			if tc.wantWindow == WindowScaled && tr.ann.Win != 509<<7 {
				t.Errorf("cut segment: window %d, want %d", tr.ann.Win, 509<<7)
			}
			// Had the cut ACK been analysed, the next data would be
			// unaffected anyway; the ACK after it must not be an
			// ack-lost-segment or a dup.
			if l := got[6].ann.Labels; l != 0 {
				t.Errorf("ACK after the cut segment: labels [%v], want none", l)
			}
			if n := a.Conns()[0].Cut; n != 1 {
				t.Errorf("connection counts %d segments with the header cut, want 1", n)
			}
			crossCheckViews(t, ws[i], got, nil)
		})
	}
}

// TestRelativeNumbersAndWindow follows a handshake and data both ways:
// relative seq and ack, direction, and the window scaled by the shift each
// side announced (7 for the client, 9 for the server), or not scaled at all
// when one SYN lacks the option.
func TestRelativeNumbersAndWindow(t *testing.T) {
	srvSYN := []step{{cs, SYN, 0, 0, 0, 64240, synOptions(), 0}}
	tests := []struct {
		name    string
		synack  []layers.TCPOption
		wantWin []int // per step
	}{
		{"both-scale", []layers.TCPOption{optMSS(1460), optNOP(), optWScale(9)}, []int{64240, 65160, 502 << 7, 509 << 9, 502 << 7, 509 << 9}},
		{"server-no-scale", []layers.TCPOption{optMSS(1460)}, []int{64240, 65160, 502, 509, 502, 509}},
	}
	convs := make([]conv, len(tests))
	cases := make([]viewCase, len(tests))
	for i, tc := range tests {
		c := conv{steps: append(srvSYN,
			step{sc, SYN | ACK, 0, 1, 0, 65160, tc.synack, time.Millisecond},
			step{cs, ACK, 1, 1, 0, 502, nil, 0},
			step{sc, PSH | ACK, 1, 1, 300, 509, nil, 0},
			step{cs, PSH | ACK, 1, 301, 50, 502, nil, 0},
			step{sc, ACK, 301, 51, 0, 509, nil, 0},
		)}
		c.client, c.server = caseEndpoints(t, false, i)
		convs[i], cases[i] = c, viewCase{c.link.linkType(), c.frames(t, 0)}
	}
	ws := tsharkViews(t, cases)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := convs[i]
			got, _ := c.annotate(t)
			for i, g := range got {
				st := c.steps[i]
				wantAck := st.ack
				if !st.flags.Has(ACK) {
					wantAck = 0
				}
				if g.ann.Dir != st.dir || g.ann.RelSeq != st.seq || g.ann.RelAck != wantAck || g.ann.Win != tc.wantWin[i] || g.ann.Stream != 0 {
					t.Errorf("step %d: got %v seq=%d ack=%d win=%d stream=%d, want %v seq=%d ack=%d win=%d stream=0",
						i, g.ann.Dir, g.ann.RelSeq, g.ann.RelAck, g.ann.Win, g.ann.Stream, st.dir, st.seq, wantAck, tc.wantWin[i])
				}
			}
			crossCheckViews(t, ws[i], got, nil)
		})
	}
}

// TestMidStream starts a capture without the SYNs: the base of each
// direction is its first seq minus one, or the first ack it gets minus one,
// whichever comes first; windows are not scaled; the higher port is the
// client.
func TestMidStream(t *testing.T) {
	c := conv{
		// Listed from the server's point of view: it speaks first.
		steps: []step{
			{sc, PSH | ACK, 5001, 7001, 200, 509, nil, 0},
			{cs, ACK, 7001, 5201, 0, 502, nil, 0},
			{cs, PSH | ACK, 7001, 5201, 30, 502, nil, 0},
			{sc, ACK, 5201, 7031, 0, 509, nil, 0},
		},
	}
	got, a := c.annotate(t)
	want := []struct {
		dir      Dir
		seq, ack uint32
		win      int
	}{{sc, 1, 1, 509}, {cs, 1, 201, 502}, {cs, 1, 201, 502}, {sc, 201, 31, 509}}
	for i, w := range want {
		g := got[i].ann
		if g.Dir != w.dir || g.RelSeq != w.seq || g.RelAck != w.ack || g.Win != w.win {
			t.Errorf("step %d: got %v seq=%d ack=%d win=%d, want %v seq=%d ack=%d win=%d", i, g.Dir, g.RelSeq, g.RelAck, g.Win, w.dir, w.seq, w.ack, w.win)
		}
		if g.Client != Established || g.Server != Established {
			t.Errorf("step %d: states %v/%v, want ESTABLISHED/ESTABLISHED", i, g.Client, g.Server)
		}
	}
	if s := a.Conns()[0]; s.Client != client4 || s.Server != server4 {
		t.Errorf("client %v server %v, want %v %v (the higher port is the client)", s.Client, s.Server, client4, server4)
	}
	crossCheck(t, c.link.linkType(), c.frames(t, 0), got)
}

// TestStates follows the TCP states of both endpoints segment by segment,
// and checks the connection summary: history, closer, final states.
func TestStates(t *testing.T) {
	hs := handshake()
	type want struct{ client, server State }
	tests := []struct {
		name    string
		steps   []step
		states  []want // after each step
		history string
		// ending is what Ending.String says of the close.
		ending string
		closer Closer
	}{{
		name: "client-closes",
		steps: append(hs[:3:3],
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			step{sc, ACK, 1, 101, 0, 509, nil, 0},
			step{sc, PSH | ACK, 1, 101, 200, 509, nil, 0},
			step{cs, ACK, 101, 201, 0, 502, nil, 0},
			step{cs, FIN | ACK, 101, 201, 0, 502, nil, 0},
			step{sc, ACK, 201, 102, 0, 509, nil, 0},
			step{sc, FIN | ACK, 201, 102, 0, 509, nil, 0},
			step{cs, ACK, 102, 202, 0, 502, nil, 0},
		),
		states: []want{
			{SynSent, Listen}, {Established, SynReceived}, {Established, Established},
			{Established, Established}, {Established, Established}, {Established, Established}, {Established, Established},
			{FinWait1, Established}, {FinWait2, CloseWait}, {TimeWait, LastACK}, {TimeWait, Closed},
		},
		history: "ShADadFf", closer: ClientCloser,
		ending: "the client closed first (FIN frame 8), the server after it (FIN frame 10); both FINs acknowledged",
	}, {
		// The server closes first, its FIN piggybacked on its data; the
		// client's FIN acknowledges it at once, so the server goes from
		// FIN_WAIT_1 straight to TIME_WAIT.
		name: "server-closes",
		steps: append(hs[:3:3],
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			step{sc, FIN | PSH | ACK, 1, 101, 200, 509, nil, 0},
			step{cs, FIN | ACK, 101, 202, 0, 502, nil, 0},
			step{sc, ACK, 202, 102, 0, 509, nil, 0},
		),
		states: []want{
			{SynSent, Listen}, {Established, SynReceived}, {Established, Established},
			{Established, Established}, {Established, FinWait1}, {LastACK, TimeWait}, {Closed, TimeWait},
		},
		history: "ShADdfFa", closer: ServerCloser,
		ending: "the server closed first (FIN frame 5), the client after it (FIN frame 6); both FINs acknowledged",
	}, {
		// Both FINs cross: each was sent before the other arrived (its
		// ack does not cover the other FIN), so both sides go through
		// CLOSING to TIME_WAIT (RFC 9293 figure 13).
		name: "simultaneous-close",
		steps: append(hs[:3:3],
			step{cs, FIN | ACK, 1, 1, 0, 502, nil, 0},
			step{sc, FIN | ACK, 1, 1, 0, 509, nil, 0},
			step{cs, ACK, 2, 2, 0, 502, nil, 0},
			step{sc, ACK, 2, 2, 0, 509, nil, 0},
		),
		states: []want{
			{SynSent, Listen}, {Established, SynReceived}, {Established, Established},
			{FinWait1, Established}, {Closing, Closing}, {Closing, TimeWait}, {TimeWait, TimeWait},
		},
		history: "ShAFfa", closer: Simultaneous,
		ending: "simultaneous close: the FINs crossed (the client's frame 4, the server's frame 5: neither acknowledges the other), so both ends went FIN_WAIT_1 -> CLOSING -> TIME_WAIT; both FINs acknowledged",
	}, {
		name: "rst",
		steps: append(hs[:3:3],
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			step{sc, RST | ACK, 1, 101, 0, 0, nil, 0},
		),
		states: []want{
			{SynSent, Listen}, {Established, SynReceived}, {Established, Established},
			{Established, Established}, {Closed, Closed},
		},
		history: "ShADr", ending: "reset by the server (frame 5) in ESTABLISHED",
	}, {
		name: "refused",
		steps: []step{
			{cs, SYN, 0, 0, 0, 64240, synOptions(), 0},
			{sc, RST | ACK, 0, 1, 0, 0, nil, 0},
		},
		states:  []want{{SynSent, Listen}, {Closed, Closed}},
		history: "Sr", ending: "refused: the server answered the client's SYN with a RST (frame 2)",
	}, {
		name:    "open",
		steps:   hs,
		states:  []want{{SynSent, Listen}, {Established, SynReceived}, {Established, Established}},
		history: "ShA", ending: "not closed: no FIN or RST by the end of the capture",
	}}
	convs := make([]conv, len(tests))
	cases := make([]viewCase, len(tests))
	for i, tc := range tests {
		convs[i], cases[i] = stepCase(t, tc.steps, i)
	}
	ws := tsharkViews(t, cases)
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := convs[k]
			got, a := c.annotate(t)
			for i, g := range got {
				w := tc.states[i]
				if g.ann.Client != w.client || g.ann.Server != w.server {
					t.Errorf("after step %d (%v %v): states %v/%v, want %v/%v",
						i, g.ann.Dir, g.seg.Flags, g.ann.Client, g.ann.Server, w.client, w.server)
				}
			}
			s := a.Conns()[0]
			last := tc.states[len(tc.states)-1]
			if s.History != tc.history || s.Ending.String() != tc.ending || s.Ending.Closer() != tc.closer ||
				s.ClientState != last.client || s.ServerState != last.server || s.Segments != len(tc.steps) {
				t.Errorf("summary: %s\nwant history %s, ending %q (closer %v), final %v/%v, %d segments",
					Summary(&s), tc.history, tc.ending, tc.closer, last.client, last.server, len(tc.steps))
			}
			crossCheckViews(t, ws[k], got, nil)
		})
	}
}

// TestStreams checks stream numbering: two interleaved connections get
// streams 0 and 1; a new SYN on the first one's 4-tuple with a new ISN,
// after it closed, starts stream 2; a retransmitted SYN does not.
func TestStreams(t *testing.T) {
	ms := time.Millisecond
	closeSteps := func(at time.Duration) []step {
		return []step{
			{cs, FIN | ACK, 1, 1, 0, 502, nil, at},
			{sc, FIN | ACK, 1, 2, 0, 509, nil, at + ms},
			{cs, ACK, 2, 2, 0, 502, nil, at + 2*ms},
		}
	}
	first := conv{steps: append(append(handshake(), step{cs, SYN, 0, 0, 0, 64240, synOptions(), 500 * ms}), closeSteps(time.Second)...)}
	// The retransmitted SYN arrives after the handshake completed: it
	// belongs to stream 0 (same ISN).
	second := conv{client: netip4(t, "10.0.0.3:40001"), server: server4, cisn: 77, sisn: 99,
		start: testEpoch.Add(ms / 2), steps: append(handshake(), closeSteps(100*ms)...)}
	reused := conv{cisn: 123456789, sisn: 987654321, start: testEpoch.Add(2 * time.Second), steps: handshake()}
	frames := merge(t, 0, first, second, reused)
	got, a := walkFrames(t, layers.LinkTypeEthernet, frames)
	count := map[int]int{}
	for _, g := range got {
		count[g.ann.Stream]++
		var c conv
		switch g.ann.Stream {
		case 0:
			c = first.withDefaults()
		case 1:
			c = second.withDefaults()
		case 2:
			c = reused.withDefaults()
		default:
			t.Fatalf("frame %d: stream %d, want 0-2", g.seg.Frame, g.ann.Stream)
		}
		wantDir := ClientToServer
		if g.seg.Src == c.server {
			wantDir = ServerToClient
		}
		if g.ann.Dir != wantDir {
			t.Errorf("frame %d: dir %v, want %v", g.seg.Frame, g.ann.Dir, wantDir)
		}
		if g.seg.Time.Before(c.withDefaults().start) {
			t.Errorf("frame %d at %v is in stream %d, which starts later", g.seg.Frame, g.seg.Time, g.ann.Stream)
		}
	}
	if count[0] != len(first.steps) || count[1] != len(second.steps) || count[2] != len(reused.steps) {
		t.Errorf("segments per stream %v, want 0:%d 1:%d 2:%d", count, len(first.steps), len(second.steps), len(reused.steps))
	}
	if n := len(a.Conns()); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
	if s := a.Conns()[2]; s.History != "ShA" || s.ClientState != Established {
		t.Errorf("reused port: %s", Summary(&s))
	}
	crossCheck(t, layers.LinkTypeEthernet, frames, got)
}

func netip4(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// TestLabelsOtherLinks runs one conversation with several labels over
// every link type and both IP families: the analysis must not depend on
// the framing, and tshark must agree on each.
func TestLabelsOtherLinks(t *testing.T) {
	steps := append(handshake(),
		step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
		step{cs, PSH | ACK, 201, 1, 100, 502, nil, 0},
		step{sc, ACK, 1, 101, 0, 509, nil, 0},
		step{sc, ACK, 1, 101, 0, 509, nil, 0},
		step{sc, ACK, 1, 101, 0, 509, nil, 0},
		step{cs, PSH | ACK, 101, 1, 100, 502, nil, 0},
		step{sc, ACK, 1, 301, 0, 0, nil, 0},
	)
	want := []Labels{0, 0, 0, 0, labelsOf(LostSegment), 0, labelsOf(DupACK), labelsOf(DupACK),
		labelsOf(FastRetransmission, Retransmission), labelsOf(ZeroWindow)}
	var (
		convs []conv
		cases []viewCase
	)
	for l := link(0); l < numLinks; l++ {
		for _, v6 := range []bool{false, true} {
			if !l.carries(v6) {
				continue
			}
			c := conv{link: l, steps: steps, ip: ipHeaders{v4Options: true, v6Ext: true}}
			c.client, c.server = caseEndpoints(t, v6, len(convs))
			convs = append(convs, c)
			cases = append(cases, viewCase{l.linkType(), c.frames(t, 0)})
		}
	}
	ws := tsharkViews(t, cases)
	for k, c := range convs {
		t.Run(fmt.Sprintf("%v/v6=%v", c.link, c.client.Addr().Is6()), func(t *testing.T) {
			got, _ := c.annotate(t)
			for i, g := range got {
				if g.ann.Labels != want[i] {
					t.Errorf("step %d: labels [%v], want [%v]", i, g.ann.Labels, want[i])
				}
			}
			crossCheckViews(t, ws[k], got, nil)
		})
	}
}

// randomSteps returns a random but plausible conversation after a
// handshake: data both ways (sometimes with a gap), retransmissions of old
// data, acks (sometimes of data not seen or stale ones), keep-alives,
// zero windows, and pauses longer than the first RTT.
func randomSteps(r *rand.Rand, n int) []step {
	steps := handshake()
	next := [2]uint32{1, 1}  // next seq per sender
	acked := [2]uint32{1, 1} // last ack per sender
	at := 3 * time.Millisecond
	for range n {
		d := Dir(r.IntN(2))
		at += time.Duration(r.IntN(4)) * time.Millisecond
		if r.IntN(6) == 0 {
			at += 300 * time.Millisecond
		}
		win := uint16(500 + r.IntN(3))
		if r.IntN(8) == 0 {
			win = 0
		}
		switch r.IntN(6) {
		case 0, 1: // new data, sometimes after a gap
			size := []int{1, 100, 200}[r.IntN(3)]
			seq := next[d]
			if r.IntN(6) == 0 {
				seq += 100
			}
			steps = append(steps, step{d, PSH | ACK, seq, acked[d], size, win, nil, at})
			if seqGT(seq+uint32(size), next[d]) {
				next[d] = seq + uint32(size)
			}
		case 2: // old data again
			if next[d] > 101 {
				seq := next[d] - 100
				if r.IntN(2) == 0 {
					seq = 1
				}
				steps = append(steps, step{d, PSH | ACK, seq, acked[d], 100, win, nil, at})
			}
		case 3, 4: // an ack, now and then a stale one
			a := next[1-d]
			if r.IntN(4) == 0 && a > 101 {
				a -= 100
			}
			acked[d] = a
			steps = append(steps, step{d, ACK, next[d], a, 0, win, nil, at})
		case 5: // keep-alive, empty or with one byte
			steps = append(steps, step{d, ACK, next[d] - 1, acked[d], r.IntN(2), win, nil, at})
		}
	}
	return steps
}

// TestLabelsRandomAgainstTshark runs many random conversations, one
// stream each, through tcplab and tshark and compares every frame. Two
// differences are known and allowed:
//
//   - tshark 4.0.17 calls a retransmission "fast" (instead of plain or
//     out-of-order) when it follows an ack of data it never saw from the
//     other side, without any duplicate acks: it marks that side's dup-ack
//     counter with -1, in an unsigned field, which then passes the ">= 2
//     dup-acks" test. tcplab counts dup-acks (TCP-ANALYSIS.md).
//   - tcplab calls Linux's empty zero-window probe a zero-window-probe, not
//     a keep-alive (see TCP-ANALYSIS.md), so a repeated ack after it is a
//     dup-ack, where tshark sees a keep-alive-ack.
func TestLabelsRandomAgainstTshark(t *testing.T) {
	testenv.Tool(t, "tshark")
	const convs = 300
	var all []conv
	for i := range convs {
		r := rand.New(rand.NewPCG(uint64(i), 1))
		all = append(all, conv{
			client: netip.AddrPortFrom(client4.Addr(), uint16(20000+i)), server: server4,
			start: testEpoch.Add(time.Duration(i) * 20 * time.Second),
			steps: randomSteps(r, 25),
		})
	}
	frames := merge(t, 0, all...)
	got, _ := walkFrames(t, layers.LinkTypeEthernet, frames)
	known := func(mine, ws wiresharkView) bool {
		m, w := mine, ws
		m.labels, w.labels = 0, 0
		if m != w {
			return false
		}
		retrans := labelsOf(FastRetransmission, Retransmission, OutOfOrder)
		fastQuirk := ws.labels.Has(FastRetransmission) && !mine.labels.Has(FastRetransmission) &&
			mine.labels&^retrans == ws.labels&^retrans
		keepAliveACK := mine.labels.Has(DupACK) && ws.labels == mine.labels.Without(DupACK).With(KeepAliveACK)
		return fastQuirk || keepAliveACK
	}
	n := crossCheckExcept(t, layers.LinkTypeEthernet, frames, got, known)
	t.Logf("%d frames in %d conversations; %d known differences", len(got), convs, n)
}
