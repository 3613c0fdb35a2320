package path

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// departure is one packet leaving a direction in a simulation: its index
// in the input sequence and its departure time.
type departure struct {
	id int
	at int64
}

// simulate feeds a direction n packets of size bytes, one every gap
// nanoseconds (all at 0 with gap 0), each carrying its index, and returns
// the departures in the order the line would write them, then the
// direction. Like the Line, it releases every buffer it pops.
func simulate(t *testing.T, cond Conditions, seed uint64, limit, n, size int, gap int64) ([]departure, *direction) {
	t.Helper()
	d := newDirection(cond, seed, streamC2S, limit, max(size, 8))
	var out []departure
	drain := func(now int64) {
		for {
			h, ok := d.pop(now)
			if !ok {
				return
			}
			if h.at > now {
				t.Fatalf("popped a packet due at %d at %d", h.at, now)
			}
			out = append(out, departure{int(binary.BigEndian.Uint64(h.buf)), h.at})
			d.release(h.buf)
		}
	}
	for i := range n {
		now := int64(i) * gap
		drain(now)
		buf := d.take()
		if buf == nil {
			t.Fatalf("packet %d: no buffer for the reader", i)
		}
		binary.BigEndian.PutUint64(buf, uint64(i))
		d.arrive(now, buf[:size])
		if len(d.heap) > limit {
			t.Fatalf("packet %d: %d packets held, limit %d", i, len(d.heap), limit)
		}
	}
	drain(math.MaxInt64)
	if len(d.free) != limit+2 {
		t.Fatalf("%d buffers free at the end, want all %d", len(d.free), limit+2)
	}
	return out, d
}

// TestDirectionSeed: the same seed and the same packets give the same
// departures, decision by decision; another seed does not.
func TestDirectionSeed(t *testing.T) {
	cond := Conditions{
		Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond,
		Loss: 10, Reorder: 5, Duplicate: 5, Rate: 100_000_000,
	}
	a, da := simulate(t, cond, 42, 100, 20000, 1000, 100_000)
	b, db := simulate(t, cond, 42, 100, 20000, 1000, 100_000)
	c, dc := simulate(t, cond, 43, 100, 20000, 1000, 100_000)
	if !slices.Equal(a, b) || da.stats != db.stats {
		t.Errorf("seed 42 twice: different decisions (%+v vs %+v)", da.stats, db.stats)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 made the same %d decisions", len(a))
	}
	t.Logf("seed 42: %+v; seed 43: %+v", da.stats, dc.stats)
	// The other direction of a line draws from another stream.
	other := newDirection(cond, 42, streamS2C, 100, 64)
	if other.rng.Uint64() == newDirection(cond, 42, streamC2S, 100, 64).rng.Uint64() {
		t.Error("the two directions draw the same numbers from one seed")
	}
}

func TestDirection(t *testing.T) {
	const ms = int64(time.Millisecond)
	tests := []struct {
		name  string
		cond  Conditions
		limit int
		n     int
		size  int
		gap   int64
		check func(t *testing.T, out []departure, s Counters)
	}{
		{
			name: "delay", cond: Conditions{Delay: 20 * time.Millisecond}, limit: 1000, n: 500, size: 100, gap: ms / 10,
			check: func(t *testing.T, out []departure, s Counters) {
				for i, o := range out {
					if o.id != i || o.at != int64(i)*ms/10+20*ms {
						t.Fatalf("departure %d = %+v, want packet %d at %d", i, o, i, int64(i)*ms/10+20*ms)
					}
				}
			},
		},
		{
			name: "jitter keeps order", cond: Conditions{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}, limit: 1000, n: 5000, size: 100, gap: ms / 10,
			check: func(t *testing.T, out []departure, s Counters) {
				var sum float64
				spread := map[int64]bool{}
				for i, o := range out {
					if o.id != i {
						t.Fatalf("departure %d is packet %d: jitter reordered", i, o.id)
					}
					delay := o.at - int64(i)*ms/10
					if delay < 10*ms {
						t.Fatalf("packet %d delayed %v, below delay - jitter", i, time.Duration(delay))
					}
					sum += float64(delay)
					spread[delay/ms] = true
				}
				// Keeping the order pushes the mean above the delay, but
				// by less than the jitter.
				if mean := sum / float64(len(out)); mean < float64(20*ms) || mean > float64(30*ms) {
					t.Errorf("mean delay %v, want within [20ms, 30ms]", time.Duration(mean))
				}
				if len(spread) < 5 {
					t.Errorf("delays fall in %d distinct milliseconds: no jitter", len(spread))
				}
			},
		},
		{
			name: "reorder skips the delay", cond: Conditions{Delay: 20 * time.Millisecond, Reorder: 10}, limit: 1000, n: 5000, size: 100, gap: ms / 10,
			check: func(t *testing.T, out []departure, s Counters) {
				early := 0
				for _, o := range out {
					switch delay := o.at - int64(o.id)*ms/10; delay {
					case 0:
						early++
					case 20 * ms:
					default:
						t.Fatalf("packet %d delayed %v, want 0 or 20ms", o.id, time.Duration(delay))
					}
				}
				if uint64(early) != s.Reordered {
					t.Errorf("%d packets left at once, Reordered = %d", early, s.Reordered)
				}
				within(t, "reordered", s.Reordered, 5000, 0.10)
			},
		},
		{
			name: "rate serialises with a bounded queue", cond: Conditions{Rate: 10_000_000}, limit: 50, n: 100, size: 1250, gap: 0,
			check: func(t *testing.T, out []departure, s Counters) {
				// 1250 bytes at 10 Mbit/s take 1 ms; all arrive at once.
				if len(out) != 50 || s.Dropped != 50 {
					t.Fatalf("%d packets out, %d dropped; want 50 and 50", len(out), s.Dropped)
				}
				for i, o := range out {
					if o.id != i || o.at != int64(i+1)*ms {
						t.Fatalf("departure %d = %+v, want packet %d at %v", i, o, i, time.Duration(int64(i+1)*ms))
					}
				}
			},
		},
		{
			name: "loss", cond: Conditions{Loss: 10}, limit: 10, n: 20000, size: 100, gap: ms,
			check: func(t *testing.T, out []departure, s Counters) {
				within(t, "lost", s.Lost, 20000, 0.10)
				if uint64(len(out)) != 20000-s.Lost {
					t.Errorf("%d packets out, %d lost of 20000", len(out), s.Lost)
				}
			},
		},
		{
			name: "duplicate", cond: Conditions{Duplicate: 5, Loss: 5}, limit: 10, n: 20000, size: 100, gap: ms,
			check: func(t *testing.T, out []departure, s Counters) {
				within(t, "duplicated", s.Duplicated, 20000*0.95, 0.05)
				if uint64(len(out)) != 20000-s.Lost+s.Duplicated {
					t.Errorf("%d packets out: want 20000 - %d lost + %d duplicated", len(out), s.Lost, s.Duplicated)
				}
				for i := 1; i < len(out); i++ {
					if out[i].id < out[i-1].id {
						t.Fatalf("packet %d after packet %d", out[i].id, out[i-1].id)
					}
				}
			},
		},
		{
			name: "limit counts duplicates", cond: Conditions{Delay: time.Second, Duplicate: 100}, limit: 10, n: 10, size: 100, gap: 0,
			check: func(t *testing.T, out []departure, s Counters) {
				if len(out) != 10 || s.Duplicated != 5 || s.Dropped != 10 {
					t.Errorf("%d out, %d duplicated, %d dropped; want 10, 5, 10", len(out), s.Duplicated, s.Dropped)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, d := simulate(t, tt.cond, 1, tt.limit, tt.n, tt.size, tt.gap)
			if d.stats.In != uint64(tt.n) {
				t.Errorf("In = %d, want %d", d.stats.In, tt.n)
			}
			tt.check(t, out, d.stats)
		})
	}
}

// within fails t unless count is within 4.5 standard deviations of a
// binomial(n, p): it fails by chance far less than once in 100000 runs,
// and a seeded simulation never flakes.
func within(t *testing.T, what string, count uint64, n, p float64) {
	t.Helper()
	mean, sd := n*p, math.Sqrt(n*p*(1-p))
	if math.Abs(float64(count)-mean) > 4.5*sd {
		t.Errorf("%s %d of %.0f, want %.0f ± %.0f (4.5σ of binomial p=%g)", what, count, n, mean, 4.5*sd, p)
	}
}

// TestDirections: a line's two directions draw from the seed on streams of
// their own, each with its own conditions, so that one seed replays both
// and the answers' losses are not the requests'.
func TestDirections(t *testing.T) {
	cfg := LineConfig{
		Path: Path{C2S: Conditions{Loss: 10}, S2C: Conditions{Delay: time.Millisecond, Loss: 20}},
		Seed: 42, Limit: 4, MTU: 100,
	}
	first := func(cfg LineConfig) [2]uint64 {
		d := directions(cfg)
		return [2]uint64{d[0].rng.Uint64(), d[1].rng.Uint64()}
	}
	d := directions(cfg)
	if d[0].cond != cfg.Path.C2S || d[1].cond != cfg.Path.S2C {
		t.Fatalf("directions have conditions %+v and %+v, want %+v", d[0].cond, d[1].cond, cfg.Path)
	}
	a := first(cfg)
	if a[0] == a[1] {
		t.Error("both directions draw the same numbers: one stream for two directions")
	}
	if b := first(cfg); b != a {
		t.Errorf("seed 42 twice: first draws %x then %x", a, b)
	}
	cfg.Seed = 43
	if c := first(cfg); c[0] == a[0] || c[1] == a[1] {
		t.Errorf("seeds 42 and 43 draw %x and %x", a, c)
	}
}

// TestDirectionDraws pins which numbers a direction draws: only those of
// the conditions set, in the documented order. A direction that drew at 0%
// loss would give another jitter for the same seed than one drawn alone.
func TestDirectionDraws(t *testing.T) {
	const (
		seed = 9
		n    = 200
		gap  = int64(time.Second) // no jitter reaches the next packet
	)
	ref := func() *rand.Rand { return rand.New(rand.NewPCG(seed, streamC2S)) }
	tests := []struct {
		name string
		cond Conditions
		want func(r *rand.Rand, i int) (at int64, ok bool) // packet i's departure, from the reference draws
	}{
		{"delay draws nothing", Conditions{Delay: 20 * time.Millisecond}, func(r *rand.Rand, i int) (int64, bool) {
			return int64(i)*gap + int64(20*time.Millisecond), true
		}},
		{"jitter draws once a packet", Conditions{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}, func(r *rand.Rand, i int) (int64, bool) {
			j := int64(5 * time.Millisecond)
			return int64(i)*gap + int64(20*time.Millisecond) + r.Int64N(2*j+1) - j, true
		}},
		{"loss draws once a packet", Conditions{Loss: 30}, func(r *rand.Rand, i int) (int64, bool) {
			return int64(i) * gap, r.Float64()*100 >= 30
		}},
		{"loss then jitter", Conditions{Loss: 30, Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}, func(r *rand.Rand, i int) (int64, bool) {
			lost := r.Float64()*100 < 30
			j := int64(5 * time.Millisecond)
			return int64(i)*gap + int64(20*time.Millisecond) + r.Int64N(2*j+1) - j, !lost
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, d := simulate(t, tt.cond, seed, 10, n, 100, gap)
			r := ref()
			var want []departure
			for i := range n {
				if at, ok := tt.want(r, i); ok {
					want = append(want, departure{i, at})
				}
			}
			if !slices.Equal(out, want) {
				t.Fatalf("departures differ from the reference draws:\n got %v\nwant %v", head(out), head(want))
			}
			if got, next := d.rng.Uint64(), r.Uint64(); got != next {
				t.Errorf("after %d packets the generator is not where the reference is: it drew more", n)
			}
		})
	}
}

func head(d []departure) []departure { return d[:min(len(d), 5)] }

// FuzzLine parses a path and runs each of its directions on a fuzzed
// sequence of packets, from a clock far into a machine's uptime: nothing
// accepted by Parse may panic, every packet leaves no earlier than it came
// and no later than its delay, jitter and its wait in a full queue allow,
// and in the order of the departure times.
func FuzzLine(f *testing.F) {
	f.Add("delay=20ms,jitter=2ms,loss=1%,reorder=2%,duplicate=1%,rate=10mbit", uint64(1), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add("delay=1m,jitter=1m,rate=1kbit", uint64(7), []byte{0, 0, 255, 0, 0, 255, 40, 40, 1})
	f.Add("delay=1ms,jitter=1300000h", uint64(1), []byte{1, 1, 1})
	f.Add("delay=9223372036854775807ns", uint64(1), []byte{1, 1, 1, 1, 1, 1})
	f.Add("rate=100gbit,duplicate=100%", uint64(3), []byte{255, 63, 0, 255, 63, 0})
	f.Fuzz(func(t *testing.T, desc string, seed uint64, trace []byte) {
		p, err := Parse(desc)
		if err != nil {
			return
		}
		const (
			limit = 8
			mtu   = 1500
			start = int64(1) << 58 // nine years of uptime
		)
		for stream, cond := range []Conditions{p.C2S, p.S2C} {
			d := newDirection(cond, seed, uint64(stream), limit, mtu)
			// A packet waits at most for a full queue ahead of it (its
			// copy's too), then its delay and jitter.
			var serial int64
			if cond.Rate > 0 {
				serial = int64(mtu * 8e9 / float64(cond.Rate))
			}
			bound := 2*(limit+2)*serial + int64(cond.Delay+cond.Jitter) + 1
			now := start
			var lastOut int64
			pop := func(at int64) {
				for {
					h, ok := d.pop(at)
					if !ok {
						return
					}
					arrived := int64(binary.BigEndian.Uint64(h.buf))
					if h.at < arrived || h.at-arrived > bound || h.at < lastOut {
						t.Fatalf("%+v: a packet of %d leaves at %d (after %d before it), bound %d", cond, arrived, h.at, lastOut, bound)
					}
					lastOut = h.at
					d.release(h.buf)
				}
			}
			for i := 0; i+3 <= len(trace); i += 3 {
				now += int64(trace[i]) << (trace[i+1] % 40)
				pop(now)
				buf := d.take()
				if buf == nil {
					t.Fatalf("%+v: no buffer for the reader", cond)
				}
				binary.BigEndian.PutUint64(buf, uint64(now))
				size := 8 + int(trace[i+2])*(mtu-8)/255
				d.arrive(now, buf[:size])
			}
			pop(math.MaxInt64)
			if len(d.free) != limit+2 {
				t.Fatalf("%+v: %d buffers free, want %d", cond, len(d.free), limit+2)
			}
		}
	})
}
