package ktrace

import (
	"net/netip"
	"syscall"
	"testing"

	"github.com/tcplab/tcplab/capture"
)

// TestGaps: whole chains of state changes have no gap; a change missing
// from a socket's middle, or its first ones, is counted; other sockets'
// and other kinds of events do not break a chain.
func TestGaps(t *testing.T) {
	st := func(cookie uint64, from, to capture.State) Event {
		return Event{Kind: StateChange, Cookie: cookie, OldState: from, NewState: to}
	}
	client := []Event{
		st(1, capture.Closed, capture.SynSent),
		st(1, capture.SynSent, capture.Established),
		st(1, capture.Established, capture.FinWait1),
		st(1, capture.FinWait1, capture.FinWait2),
		st(1, capture.FinWait2, capture.Closed),
	}
	server := []Event{
		st(2, capture.Listen, capture.SynReceived),
		st(2, capture.SynReceived, capture.Established),
		st(2, capture.Established, capture.CloseWait),
		st(2, capture.CloseWait, capture.LastACK),
		st(2, capture.LastACK, capture.LastACK), // close() after shutdown(SHUT_WR)
		st(2, capture.LastACK, capture.Closed),
	}
	listener := []Event{st(3, capture.Closed, capture.Listen), st(3, capture.Listen, capture.Closed)}
	interleave := func(a, b []Event) []Event {
		var out []Event
		for i := 0; i < len(a) || i < len(b); i++ {
			if i < len(a) {
				out = append(out, a[i])
			}
			if i < len(b) {
				out = append(out, b[i], Event{Kind: Retransmit, Cookie: b[i].Cookie})
			}
		}
		return out
	}
	without := func(evs []Event, drop ...int) []Event {
		var out []Event
		for i, e := range evs {
			skip := false
			for _, d := range drop {
				skip = skip || i == d
			}
			if !skip {
				out = append(out, e)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		events []Event
		want   int
	}{
		{"whole chains", append(interleave(client, server), listener...), 0},
		{"none", nil, 0},
		{"a change missing in the middle", without(client, 1), 1},
		{"a child's creation missing (soak round 629)", without(server, 0, 1), 1},
		{"a client's creation missing", without(client, 0), 1},
		{"the last change missing", without(client, 4), 0},
		{"no cookie", []Event{{Kind: StateChange, OldState: capture.Established, NewState: capture.FinWait1}}, 0},
	} {
		if got := Gaps(tc.events); got != tc.want {
			t.Errorf("%s: %d gaps, want %d", tc.name, got, tc.want)
		}
	}
}

// TestSilentResends: a copy on the wire beyond the resends the events
// tell of, in a direction they tell of resends, counts as lost; a copy
// told, a piece resent, bare ACKs, another capture point's copy and a
// direction of which the events tell no resend at all count nothing.
func TestSilentResends(t *testing.T) {
	c, s := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:8000")
	seg := func(src, dst netip.AddrPort, f capture.Flags, seq uint32, n, point int) capture.Packet {
		p := capture.Packet{TCP: true, Segment: capture.Segment{Src: src, Dst: dst, Flags: f, Seq: seq, Len: n}}
		p.Info.InterfaceIndex = point
		return p
	}
	resent := func(seq uint32) Event {
		return Event{Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Seq: seq, End: seq + 100}
	}
	const ack, syn = capture.ACK, capture.SYN
	data := seg(c, s, ack, 1, 100, 0)
	zeroWindow := []capture.Packet{data, seg(s, c, ack, 1, 0, 0), data, seg(s, c, ack, 1, 0, 0), data, data}
	tests := []struct {
		name   string
		events []Event
		pkts   []capture.Packet
		want   int
	}{
		{"no copy", nil, []capture.Packet{data, seg(c, s, ack, 101, 100, 0)}, 0},
		{"each copy told", []Event{resent(1), resent(1), resent(1)}, zeroWindow, 0},
		{"one of three untold", []Event{resent(1), resent(1)}, zeroWindow, 1},
		{"none told: no tracing of resends to judge", nil, zeroWindow, 0},
		{"an attempt that sent nothing tells no copy", []Event{resent(1), {Kind: Retransmit, Src: c, Dst: s, Err: syscall.EBUSY}}, []capture.Packet{data, data, data}, 1},
		{"bare ACKs repeat", []Event{resent(1)}, []capture.Packet{seg(s, c, ack, 1, 0, 0), seg(s, c, ack, 1, 0, 0), data, data}, 0},
		{"two segments' worth resent at once, two frames", []Event{{Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Seq: 1, End: 201}},
			[]capture.Packet{data, seg(c, s, ack, 101, 100, 0), data, seg(c, s, ack, 101, 100, 0)}, 0},
		{"a piece resent", []Event{{Kind: Retransmit, Src: c, Dst: s, HaveSeq: true, Seq: 51, End: 101}}, []capture.Packet{data, seg(c, s, ack, 51, 50, 0)}, 0},
		{"another capture point's copy", []Event{resent(1)}, []capture.Packet{data, seg(c, s, ack, 1, 100, 1), data, seg(c, s, ack, 1, 100, 1)}, 0},
		{"a SYN resent untold", []Event{resent(1)}, []capture.Packet{data, data, seg(c, s, syn, 0, 0, 0), seg(c, s, syn, 0, 0, 0)}, 1},
		{"the other direction's resends", []Event{resent(1)}, []capture.Packet{data, data, seg(s, c, ack, 1, 10, 0), seg(s, c, ack, 1, 10, 0)}, 0},
	}
	for _, tt := range tests {
		if got := SilentResends(tt.events, tt.pkts); got != tt.want {
			t.Errorf("%s: %d silent, want %d", tt.name, got, tt.want)
		}
	}
}
