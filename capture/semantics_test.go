package capture

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// tcpAt is where the TCP header starts in the frames of a default conv:
// Ethernet, then a 20-byte IPv4 header.
const tcpAt = 14 + 20

// TestSemantics pins the rules where tcplab once differed from tshark 4.0
// on real captures. Each case is a conversation whose frames may be edited
// after they are built (a raw field no builder writes); tcplab's view of
// the frame named by at must be want, and tshark must agree on every frame.
func TestSemantics(t *testing.T) {
	ms := time.Millisecond
	type view struct {
		relAck uint32
		len    int
		labels Labels
	}
	tests := []struct {
		name  string
		steps []step
		edit  func(frames []capturedFrame)
		at    int // index of the frame whose view is checked
		want  view
		// known accepts a documented difference (DIFFERENCES.md).
		known func(mine, ws wiresharkView) bool
	}{{
		// The out-of-order threshold is the first RTT from the most
		// recent SYN: 2ms here, from the retransmitted SYN at 1s, not
		// 1.002s from the first. A segment 2.5ms after the highest is
		// then a retransmission, not out-of-order.
		name: "first-rtt-from-retransmitted-syn",
		steps: []step{
			{cs, SYN, 0, 0, 0, 64240, synOptions(), 0},
			{cs, SYN, 0, 0, 0, 64240, synOptions(), time.Second},
			{sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), time.Second + ms},
			{cs, ACK, 1, 1, 0, 502, nil, time.Second + 2*ms},
			{cs, PSH | ACK, 1, 1, 100, 502, nil, time.Second + 3*ms},
			{cs, PSH | ACK, 101, 1, 100, 502, nil, time.Second + 4*ms},
			{cs, PSH | ACK, 1, 1, 100, 502, nil, time.Second + 6500*time.Microsecond},
		},
		at:   6,
		want: view{relAck: 1, len: 100, labels: labelsOf(Retransmission)},
	}, {
		// Within that RTT of the highest segment it is out-of-order.
		name: "first-rtt-from-retransmitted-syn/within",
		steps: []step{
			{cs, SYN, 0, 0, 0, 64240, synOptions(), 0},
			{cs, SYN, 0, 0, 0, 64240, synOptions(), time.Second},
			{sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), time.Second + ms},
			{cs, ACK, 1, 1, 0, 502, nil, time.Second + 2*ms},
			{cs, PSH | ACK, 1, 1, 100, 502, nil, time.Second + 3*ms},
			{cs, PSH | ACK, 101, 1, 100, 502, nil, time.Second + 4*ms},
			{cs, PSH | ACK, 1, 1, 100, 502, nil, time.Second + 5*ms},
		},
		at:   6,
		want: view{relAck: 1, len: 100, labels: labelsOf(OutOfOrder)},
	}, {
		// A FIN without ACK (a scanner's probe) shows its raw
		// acknowledgement field, as tshark does, not 0.
		name: "raw-ack-without-ack-flag",
		steps: append(handshake(),
			step{cs, FIN, 1, 1, 0, 502, nil, 0}),
		edit: func(frames []capturedFrame) { setAck(frames[3], 12345) },
		at:   3,
		want: view{relAck: 12345},
	}, {
		// A SYN/ACK after an injected RST that claimed other numbers
		// sets the server's initial sequence number: it is no
		// lost-segment, and the ACK of it no ack-lost-segment.
		name: "syn-ack-after-injected-rst",
		steps: []step{
			{cs, SYN, 0, 0, 0, 64240, synOptions(), 0},
			{sc, RST | ACK, 1 << 20, 1, 0, 0, nil, 0},
			{sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), 0},
			{cs, ACK, 1, 1, 0, 502, nil, 0},
			{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			{sc, ACK, 1, 101, 0, 509, nil, 0},
		},
		at:   3,
		want: view{relAck: 1},
		// The RST came before the server's SYN/ACK: tcplab numbers it
		// in one pass from its own seq, tshark's second pass from the
		// SYN/ACK that followed; and tshark labels that SYN/ACK
		// reused-ports, its ISN being other than the RST's number.
		known: func(mine, ws wiresharkView) bool {
			if mine.labels.Has(Retransmission) {
				mine.labels = mine.labels.With(ReusedPorts)
				return mine == ws
			}
			return mine.seq == 1 && ws.seq == 1<<20
		},
	}, {
		// A frame shorter on the wire than its IPv4 total length says:
		// the segment holds the bytes the frame held (tshark's reported
		// length), and the next segment follows it without a gap.
		name: "ip-length-beyond-frame",
		steps: append(handshake(),
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			step{cs, PSH | ACK, 101, 1, 100, 502, nil, 0}),
		edit: func(frames []capturedFrame) {
			b := frames[3].data[14+2:]
			binary.BigEndian.PutUint16(b, binary.BigEndian.Uint16(b)+400)
		},
		at:   4,
		want: view{relAck: 1, len: 100},
	}, {
		// A FIN sent again, with no duplicate ACK before it: a plain
		// retransmission.
		name: "fin-retransmitted",
		steps: append(handshake(),
			step{cs, FIN | ACK, 1, 1, 0, 502, nil, 0},
			step{cs, FIN | ACK, 1, 1, 0, 502, nil, 300 * ms}),
		at:   4,
		want: view{relAck: 1, labels: labelsOf(Retransmission)},
	}, {
		// Joined mid-stream: each direction's first segment sets its base;
		// the server's second ACK, same numbers and a larger window, is a
		// window update.
		name: "mid-stream-window-update",
		steps: []step{
			{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			{sc, ACK, 1, 101, 0, 509, nil, 0},
			{sc, ACK, 1, 101, 0, 600, nil, 0},
		},
		at:   2,
		want: view{relAck: 101, labels: labelsOf(WindowUpdate)},
	}, {
		// The server acknowledges bytes the capture never saw the client
		// send.
		name: "ack-beyond-anything-seen",
		steps: append(handshake(),
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			step{sc, ACK, 1, 301, 0, 509, nil, 0}),
		at:   4,
		want: view{relAck: 301, labels: labelsOf(ACKLostSegment)},
	}}
	cases := make([]viewCase, len(tests))
	for k, tc := range tests {
		_, cases[k] = stepCase(t, tc.steps, k)
		if tc.edit != nil {
			tc.edit(cases[k].frames)
		}
	}
	ws := tsharkViews(t, cases)
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cases[k]
			got, _ := walkFrames(t, c.lt, c.frames)
			if len(got) != len(tc.steps) {
				t.Fatalf("%d steps gave %d TCP segments", len(tc.steps), len(got))
			}
			g := got[tc.at]
			if v := (view{g.ann.RelAck, g.seg.Len, g.ann.Labels}); v != tc.want {
				t.Errorf("frame %d: ack=%d len=%d [%v], want ack=%d len=%d [%v]",
					g.seg.Frame, v.relAck, v.len, v.labels, tc.want.relAck, tc.want.len, tc.want.labels)
			}
			for _, g := range got {
				if g.seg.Flags.Has(SYN) && g.ann.Labels.Has(LostSegment) {
					t.Errorf("frame %d: a SYN labelled lost-segment", g.seg.Frame)
				}
			}
			crossCheckViews(t, ws[k], got, tc.known)
		})
	}
}

// setAck writes v into the acknowledgement number field of f's TCP header.
func setAck(f capturedFrame, v uint32) {
	binary.BigEndian.PutUint32(f.data[tcpAt+8:], v)
}

// TestOptionsCut cuts the client's SYN among its options, where its window
// scale option was: the segment is analysed and marked options-cut, and the
// client's windows are shown raw and marked unscaled, because its scale is
// unknown, never as if the raw field were the window. The server's scale
// is known from its SYN/ACK, which could carry it only because the SYN had
// one too.
func TestOptionsCut(t *testing.T) {
	c := conv{steps: append(handshake(),
		step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
		step{sc, ACK, 1, 101, 0, 509, nil, 0},
	)}
	frames := c.frames(t, 0)
	syn := &frames[0]
	syn.data = syn.data[:tcpAt+20+4] // the MSS option only
	syn.ci.CaptureLength = len(syn.data)
	got, _ := walkFrames(t, c.link.linkType(), frames)
	if len(got) != 5 {
		t.Fatalf("got %d TCP segments, want 5", len(got))
	}
	if p := got[0].seg.Problem; p != OptionsCut {
		t.Errorf("SYN: problem %q, want options-cut", p)
	}
	for _, g := range got[2:] {
		switch {
		case g.ann.Dir == ServerToClient && (g.ann.Window != WindowScaled || g.ann.Win != int(g.seg.Window)<<7):
			t.Errorf("frame %d: server window %d (%d), want %d, scaled", g.seg.Frame, g.ann.Win, g.ann.Window, int(g.seg.Window)<<7)
		case g.ann.Dir == ClientToServer && (g.ann.Window != WindowUnscaled || g.ann.Win != int(g.seg.Window)):
			t.Errorf("frame %d: client window %d (%d), want the raw %d, unscaled", g.seg.Frame, g.ann.Win, g.ann.Window, g.seg.Window)
		}
	}
	for _, g := range got[:2] {
		if g.ann.Window != WindowScaled {
			t.Errorf("frame %d: a SYN's window is never scaled, so it is known; got %d", g.seg.Frame, g.ann.Window)
		}
	}
	line := Line(&Packet{TCP: true, Segment: got[3].seg, Annotation: got[3].ann}, testEpoch)
	if !strings.Contains(line, " win=502? ") {
		t.Errorf("line %q: want win=502? (raw, unscaled)", line)
	}
	crossCheck(t, c.link.linkType(), frames, got)
}
