package capture

import (
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// closedSteps is a handshake and the client's close: FIN, ACK, FIN, ACK.
func closedSteps() []step {
	return append(handshake(),
		step{cs, FIN | ACK, 1, 1, 0, 502, nil, 0},
		step{sc, ACK, 1, 2, 0, 509, nil, 0},
		step{sc, FIN | ACK, 1, 2, 0, 509, nil, 0},
		step{cs, ACK, 2, 2, 0, 502, nil, 0})
}

// TestRSTAcceptance: a RST ends a connection only when its receiver
// takes it (RFC 5961 section 3, as Linux does): exactly at RCV.NXT (or
// RCV.NXT-1 after a FIN from its sender), in SYN_SENT only with an ACK of
// the SYN. An inexact RST inside the window is challenged and the
// connection goes on, one outside it is dropped; both are reported as
// ignored, leave the states as they were, and are no reset.
func TestRSTAcceptance(t *testing.T) {
	est := [2]State{Established, Established}
	tests := []struct {
		name  string
		steps []step
		rst   int      // index of the RST checked
		check RSTCheck // what its receiver made of it
		after [2]State // the states the RST's annotation shows
		final [2]State // the summary's states at the end
		reset int      // index of the RST that reset the connection; -1 none
		// events are the closing events; text must be in Ending.String.
		events, text string
	}{{
		name: "exact",
		steps: append(handshake(),
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			step{sc, ACK, 1, 101, 0, 509, nil, 0},
			step{cs, RST | ACK, 101, 1, 0, 0, nil, 0}),
		rst: 5, check: RSTReset, after: [2]State{Closed, Closed}, final: [2]State{Closed, Closed}, reset: 5,
		events: "C>S RST", text: "reset by the client (frame 6) in ESTABLISHED",
	}, {
		name: "in-window-inexact",
		steps: append(handshake(),
			step{cs, RST, 1001, 0, 0, 0, nil, 0},
			step{sc, ACK, 1, 1, 0, 509, nil, 0}, // the challenge ACK
			step{cs, PSH | ACK, 1, 1, 4, 502, nil, 0},
			step{sc, ACK, 1, 5, 0, 509, nil, 0},
			step{cs, RST, 5, 0, 0, 0, nil, 0}),
		rst: 3, check: RSTChallenged, after: est, final: [2]State{Closed, Closed}, reset: 7,
		events: "C>S ignored-RST,C>S RST",
		text:   "the server ignored the client's RST (frame 4): inside its window, but 1000 past RCV.NXT, so it answered with a challenge ACK",
	}, {
		name: "out-of-window",
		steps: append(handshake(),
			step{cs, RST, 1 << 24, 0, 0, 0, nil, 0},
			step{cs, PSH | ACK, 1, 1, 4, 502, nil, 0},
			step{sc, ACK, 1, 5, 0, 509, nil, 0}),
		rst: 3, check: RSTDropped, after: est, final: est, reset: -1,
		events: "C>S ignored-RST", text: "not closed: no FIN or RST by the end of the capture; the server ignored the client's RST (frame 4): outside its window",
	}, {
		name: "before-rcv-wup",
		steps: append(handshake(),
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			step{sc, ACK, 1, 101, 0, 509, nil, 0},
			step{cs, RST, 51, 0, 0, 0, nil, 0}),
		rst: 5, check: RSTDropped, after: est, final: est, reset: -1,
		events: "C>S ignored-RST", text: "outside its window (-50 past RCV.NXT)",
	}, {
		name: "syn-sent-without-ack-of-syn",
		steps: []step{
			{cs, SYN, 0, 0, 0, 64240, synOptions(), 0},
			{sc, RST | ACK, 0, 0, 0, 0, nil, 0}, // acknowledges nothing the client sent
			{sc, RST, 0, 0, 0, 0, nil, 0},       // no ACK at all
			{sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), 0},
			{cs, ACK, 1, 1, 0, 502, nil, 0},
		},
		rst: 1, check: RSTDropped, after: [2]State{SynSent, Listen}, final: est, reset: -1,
		events: "S>C ignored-RST,S>C ignored-RST", text: "in SYN_SENT a RST counts only if it acknowledges the SYN",
	}, {
		name: "syn-sent-refused",
		steps: []step{
			{cs, SYN, 0, 0, 0, 64240, synOptions(), 0},
			{sc, RST | ACK, 0, 1, 0, 0, nil, 0},
		},
		rst: 1, check: RSTReset, after: [2]State{Closed, Closed}, final: [2]State{Closed, Closed}, reset: 1,
		events: "S>C RST", text: "refused: the server answered the client's SYN with a RST (frame 2)",
	}, {
		name: "after-fin-rcv-nxt-minus-1",
		steps: append(handshake(),
			step{cs, FIN | ACK, 1, 1, 0, 502, nil, 0},
			step{sc, ACK, 1, 2, 0, 509, nil, 0},
			step{cs, RST, 1, 0, 0, 0, nil, 0}),
		rst: 5, check: RSTReset, after: [2]State{Closed, Closed}, final: [2]State{Closed, Closed}, reset: 5,
		events: "C>S FIN,S>C ACK,C>S RST", text: "reset by the client (frame 6) in FIN_WAIT_2",
	}, {
		// The server holds [101, 201) out of order, its SACK block's
		// right edge: Linux takes a RST there too.
		name: "at-sack-edge",
		steps: append(handshake(),
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			step{cs, PSH | ACK, 101, 1, 100, 502, nil, 0},
			step{cs, PSH | ACK, 201, 1, 100, 502, nil, 0},
			step{sc, ACK, 1, 1, 0, 509, []layers.TCPOption{optSACK(defaultClientISN+101, defaultClientISN+201)}, 0},
			step{cs, RST, 201, 0, 0, 0, nil, 0}),
		rst: 7, check: RSTReset, after: [2]State{Closed, Closed}, final: [2]State{Closed, Closed}, reset: 7,
		events: "C>S RST", text: "reset by the client (frame 8)",
	}, {
		// In TIME_WAIT only a RST at RCV.NXT counts; this one is 10
		// past it.
		name: "time-wait-inexact",
		steps: append(closedSteps(),
			step{sc, RST, 12, 0, 0, 0, nil, 0}),
		rst: 7, check: RSTDropped, after: [2]State{TimeWait, Closed}, final: [2]State{TimeWait, Closed}, reset: -1,
		events: "C>S FIN,S>C ACK,S>C FIN,C>S ACK,S>C ignored-RST", text: "in TIME_WAIT only a RST at RCV.NXT counts, and it was 10 past it",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, a := conv{steps: tt.steps}.annotate(t)
			if st := [2]State{got[tt.rst].ann.Client, got[tt.rst].ann.Server}; st != tt.after {
				t.Errorf("states after the RST: %v, want %v", st, tt.after)
			}
			sums := a.Conns()
			if len(sums) != 1 {
				t.Fatalf("%d connections, want 1", len(sums))
			}
			s := sums[0]
			if st := [2]State{s.ClientState, s.ServerState}; st != tt.final {
				t.Errorf("final states %v, want %v", st, tt.final)
			}
			e := s.Ending
			switch {
			case tt.reset < 0 && e.Reset.Frame != 0:
				t.Errorf("reset by frame %d, want none: %s", e.Reset.Frame, e.String())
			case tt.reset >= 0 && e.Reset.Frame != tt.reset+1:
				t.Errorf("reset by frame %d, want %d: %s", e.Reset.Frame, tt.reset+1, e.String())
			}
			if tt.check == RSTReset {
				if e.Ignored.Frame != 0 || e.NIgnored != 0 {
					t.Errorf("RST of frame %d ignored: %s", e.Ignored.Frame, e.String())
				}
			} else if e.Ignored.Frame != tt.rst+1 || e.Ignored.Check != tt.check {
				t.Errorf("ignored RST: frame %d, %v; want frame %d, %v", e.Ignored.Frame, e.Ignored.Check, tt.rst+1, tt.check)
			}
			var evs []string
			for _, ev := range e.Events() {
				evs = append(evs, ev.String())
			}
			if strings.Join(evs, ",") != tt.events {
				t.Errorf("events %q, want %q", strings.Join(evs, ","), tt.events)
			}
			if !strings.Contains(e.String(), tt.text) {
				t.Errorf("ending %q lacks %q", e.String(), tt.text)
			}
			// The one model: packets alone give the same ending.
			var tr EndingTracker
			for _, p := range got {
				tr.Add(&p.seg, p.ann.Dir, p.ann.Client, p.ann.Server)
			}
			if alone := tr.Ending(); alone.String() != e.String() {
				t.Errorf("EndingTracker over the packets: %q; the annotator's: %q", alone.String(), e.String())
			}
		})
	}
}
