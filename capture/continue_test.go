package capture

import (
	"errors"
	"github.com/tcplab/tcplab/internal/capgen"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// walkEvicting is walkFrames with an Annotator that evicts closed
// connections; it also returns the summaries handed out.
func walkEvicting(tb testing.TB, lt layers.LinkType, frames []capturedFrame) ([]annotated, []ConnSummary) {
	tb.Helper()
	a := NewAnnotator()
	var sums []ConnSummary
	a.EvictClosed(func(s *ConnSummary) { sums = append(sums, *s) })
	var out []annotated
	_, err := Walk(&frameSource{lt: lt, frames: frames}, a, func(p *Packet) error {
		if p.TCP {
			out = append(out, annotated{p.Segment, p.Annotation})
		}
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		tb.Fatalf("walk: %v", err)
	}
	return out, append(sums, a.Conns()...)
}

// closed returns the steps of a connection opened and closed by the
// client first, the last ACK at 7ms.
func closed() []step {
	return append(handshake(),
		step{cs, FIN | ACK, 1, 1, 0, 502, nil, 0},
		step{sc, FIN | ACK, 1, 2, 0, 509, nil, 0},
		step{cs, ACK, 2, 2, 0, 502, nil, 0})
}

// TestContinuation: a segment on the 4-tuple of a closed connection
// continues it, however late, as Wireshark continues it; only a SYN with a
// new initial sequence number starts a new stream, labelled reused-ports.
// tcplab's annotate forgets closed connections after Linger, so each case
// is annotated by an evicting Annotator too, and both must agree with
// tshark frame by frame.
func TestContinuation(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		steps   []step
		streams []int // each segment's stream
		resumed int   // summaries with Resumed set, evicting
	}{{
		name: "late-fin-12s",
		// The server's FIN again, 12 s after the last ACK: the ACK was
		// lost, and the server backs off.
		steps:   append(closed(), step{sc, FIN | ACK, 1, 2, 0, 509, nil, 12 * s}),
		streams: []int{0, 0, 0, 0, 0, 0, 0},
		resumed: 1,
	}, {
		name: "data-after-injected-rst",
		steps: append(handshake(),
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
			step{sc, RST | ACK, 1, 101, 0, 0, nil, 0},
			step{cs, PSH | ACK, 101, 1, 100, 502, nil, 6 * s},
			step{sc, RST, 1, 0, 0, 0, nil, 0}),
		streams: []int{0, 0, 0, 0, 0, 0, 0},
		resumed: 1,
	}, {
		name: "new-syn-after-close",
		steps: append(closed(),
			step{cs, SYN, 5000, 0, 0, 64240, synOptions(), 10 * s},
			step{sc, SYN | ACK, 7000, 5001, 0, 65160, synOptions(), 0},
			step{cs, ACK, 5001, 7001, 0, 502, nil, 0}),
		streams: []int{0, 0, 0, 0, 0, 0, 1, 1, 1},
	}, {
		name: "new-syn-after-rst",
		steps: append(handshake(),
			step{sc, RST | ACK, 1, 1, 0, 0, nil, 0},
			step{cs, SYN, 5000, 0, 0, 64240, synOptions(), 1 * s},
			step{sc, SYN | ACK, 7000, 5001, 0, 65160, synOptions(), 0},
			step{cs, ACK, 5001, 7001, 0, 502, nil, 0}),
		streams: []int{0, 0, 0, 0, 1, 1, 1},
	}, {
		name: "server-side-syn-after-close",
		steps: append(closed(),
			step{sc, SYN, 9000, 0, 0, 64240, synOptions(), 10 * s},
			step{cs, SYN | ACK, 3000, 9001, 0, 65160, synOptions(), 0},
			step{sc, ACK, 9001, 3001, 0, 502, nil, 0}),
		streams: []int{0, 0, 0, 0, 0, 0, 1, 1, 1},
	}, {
		name: "same-isn-after-close",
		// The old SYN again: a retransmission in the old stream.
		steps: append(closed(),
			step{cs, SYN, 0, 0, 0, 64240, synOptions(), 10 * s},
			step{sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), 0},
			step{cs, ACK, 1, 1, 0, 502, nil, 0}),
		streams: []int{0, 0, 0, 0, 0, 0, 0, 0, 0},
		resumed: 1,
	}}
	cases := make([]viewCase, len(tests))
	for k, tc := range tests {
		_, cases[k] = stepCase(t, tc.steps, k)
	}
	// tshark reads each case once; both annotations are compared with
	// its view.
	ws := tsharkViews(t, cases)
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cases[k]
			kept, _ := walkFrames(t, c.lt, c.frames)
			evicting, sums := walkEvicting(t, c.lt, c.frames)
			for i, got := range [][]annotated{kept, evicting} {
				if len(got) != len(tc.streams) {
					t.Fatalf("%d segments, want %d", len(got), len(tc.streams))
				}
				for j, g := range got {
					if g.ann.Stream != tc.streams[j] {
						t.Errorf("evicting=%v: frame %d in stream %d, want %d", i == 1, g.seg.Frame, g.ann.Stream, tc.streams[j])
					}
					reused := j > 0 && tc.streams[j] != tc.streams[j-1]
					if g.ann.Labels.Has(ReusedPorts) != reused {
						t.Errorf("evicting=%v: frame %d labels [%v], reused-ports %v", i == 1, g.seg.Frame, g.ann.Labels, reused)
					}
				}
				crossCheckViews(t, ws[k], got, nil)
			}
			resumed := 0
			for _, s := range sums {
				if s.Resumed {
					resumed++
				}
			}
			if resumed != tc.resumed {
				t.Errorf("%d resumed summaries, want %d", resumed, tc.resumed)
			}
		})
	}
}

// TestTombsBounded: an evicting Annotator knows a forgotten connection for
// TombLinger, and at most MaxTombs of them.
func TestTombsBounded(t *testing.T) {
	a := NewAnnotator()
	a.EvictClosed(func(*ConnSummary) {})
	src := &capgen.ShortConns{N: MaxTombs + 5000, Concurrent: 100, Gap: time.Microsecond}
	if _, err := Walk(src, a, func(*Packet) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// Eviction runs on the next segment: one far later ends every wait.
	late := conv{client: netip.MustParseAddrPort("10.9.9.9:1"), server: server4, steps: []step{{cs, ACK, 1, 1, 0, 502, nil, 0}},
		start: src.At().Add(Linger + time.Second)}
	if _, err := Walk(&frameSource{lt: late.link.linkType(), frames: late.frames(t, 0)}, a, func(*Packet) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(a.tombs.index) != MaxTombs {
		t.Errorf("%d tombs, want MaxTombs (%d)", len(a.tombs.index), MaxTombs)
	}
	later := late
	later.start = late.start.Add(TombLinger + time.Second)
	if _, err := Walk(&frameSource{lt: later.link.linkType(), frames: later.frames(t, 0)}, a, func(*Packet) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(a.tombs.index) != 0 {
		t.Errorf("%d tombs after TombLinger, want 0", len(a.tombs.index))
	}
}
