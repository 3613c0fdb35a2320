package ktrace

import (
	"net/netip"
	"slices"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// AttachWindow is how far apart in time an event and its frame may be.
// The tracepoint and the capture read different clocks at different points
// of the kernel's path; a segment and its retransmission, which share
// their tuple and sequence number, are at least a retransmission timeout
// (or a loss probe's, some milliseconds) apart, so the nearest in time of
// the frames that match is the event's.
const AttachWindow = time.Second

// Attach ties events to the frames of a capture of the same connections,
// by tuple and sequence number, and returns the events of each frame by
// its frame number (capture.Segment.Frame), in the order of events:
//
//   - a Drop, to the dropped segment (captured before the kernel dropped
//     it on its way in);
//   - a Retransmit or RetransmitSYNACK, to the segment sent again (one
//     the kernel attempted and did not send, Err set, to none);
//   - a ResetSent, to the RST; a ResetReceived, to the RST that came in;
//   - a StateChange, to the segment that made it or that it sent: the SYN
//     for SYN_SENT, the peer's SYN-ACK for ESTABLISHED, the peer's FIN for
//     CLOSE_WAIT, the socket's FIN for FIN_WAIT_1 and LAST_ACK, and so on.
//
// Of the frames that match, the one nearest the event in time is chosen,
// and only within AttachWindow, a resend never to the first copy (unless
// an earlier, larger segment carried its first byte: it resends a piece
// of that one), a drop never to a copy resent after it;
// but where the capture holds more copies of
// a segment than its resends, the first copy is the original and the
// resends go to the copies after it, in order (resendFrames). Events without a frame (a listener's
// changes, a CongestionChange, a segment the capture lacks) are left out.
func Attach(events []Event, pkts []capture.Packet) map[int][]Event {
	// A socket's first change comes before it has a port: take the
	// tuple from its other events.
	tuples := map[uint64][2]netip.AddrPort{}
	for _, e := range events {
		if e.Cookie != 0 && e.Src.Port() != 0 {
			tuples[e.Cookie] = [2]netip.AddrPort{e.Src, e.Dst}
		}
	}
	// The sequence number after each FIN, by its sender and receiver: an
	// ACK of a FIN acknowledges it.
	fins := map[[2]netip.AddrPort]map[uint32]bool{}
	for i := range pkts {
		if s := &pkts[i].Segment; pkts[i].TCP && s.Flags.Has(capture.FIN) {
			k := [2]netip.AddrPort{s.Src, s.Dst}
			if fins[k] == nil {
				fins[k] = map[uint32]bool{}
			}
			fins[k][s.Seq+uint32(s.Len)+1] = true
		}
	}
	evs := make([]Event, len(events))
	for i, e := range events {
		if e.Src.Port() == 0 {
			if t, ok := tuples[e.Cookie]; ok && e.Cookie != 0 {
				e.Src, e.Dst = t[0], t[1]
			}
		}
		evs[i] = e
	}
	resends := resendFrames(evs, pkts, fins)
	// A copy that its sender's kernel sent after a drop is not the copy
	// dropped: both times are the kernel's own, so this holds where the
	// nearest capture time does not (a copy held in another CPU's
	// backlog is dropped after the resend was decided, nearer in time to
	// the resend's frame than to its own).
	resentAt := map[int]time.Time{}
	for k, j := range resends {
		resentAt[j] = evs[k].Time
	}
	out := map[int][]Event{}
	for k, e := range evs {
		if j, ok := resends[k]; ok {
			f := pkts[j].Segment.Frame
			out[f] = append(out[f], e)
			continue
		}
		match := matcher(e, fins[[2]netip.AddrPort{e.Src, e.Dst}])
		if match == nil {
			continue
		}
		best, bestGap := -1, AttachWindow+1
		resend := e.Kind == Retransmit || e.Kind == RetransmitSYNACK
		original := !resend || !inEarlier(pkts, &e)
		for i := range pkts {
			p := &pkts[i]
			if !p.TCP || !match(&p.Segment) {
				continue
			}
			// The first copy of a segment is the one sent first, never a
			// resend: a capture that began before the connection holds
			// it, as the lab's do. A resend the capture lacks (taken after
			// it stopped) is left out rather than put on the original.
			if resend && original {
				original = false
				continue
			}
			if at, ok := resentAt[i]; ok && e.Kind == Drop && at.After(e.Time) {
				continue
			}
			gap := p.Segment.Time.Sub(e.Time).Abs()
			if gap < bestGap {
				best, bestGap = i, gap
			}
		}
		if best >= 0 {
			f := pkts[best].Segment.Frame
			out[f] = append(out[f], e)
		}
	}
	return out
}

// resendFrames ties the resends of one segment to its copies in order,
// where the capture holds more copies than resends: the first copy is
// then the original, and the k-th resend is the k-th copy after the ones
// before it. A path that holds segments back (a busy delay line) can
// deliver a FIN and its resends together, where the nearest in time is
// the original for every one of them. It returns the index of pkts of
// each event it ties, by index of evs; the others are tied by time.
func resendFrames(evs []Event, pkts []capture.Packet, fins map[[2]netip.AddrPort]map[uint32]bool) map[int]int {
	type key struct {
		src, dst netip.AddrPort
		seq      uint32
		flags    capture.Flags
	}
	groups := map[key][]int{}
	var order []key
	for i := range evs {
		e := &evs[i]
		if e.Kind != Retransmit && e.Kind != RetransmitSYNACK || e.Err != 0 {
			continue
		}
		k := key{e.Src, e.Dst, e.Seq, e.Flags & (capture.SYN | capture.FIN)}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	out := map[int]int{}
	for _, k := range order {
		g := groups[k]
		if len(g) == 0 {
			continue
		}
		slices.SortStableFunc(g, func(a, b int) int { return evs[a].Time.Compare(evs[b].Time) })
		match := matcher(evs[g[0]], fins[[2]netip.AddrPort{k.src, k.dst}])
		var copies []int
		for i := range pkts {
			if pkts[i].TCP && match(&pkts[i].Segment) {
				copies = append(copies, i)
			}
		}
		// The first copy is the original, unless an earlier, larger
		// segment carried its first byte (the resend of a piece, as a
		// loss probe sends the last MSS of a larger segment).
		if len(copies) > 0 && !inEarlier(pkts, &evs[g[0]]) {
			copies = copies[1:]
		}
		if len(copies) < len(g) {
			continue
		}
		// The resends go to the copies in order, each to the copy that
		// keeps the sum of the gaps in time least. A resend the account lacks (the kernel's
		// silence on one RTO of a zero window was seen) then leaves its
		// copy unclaimed instead of shifting every resend by one.
		for n, c := range alignInOrder(g, copies, func(ev, j int) time.Duration {
			return pkts[j].Segment.Time.Sub(evs[ev].Time).Abs()
		}) {
			if pkts[c].Segment.Time.Sub(evs[g[n]].Time).Abs() <= AttachWindow {
				out[g[n]] = c
			}
		}
	}
	return out
}

// inEarlier reports whether the first frame that carried the resend e's
// first byte began before it: a larger segment sent first, of which e
// resends a piece (a tail loss probe sends the last MSS of it; an RTO
// after a partial ACK, the part not acknowledged). Every copy that begins
// at e's sequence number is then a resend.
func inEarlier(pkts []capture.Packet, e *Event) bool {
	for i := range pkts {
		s := &pkts[i].Segment
		// The sequence space it occupies: its SYN and FIN count.
		n := uint32(s.Len)
		if s.Flags.Has(capture.SYN) {
			n++
		}
		if s.Flags.Has(capture.FIN) {
			n++
		}
		if !pkts[i].TCP || s.Src != e.Src || s.Dst != e.Dst || n == 0 {
			continue
		}
		if s.Seq == e.Seq {
			return false
		}
		if e.Seq-s.Seq < n {
			return true
		}
	}
	return false
}

// alignInOrder ties each of evs to one of copies, both in time order, the
// k-th event to a copy after the (k-1)-th's, so that the sum of gap over
// the pairs is least; len(copies) >= len(evs). It returns the copy of
// each event, by the event's place in evs.
func alignInOrder(evs, copies []int, gap func(ev, copy int) time.Duration) []int {
	n, m := len(evs), len(copies)
	// cost[i][j]: the least sum tying evs[i:] to copies[j:].
	const inf = time.Duration(1<<63 - 1)
	cost := make([][]time.Duration, n+1)
	for i := range cost {
		cost[i] = make([]time.Duration, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		cost[i][m] = inf
		for j := m - 1; j >= 0; j-- {
			cost[i][j] = cost[i][j+1] // copies[j] is no resend of evs[i]
			if rest := cost[i+1][j+1]; rest != inf {
				if c := gap(evs[i], copies[j]) + rest; c < cost[i][j] {
					cost[i][j] = c
				}
			}
		}
	}
	out := make([]int, 0, n)
	for i, j := 0, 0; i < n; j++ {
		if cost[i][j] != cost[i][j+1] || m-j == n-i {
			out = append(out, copies[j])
			i++
		}
	}
	return out
}

// matcher returns the test of a segment that the event e is about, or nil
// when no segment is; finEnds holds the sequence numbers after the FINs
// that e's socket sent.
func matcher(e Event, finEnds map[uint32]bool) func(*capture.Segment) bool {
	out := func(s *capture.Segment) bool { return s.Src == e.Src && s.Dst == e.Dst }
	in := func(s *capture.Segment) bool { return s.Src == e.Dst && s.Dst == e.Src }
	has := func(s *capture.Segment, f capture.Flags) bool { return s.Flags.Has(f) }
	switch e.Kind {
	case Drop:
		if !e.HaveSeq {
			return nil
		}
		return func(s *capture.Segment) bool {
			return out(s) && s.Seq == e.Seq && s.Ack == e.Ack && s.Flags == e.Flags && s.Len == e.Len
		}
	case Retransmit, RetransmitSYNACK:
		if e.Err != 0 {
			return nil // attempted, not sent: no frame is its
		}
		// A resend occupies sequence space: a bare ACK with the same
		// sequence number is no copy of it.
		return func(s *capture.Segment) bool {
			return out(s) && s.Seq == e.Seq && has(s, e.Flags&(capture.SYN|capture.FIN)) && (s.Len > 0 || s.Flags&(capture.SYN|capture.FIN) != 0)
		}
	case ResetSent:
		if !e.HaveSeq {
			return func(s *capture.Segment) bool { return out(s) && has(s, capture.RST) }
		}
		return func(s *capture.Segment) bool {
			return out(s) && s.Flags == e.Flags && s.Seq == e.Seq && (!e.Flags.Has(capture.ACK) || s.Ack == e.Ack)
		}
	case ResetReceived:
		return func(s *capture.Segment) bool { return in(s) && has(s, capture.RST) }
	case StateChange:
		return stateMatcher(e, in, out, finEnds)
	}
	return nil
}

// stateMatcher says which segment made a socket change state, or which it
// sent as it did (RFC 9293's diagram, as Linux follows it).
func stateMatcher(e Event, in, out func(*capture.Segment) bool, finEnds map[uint32]bool) func(*capture.Segment) bool {
	flags := func(dir func(*capture.Segment) bool, want, not capture.Flags) func(*capture.Segment) bool {
		return func(s *capture.Segment) bool { return dir(s) && s.Flags.Has(want) && s.Flags&not == 0 }
	}
	const syn, ack, fin, rst = capture.SYN, capture.ACK, capture.FIN, capture.RST
	ackOfFIN := func(s *capture.Segment) bool {
		return in(s) && s.Flags.Has(ack) && s.Flags&rst == 0 && finEnds[s.Ack]
	}
	switch o, n := e.OldState, e.NewState; {
	case n == capture.SynSent:
		return flags(out, syn, ack)
	case o == capture.SynSent && n == capture.Established:
		return flags(in, syn|ack, 0)
	case o == capture.Listen && n == capture.SynReceived, o == capture.SynReceived && n == capture.Established:
		// Linux makes the child socket when the handshake's ACK comes.
		return flags(in, ack, syn|rst)
	case n == capture.FinWait1, n == capture.LastACK:
		return flags(out, fin, 0)
	case n == capture.CloseWait, n == capture.Closing:
		return flags(in, fin, 0)
	case o == capture.FinWait1 && n == capture.FinWait2:
		return ackOfFIN
	case o == capture.FinWait2 && n == capture.Closed:
		return flags(in, fin, rst)
	case (o == capture.Closing || o == capture.LastACK) && n == capture.Closed:
		return ackOfFIN
	case n == capture.Closed && o != capture.Listen:
		// Aborted: a RST either way.
		return func(s *capture.Segment) bool { return (in(s) || out(s)) && s.Flags.Has(rst) }
	}
	return nil
}
