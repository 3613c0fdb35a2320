package capture

import (
	"runtime"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/capgen"
)

// TestEvictBoundsMemory annotates a capture of 1,000,000 short
// connections, 1,000 open at a time, with EvictClosed: the connections
// held never exceed those open plus those closed within Linger, the heap
// stays under a bound that holding every connection would break many
// times over, and the summaries handed out plus those held account for
// every connection and segment.
func TestEvictBoundsMemory(t *testing.T) {
	const (
		n          = 1_000_000
		concurrent = 1000
		gap        = 50 * time.Microsecond // 6M frames over 300 s of capture
		// In Linger, 100,000 frames pass: 16,667 connections' worth.
		maxHeld = concurrent + int(Linger/gap)/capgen.ShortConnFrames + concurrent
		maxHeap = 64 << 20
	)
	a := NewAnnotator()
	evicted, evictedSegs := 0, 0
	a.EvictClosed(func(s *ConnSummary) {
		evicted++
		evictedSegs += s.Segments
		if s.Segments != capgen.ShortConnFrames || s.ClientState != TimeWait || s.ServerState != Closed {
			t.Fatalf("evicted %s", Summary(s))
		}
	})
	src := &capgen.ShortConns{N: n, Concurrent: concurrent, Gap: gap}
	var ms runtime.MemStats
	peakHeld, peakHeap := 0, uint64(0)
	counts, err := Walk(src, a, func(p *Packet) error {
		if p.Segment.Frame%100_000 == 0 {
			peakHeld = max(peakHeld, a.Held())
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts.TCP != n*capgen.ShortConnFrames {
		t.Fatalf("%d TCP frames, want %d", counts.TCP, n*capgen.ShortConnFrames)
	}
	held := a.Conns()
	heldSegs := 0
	for _, c := range held {
		heldSegs += c.Segments
	}
	if evicted+len(held) != n || evictedSegs+heldSegs != counts.TCP || a.streams != n {
		t.Errorf("%d evicted + %d held connections (%d streams), %d + %d segments; want %d and %d",
			evicted, len(held), a.streams, evictedSegs, heldSegs, n, counts.TCP)
	}
	if peakHeld > maxHeld {
		t.Errorf("held up to %d connections, want at most %d", peakHeld, maxHeld)
	}
	if peakHeap > maxHeap {
		t.Errorf("heap reached %d MiB, want at most %d MiB", peakHeap>>20, maxHeap>>20)
	}
	t.Logf("%d connections: at most %d held, heap at most %.1f MiB", n, peakHeld, float64(peakHeap)/(1<<20))
}
