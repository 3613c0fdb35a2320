package ktrace

import (
	"net/netip"

	"github.com/tcplab/tcplab/capture"
)

// Gaps counts the state changes that the events lack, as each socket's
// own chain of changes shows them: a socket's change must start from the
// state its change before ended in, and its first from where sockets
// start (CLOSED, or LISTEN for a connection a listener made). A socket
// the events tell of only in part has lost events that no counter saw:
// soak runs showed, about once in 600 rounds, a handshake's three
// changes missing while the changes after them were there. Each break
// counts as one change lost, at least.
func Gaps(events []Event) int {
	last := map[uint64]capture.State{}
	gaps := 0
	for i := range events {
		e := &events[i]
		if e.Kind != StateChange || e.Cookie == 0 {
			continue
		}
		prev, seen := last[e.Cookie]
		switch {
		case seen && e.OldState != prev:
			gaps++
		case !seen && e.OldState != capture.Closed && e.OldState != capture.Listen:
			gaps++
		}
		last[e.Cookie] = e.NewState
	}
	return gaps
}

// SilentResends counts the resends on the wire that the events do not
// tell of, in a direction whose resends they do tell of. A segment that
// starts where an earlier one with data, SYN or FIN started, in the same
// direction at the same capture point, is a copy that its sender's
// kernel sent again, and each Retransmit event (on this kernel the
// tracepoint runs for every resend) tells of one copy of each segment
// that starts within its range (a resend of two segments' worth leaves as
// two frames). A segment with more copies than events telling of it has
// lost events. Soak runs showed, once in tens of rounds under load, one
// resend into a zero window missing with the receiver's drop of it,
// while the resends before and after it were there and no counter saw a
// loss. A direction with no Retransmit event at all counts nothing: a
// tracer that reports no resend is a fault for the checks to find, not a
// loss.
func SilentResends(events []Event, pkts []capture.Packet) int {
	type dir [2]netip.AddrPort
	told := map[dir][]*Event{}
	for i := range events {
		if e := &events[i]; (e.Kind == Retransmit || e.Kind == RetransmitSYNACK) && e.Err == 0 {
			d := dir{e.Src, e.Dst}
			told[d] = append(told[d], e)
		}
	}
	type start struct {
		d     dir
		point int
		seq   uint32
	}
	copies := map[start]int{}
	for i := range pkts {
		s := &pkts[i].Segment
		if !pkts[i].TCP || s.Len == 0 && s.Flags&(capture.SYN|capture.FIN) == 0 {
			continue
		}
		copies[start{dir{s.Src, s.Dst}, pkts[i].Info.InterfaceIndex, s.Seq}]++
	}
	silent := 0
	for k, n := range copies {
		evs := told[k.d]
		if n < 2 || len(evs) == 0 {
			continue
		}
		covering := 0
		for _, e := range evs {
			if !e.HaveSeq || k.seq-e.Seq < max(e.End-e.Seq, 1) {
				covering++
			}
		}
		silent += max(n-1-covering, 0)
	}
	return silent
}
