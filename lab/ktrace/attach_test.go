package ktrace

import (
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
)

func TestAttach(t *testing.T) {
	c := netip.MustParseAddrPort("10.0.0.1:40000")
	s := netip.MustParseAddrPort("10.0.0.2:80")
	ms := atMs
	const syn, ack, fin, rst, psh = capture.SYN, capture.ACK, capture.FIN, capture.RST, capture.PSH
	seg := func(frame, at int, src, dst netip.AddrPort, f capture.Flags, seq, ackn uint32, n int) capture.Packet {
		return capture.Packet{TCP: true, Segment: capture.Segment{Frame: frame, Time: ms(at), Src: src, Dst: dst, Flags: f, Seq: seq, Ack: ackn, Len: n}}
	}
	pkts := []capture.Packet{
		seg(1, 0, c, s, syn, 100, 0, 0),
		seg(2, 1, s, c, syn|ack, 500, 101, 0),
		seg(3, 2, c, s, ack, 101, 501, 0),
		{Segment: capture.Segment{Frame: 4}},     // not TCP
		seg(5, 10, c, s, psh|ack, 101, 501, 10),  // dropped
		seg(6, 220, c, s, psh|ack, 101, 501, 10), // sent again
		seg(7, 221, s, c, ack, 501, 111, 0),
		seg(8, 230, c, s, fin|ack, 111, 501, 0),
		seg(9, 231, s, c, ack, 501, 112, 0), // ACK of the FIN
		seg(10, 240, s, c, rst, 501, 0, 0),
	}
	st := func(at int, src, dst netip.AddrPort, o, n capture.State, cookie uint64) Event {
		return Event{Time: ms(at), Kind: StateChange, Src: src, Dst: dst, OldState: o, NewState: n, Cookie: cookie}
	}
	for _, tc := range []struct {
		name  string
		event Event
		frame int // 0: none
	}{
		{"SYN_SENT before the port, by cookie", st(0, netip.AddrPortFrom(c.Addr(), 0), s, capture.Closed, capture.SynSent, 7), 1},
		{"SYN_SENT without a cookie's tuple", st(0, netip.AddrPortFrom(c.Addr(), 0), s, capture.Closed, capture.SynSent, 8), 0},
		{"ESTABLISHED on the SYN-ACK", st(1, c, s, capture.SynSent, capture.Established, 7), 2},
		{"server ESTABLISHED on the ACK", st(2, s, c, capture.SynReceived, capture.Established, 9), 3},
		{"drop", Event{Time: ms(10), Kind: Drop, Src: c, Dst: s, HaveSeq: true, Flags: psh | ack, Seq: 101, Ack: 501, Len: 10}, 5},
		{"drop of another length", Event{Time: ms(10), Kind: Drop, Src: c, Dst: s, HaveSeq: true, Flags: psh | ack, Seq: 101, Ack: 501, Len: 9}, 0},
		{"drop without headers", Event{Time: ms(10), Kind: Drop, Src: c, Dst: s}, 0},
		{"retransmit: the repeat, nearest in time", Event{Time: ms(220), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Flags: psh | ack, Seq: 101, End: 111}, 6},
		{"retransmit near the original: the repeat", Event{Time: ms(12), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Flags: psh | ack, Seq: 101, End: 111}, 6},
		{"retransmit the capture lacks: not the original", Event{Time: ms(231), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Flags: fin | ack, Seq: 111, End: 112}, 0},
		{"retransmit of a sequence number never sent", Event{Time: ms(220), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Flags: psh | ack, Seq: 102, End: 111}, 0},
		{"retransmit the other way", Event{Time: ms(220), Kind: Retransmit, Src: s, Dst: c, HaveSeq: true, Seq: 101, End: 111}, 0},
		{"retransmit out of the window", Event{Time: ms(5000), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Seq: 101, End: 111}, 0},
		{"FIN_WAIT_1 on its FIN", st(230, c, s, capture.Established, capture.FinWait1, 7), 8},
		{"FIN_WAIT_2 on the ACK of the FIN, not the earlier ACK", st(222, c, s, capture.FinWait1, capture.FinWait2, 7), 9},
		{"reset sent", Event{Time: ms(240), Kind: ResetSent, Src: s, Dst: c, HaveSeq: true, Flags: rst, Seq: 501}, 10},
		{"reset sent with another seq", Event{Time: ms(240), Kind: ResetSent, Src: s, Dst: c, HaveSeq: true, Flags: rst, Seq: 502}, 0},
		{"reset received", Event{Time: ms(240), Kind: ResetReceived, Src: c, Dst: s}, 10},
		{"closed by the reset", st(240, c, s, capture.FinWait2, capture.Closed, 7), 0},
		{"listener closed", st(240, s, netip.AddrPort{}, capture.Listen, capture.Closed, 3), 0},
		{"congestion change", Event{Time: ms(220), Kind: CongestionChange, Src: c, Dst: s}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The cookie's tuple comes from the socket's other events.
			evs := []Event{tc.event, st(1, c, s, capture.SynSent, capture.Established, 7)}
			got := Attach(evs, pkts)
			frame := 0
			for f, es := range got {
				if slices.Contains(es, tc.event) || (tc.event.Src.Port() == 0 && slices.ContainsFunc(es, func(e Event) bool { return e.NewState == capture.SynSent })) {
					frame = f
				}
			}
			if frame != tc.frame {
				t.Errorf("attached to frame %d, want %d (0: none)", frame, tc.frame)
			}
		})
	}
}

// TestAttachResends: a FIN and its two resends that a path delivers
// together, long after they left, are tied in order, the original to
// neither resend; with fewer copies than resends, each goes to the
// nearest in time.
func TestAttachResends(t *testing.T) {
	c := netip.MustParseAddrPort("10.0.0.1:40000")
	s := netip.MustParseAddrPort("10.0.0.2:80")
	ms := atMs
	const fin, ack = capture.FIN, capture.ACK
	finAt := func(frame, at int) capture.Packet {
		return capture.Packet{TCP: true, Segment: capture.Segment{Frame: frame, Time: ms(at), Src: s, Dst: c, Flags: fin | ack, Seq: 500, Ack: 101}}
	}
	resend := func(at int) Event {
		return Event{Time: ms(at), Kind: Retransmit, Src: s, Dst: c, HaveSeq: true, Flags: fin | ack, Seq: 500, End: 501}
	}
	events := []Event{resend(230), resend(460)}
	for _, tc := range []struct {
		name string
		pkts []capture.Packet
		want map[int]int // frame -> resends tied to it
	}{
		{"delivered together", []capture.Packet{finAt(1, 590), finAt(2, 590), finAt(3, 591)}, map[int]int{2: 1, 3: 1}},
		{"each on time", []capture.Packet{finAt(1, 0), finAt(2, 230), finAt(3, 460)}, map[int]int{2: 1, 3: 1}},
		{"one resend lost before the capture", []capture.Packet{finAt(1, 0), finAt(2, 455)}, map[int]int{2: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[int]int{}
			for f, es := range Attach(events, tc.pkts) {
				got[f] = len(es)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("tied %v, want %v", got, tc.want)
			}
			for f, n := range tc.want {
				if got[f] != n {
					t.Errorf("tied %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestAttachDropBeforeResend: a copy held in another CPU's backlog is
// dropped after the duplicate ACKs it missed made the sender resend, yet
// before the resend left; the drop is the original's though its capture
// time is nearer the resend's frame, and a drop after the resend left
// may be the resend's.
func TestAttachDropBeforeResend(t *testing.T) {
	c := netip.MustParseAddrPort("10.0.0.1:40000")
	s := netip.MustParseAddrPort("10.0.0.2:80")
	t0 := time.Unix(1000, 0)
	us := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Microsecond) }
	const pa = capture.PSH | capture.ACK
	piece := func(frame, at int) capture.Packet {
		return capture.Packet{TCP: true, Segment: capture.Segment{Frame: frame, Time: us(at), Src: c, Dst: s, Flags: pa, Seq: 4001, Ack: 1, Len: 1000}}
	}
	pkts := []capture.Packet{piece(12, 0), piece(15, 240)}
	resend := Event{Time: us(239), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Flags: pa, Seq: 4001, End: 5001}
	drop := func(at int) Event {
		return Event{Time: us(at), Kind: Drop, Src: c, Dst: s, HaveSeq: true, Flags: pa, Seq: 4001, Ack: 1, Len: 1000}
	}
	for _, tc := range []struct {
		name string
		drop Event
		want int
	}{
		{"dropped before the resend", drop(205), 12},
		{"dropped after the resend", drop(250), 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Attach([]Event{tc.drop, resend}, pkts)
			if !slices.Contains(got[tc.want], tc.drop) {
				t.Errorf("drop tied as %v, want to frame %d", got, tc.want)
			}
			if !slices.Contains(got[15], resend) {
				t.Errorf("resend tied as %v, want to frame 15", got)
			}
		})
	}
}

// TestAttachResendMissing: a zero window's segment sent four times, of
// whose three resends the account holds the first two; each is tied to
// its own copy, not shifted onto the copies after it.
func TestAttachResendMissing(t *testing.T) {
	c := netip.MustParseAddrPort("10.0.0.1:40000")
	s := netip.MustParseAddrPort("10.0.0.2:80")
	ms := atMs
	const pa = capture.PSH | capture.ACK
	piece := func(frame, at int) capture.Packet {
		return capture.Packet{TCP: true, Segment: capture.Segment{Frame: frame, Time: ms(at), Src: c, Dst: s, Flags: pa, Seq: 32742, Ack: 1, Len: 32741}}
	}
	pkts := []capture.Packet{piece(6, 2), piece(8, 212), piece(10, 420), piece(12, 852)}
	resend := func(at int) Event {
		return Event{Time: ms(at), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Flags: pa, Seq: 32742, End: 65483, Cause: CauseTailLossProbe}
	}
	tlp, rto := resend(212), resend(420)
	rto.Cause = CauseRTO
	got := Attach([]Event{tlp, rto}, pkts)
	if !slices.Contains(got[8], tlp) || !slices.Contains(got[10], rto) || len(got[12]) != 0 || len(got[6]) != 0 {
		t.Errorf("tied %v; want the probe to frame 8, the RTO to frame 10", got)
	}
}

// TestAttachResendNotSent: a retransmission the kernel attempted and did
// not send (EBUSY: the original still queued on the host) has no frame,
// and takes none from the resends that were sent: the RTO's two
// attempts, one failed, leave the sent one on its copy.
func TestAttachResendNotSent(t *testing.T) {
	c := netip.MustParseAddrPort("10.0.0.1:40000")
	s := netip.MustParseAddrPort("10.0.0.2:80")
	ms := atMs
	const pa = capture.PSH | capture.ACK
	piece := func(frame, at int) capture.Packet {
		return capture.Packet{TCP: true, Segment: capture.Segment{Frame: frame, Time: ms(at), Src: c, Dst: s, Flags: pa, Seq: 100, Ack: 1, Len: 10}}
	}
	pkts := []capture.Packet{piece(6, 2), piece(8, 420), piece(10, 850)}
	resend := func(at int, err syscall.Errno) Event {
		return Event{Time: ms(at), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Flags: pa, Seq: 100, End: 110, Cause: CauseRTO, Err: err}
	}
	busy, first, second := resend(210, syscall.EBUSY), resend(420, 0), resend(850, 0)
	got := Attach([]Event{busy, first, second}, pkts)
	for f, evs := range got {
		if slices.Contains(evs, busy) {
			t.Errorf("the attempt not sent is tied to frame %d", f)
		}
	}
	if !slices.Contains(got[8], first) || !slices.Contains(got[10], second) || len(got[6]) != 0 {
		t.Errorf("tied %v; want the sent resends to frames 8 and 10", got)
	}
	// Alone, nearest in time, it would take the first resend's copy.
	if got := Attach([]Event{busy}, pkts[:2]); len(got) != 0 {
		t.Errorf("the attempt not sent is tied: %v", got)
	}
}

// TestAttachResendOfAPiece: a resend of a piece of a larger segment (a
// tail loss probe sends the last MSS of it; an RTO after a partial ACK,
// the rest) starts at a sequence number no earlier frame started at: its
// first copy is a resend, not the original. Seen in walkthrough (the
// probe left untied, the wire's retransmission label then contradicted)
// and rcvbuf (each resend of a split segment tied to the next copy).
func TestAttachResendOfAPiece(t *testing.T) {
	c := netip.MustParseAddrPort("127.0.0.1:40000")
	s := netip.MustParseAddrPort("127.0.0.1:8000")
	ms := atMs
	seg := func(frame, at int, seq uint32, n int) capture.Packet {
		return capture.Packet{TCP: true, Segment: capture.Segment{Frame: frame, Time: ms(at), Src: c, Dst: s, Flags: capture.ACK, Seq: seq, Ack: 1, Len: n}}
	}
	resend := func(at int, seq, end uint32, cause RetransCause) Event {
		return Event{Time: ms(at), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Flags: capture.ACK, Seq: seq, End: end, Cause: cause}
	}
	t.Run("loss probe of the last MSS", func(t *testing.T) {
		pkts := []capture.Packet{seg(11, 101, 8193, 4096), seg(12, 115, 10241, 2048)}
		tlp := resend(115, 10241, 12289, CauseTailLossProbe)
		if got := Attach([]Event{tlp}, pkts); !slices.Contains(got[12], tlp) {
			t.Errorf("tied %v; want the probe on frame 12", got)
		}
	})
	t.Run("split by an RTO, each piece resent", func(t *testing.T) {
		// 32742-65483 sent whole (frame 6), then resent in two pieces
		// twice: 32742+7968 and 40710+24773.
		pkts := []capture.Packet{seg(6, 15, 32742, 32741), seg(15, 1679, 32742, 7968), seg(17, 1680, 40710, 24773), seg(20, 1887, 40710, 7968)}
		first, second := resend(1679, 40710, 65483, CauseRTO), resend(1887, 40710, 48678, CauseRTO)
		got := Attach([]Event{first, second}, pkts)
		if !slices.Contains(got[17], first) || !slices.Contains(got[20], second) {
			t.Errorf("tied %v; want the resends of 40710 on frames 17 and 20", got)
		}
	})
	t.Run("a FIN resent alone after data that carried it", func(t *testing.T) {
		fin := capture.Packet{TCP: true, Segment: capture.Segment{Frame: 7, Time: ms(300), Src: c, Dst: s, Flags: capture.FIN | capture.ACK, Seq: 111, Ack: 1}}
		pkts := []capture.Packet{seg(6, 100, 101, 10), fin}
		pkts[0].Segment.Flags |= capture.FIN
		e := Event{Time: ms(300), Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Flags: capture.FIN | capture.ACK, Seq: 111, End: 112, Cause: CauseRTO}
		if got := Attach([]Event{e}, pkts); !slices.Contains(got[7], e) {
			t.Errorf("tied %v; want the FIN's resend on frame 7", got)
		}
	})
	t.Run("a new segment is no resend", func(t *testing.T) {
		// The same numbers, the piece sent first: frame 12 is an
		// original and the event, nearest in time, may not take it.
		pkts := []capture.Packet{seg(11, 101, 8193, 2048), seg(12, 115, 10241, 2048)}
		if got := Attach([]Event{resend(115, 10241, 12289, CauseTailLossProbe)}, pkts); len(got) != 0 {
			t.Errorf("tied %v to an original", got)
		}
	})
}

// atMs is n milliseconds after the tests' clock zero.
func atMs(n int) time.Time { return time.Unix(1000, 0).Add(time.Duration(n) * time.Millisecond) }
