package path

import (
	"math/rand/v2"
)

// Counters count what one direction of a [Line] did with its packets.
type Counters struct {
	// In is the packets read from the sending side.
	In uint64
	// Out is the packets written to the receiving side, duplicates
	// included.
	Out uint64
	// Lost is the packets dropped by the Loss condition.
	Lost uint64
	// Duplicated is the extra copies made by the Duplicate condition.
	Duplicated uint64
	// Reordered is the packets sent without the delay by the Reorder
	// condition.
	Reordered uint64
	// Dropped is the packets (or copies) dropped because the direction
	// already held its limit of packets.
	Dropped uint64
	// Failed is the packets whose write to the receiving side failed.
	Failed uint64
}

// Stats are the counters of both directions of a [Line].
type Stats struct {
	C2S, S2C Counters
}

// held is one packet waiting in a direction for its departure time.
type held struct {
	at  int64  // departure, in nanoseconds on the line's clock
	seq uint64 // order of arrival, which breaks ties
	buf []byte // the packet, in a buffer of the direction's pool
}

// direction is the deterministic core of one direction of a Line: given
// the arrival time and the bytes of each packet, it decides what happens
// to it and when it leaves, and holds it until then. It knows nothing of
// devices or real time, so a test can feed it a synthetic sequence. It is
// not safe for concurrent use; the Line guards it with a mutex.
type direction struct {
	cond  Conditions
	rng   *rand.Rand
	limit int
	heap  []held   // min-heap on (at, seq), at most limit entries
	free  [][]byte // buffers not in use, each of capacity mtu
	busy  int64    // when the serialiser finishes the last accepted packet
	last  int64    // departure of the last packet that kept its place
	seq   uint64
	stats Counters
}

// newDirection returns a direction with limit packets of room and a pool
// of buffers of mtu bytes: limit for the held packets, one for the reader
// and one for the writer. Its generator is a PCG seeded with seed, on a
// stream of its own so that the two directions of a line differ.
func newDirection(cond Conditions, seed, stream uint64, limit, mtu int) *direction {
	d := &direction{
		cond:  cond,
		rng:   rand.New(rand.NewPCG(seed, stream)),
		limit: limit,
		heap:  make([]held, 0, limit),
		free:  make([][]byte, 0, limit+2),
	}
	for range limit + 2 {
		d.free = append(d.free, make([]byte, mtu))
	}
	return d
}

// take returns a free buffer of full length, or nil when there is none.
func (d *direction) take() []byte {
	if len(d.free) == 0 {
		return nil
	}
	b := d.free[len(d.free)-1]
	d.free = d.free[:len(d.free)-1]
	return b[:cap(b)]
}

// release returns a buffer to the pool.
func (d *direction) release(b []byte) { d.free = append(d.free, b) }

// chance draws from the generator and reports whether an event of
// percent (0 to 100) happens. It draws only when percent is not zero, so
// that a condition left out changes nothing in the others' draws.
func (d *direction) chance(percent float64) bool {
	return percent > 0 && d.rng.Float64()*100 < percent
}

// arrive decides the fate of the packet pkt, which arrived at now: its
// bytes are in a buffer from take, which the direction keeps while it
// holds the packet and releases otherwise. It returns how many packets it
// holds for it: 0, 1, or 2 with a duplicate (a copy needs a buffer of its
// own and room under the limit).
//
// The draws per packet are fixed, whatever its fate: loss, duplicate,
// then reorder and jitter for the packet, then reorder and jitter for its
// copy if it is duplicated; each only when its condition is set. So the
// same seed and the same sequence of packets give the same decisions,
// even when a packet is lost or the queue drops differ.
func (d *direction) arrive(now int64, pkt []byte) int {
	d.stats.In++
	lost := d.chance(d.cond.Loss)
	dup := d.chance(d.cond.Duplicate)
	n, dropped := 0, false
	switch {
	case lost:
		d.stats.Lost++
		d.departure(now, len(pkt), false)
	case d.hold(now, pkt):
		n++
	default:
		dropped = true
	}
	if dup {
		switch {
		case lost:
			d.departure(now, len(pkt), false)
		case dropped:
			d.stats.Dropped++
			d.departure(now, len(pkt), false)
		default:
			if cp := d.take(); cp == nil {
				d.stats.Dropped++
				d.departure(now, len(pkt), false)
			} else if d.hold(now, append(cp[:0], pkt...)) {
				d.stats.Duplicated++
				n++
			}
		}
	}
	if lost {
		d.release(pkt)
	}
	return n
}

// hold computes the departure of pkt and holds it, or drops it when the
// direction holds its limit already (its draws are taken all the same).
func (d *direction) hold(now int64, pkt []byte) bool {
	if len(d.heap) >= d.limit {
		d.departure(now, len(pkt), false)
		d.stats.Dropped++
		d.release(pkt)
		return false
	}
	at := d.departure(now, len(pkt), true)
	d.push(held{at: at, seq: d.seq, buf: pkt})
	d.seq++
	return true
}

// departure draws reorder and jitter for a packet of size bytes arriving
// at now and returns when it leaves. Only when accept is true does it
// change the direction's state (the serialiser, the last departure, the
// counters): a dropped packet's draws are taken, its time is not.
func (d *direction) departure(now int64, size int, accept bool) int64 {
	c := d.cond
	reorder := d.chance(c.Reorder)
	var jitter int64
	if c.Jitter > 0 {
		jitter = d.rng.Int64N(2*int64(c.Jitter)+1) - int64(c.Jitter)
	}
	if !accept {
		return 0
	}
	// Serialisation: the packet waits for the ones before it to be sent.
	finish := now
	if c.Rate > 0 {
		finish = max(now, d.busy) + int64(float64(size)*8e9/float64(c.Rate))
		d.busy = finish
	}
	if reorder {
		d.stats.Reordered++
		return finish
	}
	at := max(finish+int64(c.Delay)+jitter, finish)
	at = max(at, d.last) // jitter never reorders
	d.last = at
	return at
}

// next returns the departure time of the first packet held, and false
// when none is.
func (d *direction) next() (int64, bool) {
	if len(d.heap) == 0 {
		return 0, false
	}
	return d.heap[0].at, true
}

// pop removes and returns the first packet held if it is due at now.
// The caller writes it and gives its buffer back with release.
func (d *direction) pop(now int64) (held, bool) {
	if len(d.heap) == 0 || d.heap[0].at > now {
		return held{}, false
	}
	h := d.heap[0]
	last := len(d.heap) - 1
	d.heap[0] = d.heap[last]
	d.heap[last] = held{}
	d.heap = d.heap[:last]
	d.down(0)
	return h, true
}

func (d *direction) less(i, j int) bool {
	a, b := d.heap[i], d.heap[j]
	return a.at < b.at || a.at == b.at && a.seq < b.seq
}

func (d *direction) push(h held) {
	d.heap = append(d.heap, h)
	for i := len(d.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if !d.less(i, p) {
			break
		}
		d.heap[i], d.heap[p] = d.heap[p], d.heap[i]
		i = p
	}
}

func (d *direction) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(d.heap) {
			return
		}
		m := l
		if r := l + 1; r < len(d.heap) && d.less(r, l) {
			m = r
		}
		if !d.less(m, i) {
			return
		}
		d.heap[i], d.heap[m] = d.heap[m], d.heap[i]
		i = m
	}
}
