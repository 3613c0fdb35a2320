package ktrace

import (
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
