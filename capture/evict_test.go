package capture

import (
	"encoding/binary"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// shortConns is a Source of n short connections, made on the fly: each a
// handshake, the client's FIN, the server's FIN and the last ACK, from a
// client address and port of its own to one server. Connections run
// concurrent at a time, interleaved, and the capture clock advances gap
// per frame.
type shortConns struct {
	n, concurrent int
	gap           time.Duration
	frame         int // frames made so far
	at            time.Time
	buf           [54]byte
}

// shortConnFrames are the frames of one short connection: direction
// (0 client to server), flags, seq and ack relative to the ISNs (1000 for
// the client, 5000 for the server).
var shortConnFrames = [...]struct {
	dir      int
	flags    Flags
	seq, ack uint32
}{
	{0, SYN, 0, 0}, {1, SYN | ACK, 0, 1}, {0, ACK, 1, 1},
	{0, FIN | ACK, 1, 1}, {1, FIN | ACK, 1, 2}, {0, ACK, 2, 2},
}

func (s *shortConns) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

func (s *shortConns) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	per := len(shortConnFrames)
	if s.frame == s.n*per {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	// Frame f is step (f / concurrent) % per of connection
	// batch*concurrent + f%concurrent.
	batch, rest := s.frame/(s.concurrent*per), s.frame%(s.concurrent*per)
	step, conn := rest/s.concurrent, batch*s.concurrent+rest%s.concurrent
	s.frame++
	if s.at.IsZero() {
		s.at = testEpoch
	}
	s.at = s.at.Add(s.gap)
	st := shortConnFrames[step]
	b := s.buf[:]
	clear(b)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 40)
	client := [4]byte{10, byte(conn >> 16), byte(conn >> 8), byte(conn)}
	server := [4]byte{192, 168, 0, 101}
	tcp := b[34:54]
	cport, sport := uint16(40000+conn%20000), uint16(8000)
	seq, ack := 1000+st.seq, 5000+st.ack
	if st.dir == 0 {
		copy(ip[12:], client[:])
		copy(ip[16:], server[:])
		binary.BigEndian.PutUint16(tcp[0:], cport)
		binary.BigEndian.PutUint16(tcp[2:], sport)
	} else {
		copy(ip[12:], server[:])
		copy(ip[16:], client[:])
		binary.BigEndian.PutUint16(tcp[0:], sport)
		binary.BigEndian.PutUint16(tcp[2:], cport)
		seq, ack = 5000+st.seq, 1000+st.ack
	}
	if !st.flags.Has(ACK) {
		ack = 0
	}
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12], tcp[13] = 5<<4, byte(st.flags)
	binary.BigEndian.PutUint16(tcp[14:], 1000)
	return b, gopacket.CaptureInfo{Timestamp: s.at, CaptureLength: len(b), Length: len(b)}, nil
}

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
		maxHeld = concurrent + int(Linger/gap)/len(shortConnFrames) + concurrent
		maxHeap = 64 << 20
	)
	a := NewAnnotator()
	evicted, evictedSegs := 0, 0
	a.EvictClosed(func(s *ConnSummary) {
		evicted++
		evictedSegs += s.Segments
		if s.Segments != len(shortConnFrames) || s.ClientState != TimeWait || s.ServerState != Closed {
			t.Fatalf("evicted %s", Summary(s))
		}
	})
	src := &shortConns{n: n, concurrent: concurrent, gap: gap}
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
	if counts.TCP != n*len(shortConnFrames) {
		t.Fatalf("%d TCP frames, want %d", counts.TCP, n*len(shortConnFrames))
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
