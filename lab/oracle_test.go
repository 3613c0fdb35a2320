package lab

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/report"
)

// oseg is a segment of stream 0 for the oracle's tests.
func oseg(frame int, dir capture.Dir, flags capture.Flags, seq uint32, n int, labels ...capture.Label) capture.Packet {
	var l capture.Labels
	for _, x := range labels {
		l = l.With(x)
	}
	return capture.Packet{TCP: true, Segment: capture.Segment{Frame: frame, Flags: flags, Len: n},
		Annotation: capture.Annotation{Dir: dir, RelSeq: seq, Labels: l}}
}

// TestOracleCells: each row puts a segment in the cell its wire label and
// the kernel's fact call for, and pins the disagreements known to be
// Wireshark's by design (capture/DIFFERENCES.md keeps tcplab's own; these
// are the wire's, and lab/kernelwire.go's RetransmitOutOfOrder) or the
// path's doing, with why.
func TestOracleCells(t *testing.T) {
	const c2s, s2c = capture.ClientToServer, capture.ServerToClient
	const pa, a = capture.PSH | capture.ACK, capture.ACK
	resent := func(frame int, side report.Side, c report.RetransCause) report.KernelEvent {
		return report.KernelEvent{Frame: frame, Side: side, Kind: report.KernelRetransmit, Cause: c}
	}
	drop := func(frame int, side report.Side, reason string) report.KernelEvent {
		return report.KernelEvent{Frame: frame, Side: side, Kind: report.KernelDrop, Reason: reason}
	}
	type cell struct {
		row        string
		wire, kern bool
		known      string // in the disagreement's line; "" for an agreement
	}
	tests := []struct {
		name   string
		pkts   []capture.Packet
		events []report.KernelEvent
		frame  int // the segment the cells are about
		want   []cell
	}{
		{
			name: "fast retransmit labelled out-of-order",
			pkts: []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 11, 10), oseg(3, c2s, pa, 1, 10, capture.OutOfOrder)},
			// Wireshark's 3 ms rule: a resend that quick looks reordered.
			events: []report.KernelEvent{resent(3, report.SideClient, report.CauseFastRetransmit)},
			frame:  3,
			want: []cell{
				{"retransmission", false, true, "Wireshark labels it out-of-order"},
				{"fast-retransmission", false, true, "within 3 ms"},
				{"out-of-order", true, false, "within 3 ms"},
			},
		},
		{
			name: "a copy the path made",
			pkts: []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 1, 10, capture.Retransmission)},
			// Sent once: the wire cannot tell the path's copy from a resend.
			frame: 2,
			want:  []cell{{"retransmission", true, false, "sent once by its kernel"}},
		},
		{
			name:   "a retransmission by timer",
			pkts:   []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 1, 10, capture.Retransmission)},
			events: []report.KernelEvent{resent(2, report.SideClient, report.CauseRTO)},
			frame:  2,
			want:   []cell{{"retransmission", true, true, ""}, {"fast-retransmission", false, false, ""}, {"out-of-order", false, false, ""}, {"spurious-retransmission", false, false, ""}},
		},
		{
			name: "a spurious retransmission the receiver had",
			pkts: []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 1, 10, capture.SpuriousRetransmission)},
			events: []report.KernelEvent{resent(2, report.SideClient, report.CauseTailLossProbe),
				drop(2, report.SideServer, "TCP_OLD_DATA")},
			frame: 2,
			want:  []cell{{"spurious-retransmission", true, true, ""}, {"retransmission", true, true, ""}},
		},
		{
			name: "resent, though the receiver had it, before an ACK of it was captured",
			pkts: []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 1, 10, capture.Retransmission)},
			events: []report.KernelEvent{resent(2, report.SideClient, report.CauseRTO),
				drop(2, report.SideServer, "TCP_OLD_DATA")},
			frame: 2,
			want:  []cell{{"spurious-retransmission", false, true, "no ACK of them was captured"}},
		},
		{
			name:  "the path's resent copy",
			pkts:  []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 11, 10), oseg(3, c2s, pa, 11, 10, capture.Retransmission)},
			frame: 3,
			want:  []cell{{"spurious-retransmission", false, false, ""}, {"out-of-order", false, true, "the path's copy"}},
		},
		{
			name:  "in order",
			pkts:  []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 11, 10)},
			frame: 2,
			want:  []cell{{"retransmission", false, false, ""}, {"lost-segment", false, false, ""}},
		},
		{
			name:   "new data after a resend",
			pkts:   gsoPkts(),
			events: []report.KernelEvent{resent(3, report.SideClient, report.CauseRTO)},
			frame:  5,
			want:   []cell{{"retransmission", false, false, ""}},
		},
		{
			name:   "one resend of two segments' worth",
			pkts:   gsoPkts(),
			events: []report.KernelEvent{resent(3, report.SideClient, report.CauseRTO)},
			frame:  4,
			want:   []cell{{"retransmission", true, true, ""}, {"out-of-order", false, false, ""}},
		},
		{
			name: "a lost segment the sender sent again",
			pkts: []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 21, 10, capture.LostSegment),
				oseg(3, c2s, pa, 11, 10, capture.Retransmission)},
			events: []report.KernelEvent{resent(3, report.SideClient, report.CauseFastRetransmit)},
			frame:  2,
			want:   []cell{{"lost-segment", true, true, ""}},
		},
		{
			name:  "a lost segment the path held back",
			pkts:  []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 21, 10, capture.LostSegment), oseg(3, c2s, pa, 11, 10, capture.OutOfOrder)},
			frame: 2,
			want:  []cell{{"lost-segment", true, false, "reordered, not lost"}},
		},
		{
			name:   "a keep-alive",
			pkts:   []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, s2c, a, 1, 0), oseg(3, c2s, a, 10, 0, capture.KeepAlive)},
			events: []report.KernelEvent{drop(3, report.SideServer, "TCP_OLD_SEQUENCE")},
			frame:  3,
			want:   []cell{{"keep-alive", true, true, ""}},
		},
		{
			name:   "an old ACK dropped like a probe",
			pkts:   []capture.Packet{oseg(1, s2c, a, 1, 0), oseg(2, s2c, a, 1, 0)},
			events: []report.KernelEvent{drop(2, report.SideClient, "TCP_OLD_SEQUENCE")},
			frame:  2,
			want:   []cell{{"keep-alive", false, true, "dropped as an old sequence like a probe"}, {"zero-window-probe", false, true, "like a probe"}},
		},
	}
	rowOf := map[string]int{}
	for i, r := range oracleRows {
		rowOf[r.name] = i
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newOracleTable()
			tab.add("x, c, seed 1", tt.pkts, tt.events)
			frames := oracleFrames("x", tt.pkts, tt.events)
			var f *oracleFrame
			for i := range frames {
				if frames[i].pkt.Segment.Frame == tt.frame {
					f = &frames[i]
				}
			}
			if tt.name == "in order" && (f.late || f.gap) {
				t.Errorf("the next segment in order is late %v, after a gap %v", f.late, f.gap)
			}
			for _, c := range tt.want {
				r, ok := rowOf[c.row]
				if !ok {
					t.Fatalf("no row %s", c.row)
				}
				row := oracleRows[r]
				if !row.scope(f) {
					t.Errorf("%s: frame %d out of its scope", c.row, tt.frame)
					continue
				}
				if w, k := row.wire(f), row.kern(f); w != c.wire || k != c.kern {
					t.Errorf("%s: wire %v, kernel %v; want %v, %v", c.row, w, k, c.wire, c.kern)
				}
				cl := tab.cells[r][b2i(c.wire)][b2i(c.kern)]
				if cl.n == 0 {
					t.Errorf("%s: the cell wire %v, kernel %v counts nothing", c.row, c.wire, c.kern)
				}
				if c.known != "" && (len(cl.frames) == 0 || !strings.Contains(strings.Join(cl.frames, "\n"), c.known)) {
					t.Errorf("%s: disagreement listed as %q; want it to say %q", c.row, cl.frames, c.known)
				}
			}
		})
	}
}

// gsoPkts are two segments, both sent again at once (frames 3 and 4),
// then new data 5 ms later.
func gsoPkts() []capture.Packet {
	const c2s, pa = capture.ClientToServer, capture.PSH | capture.ACK
	p := []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 11, 10), oseg(3, c2s, pa, 1, 10, capture.Retransmission),
		oseg(4, c2s, pa, 11, 10, capture.Retransmission), oseg(5, c2s, pa, 21, 10)}
	p[4].Segment.Time = p[4].Segment.Time.Add(5 * gsoResendGap)
	return p
}

// TestOracleNewDataAfterResend: new data sent right after a resend, where
// it ends, is not part of it.
func TestOracleNewDataAfterResend(t *testing.T) {
	const c2s, pa = capture.ClientToServer, capture.PSH | capture.ACK
	pkts := []capture.Packet{oseg(1, c2s, pa, 1, 10), oseg(2, c2s, pa, 1, 10, capture.Retransmission), oseg(3, c2s, pa, 11, 10)}
	events := []report.KernelEvent{{Frame: 2, Side: report.SideClient, Kind: report.KernelRetransmit, Cause: report.CauseRTO}}
	frames := oracleFrames("x", pkts, events)
	if !frames[1].resent() || frames[2].resent() {
		t.Errorf("resent: %v, %v; want the resend only", frames[1].resent(), frames[2].resent())
	}
}

// TestOracleWrite: the table has a line per row, and each disagreement
// its segments.
func TestOracleWrite(t *testing.T) {
	tab := newOracleTable()
	tab.add("loss, delay=10ms, seed 1", []capture.Packet{oseg(1, capture.ClientToServer, capture.ACK, 1, 10), oseg(2, capture.ClientToServer, capture.ACK, 1, 10, capture.Retransmission)}, nil)
	tab.skipped = append(tab.skipped, "rto, delay=10ms, seed 1: not traced")
	var b bytes.Buffer
	if err := tab.write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, r := range oracleRows {
		if !strings.Contains(out, r.name) {
			t.Errorf("no row %s:\n%s", r.name, out)
		}
	}
	for _, want := range []string{"retransmission: the wire says retransmission, the kernel does not (1)", "loss, delay=10ms, seed 1 frame 2", "not counted (1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

// TestOracleUsage: bad flags are a one-line usage error, before anything
// runs.
func TestOracleUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"oracle", "-seeds", "0"}, "-seeds 0: give 1 to 1000"},
		{[]string{"oracle", "-conditions", "delay=soon"}, `-conditions "delay=soon"`},
		{[]string{"oracle", "-conditions", " ; "}, "-conditions names none"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Command("tcplab", tt.args, &stdout, &stderr, nil); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d; stderr %s", tt.args, code, ExitUsage, stderr.String())
		}
		if msg := stderr.String(); !strings.Contains(msg, tt.want) || strings.Count(msg, "\n") != 1 {
			t.Errorf("%v: %q; want one line with %q", tt.args, msg, tt.want)
		}
	}
}
