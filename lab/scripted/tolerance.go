package scripted

import "time"

// Tolerance is how far from its expected time a segment may come: the
// larger of Abs and Rel times the gap since the previous event, as
// packetdrill allows (its defaults are 4 ms and 12.5%, the kernel timer
// wheel's worst rounding). The zero value is DefaultAbs and DefaultRel.
type Tolerance struct {
	Abs time.Duration
	Rel float64
	// Tick, when longer than a millisecond, is the kernel's tick
	// (MeasureTick): an event then also gets how much later than on a
	// 1000 Hz kernel, which packetdrill's tolerances are written for,
	// the kernel's timer wheel may fire a timer as long as its gap
	// (TickLate). Zero adds nothing.
	Tick time.Duration
}

// The default tolerance. The absolute part is wider than packetdrill's 4
// ms so that a loaded two-core machine, where the goroutine reading the
// device may wait for a CPU, passes; the relative part is the timer
// wheel's.
const (
	DefaultAbs = 25 * time.Millisecond
	DefaultRel = 0.125
)

// Of returns the tolerance of an event expected gap after the previous
// one.
func (t Tolerance) Of(gap time.Duration) time.Duration {
	abs, rel := t.Abs, t.Rel
	if abs == 0 {
		abs = DefaultAbs
	}
	if rel == 0 {
		rel = DefaultRel
	}
	return max(abs, time.Duration(rel*float64(gap.Abs()))) + t.Late(gap)
}

// Late is what t's Tick adds to an event expected gap after the previous
// one (TickLate).
func (t Tolerance) Late(gap time.Duration) time.Duration {
	return TickLate(gap.Abs(), t.Tick)
}

// TickLate is how much later a kernel whose tick is tick may fire a
// timer of length d than a kernel of 1000 Hz would (TimerLate of each),
// zero for a tick of a millisecond or less.
func TickLate(d, tick time.Duration) time.Duration {
	if tick <= time.Millisecond {
		return 0
	}
	return max(0, TimerLate(d, tick)-TimerLate(d, time.Millisecond))
}

// TimerLate is the latest after d that the kernel's timer wheel
// (kernel/time/timer.c) fires a timer of length d on a kernel whose tick
// is tick: d is rounded up to whole ticks from a tick count that may be
// a tick old, and the wheel's level for that many ticks fires on its
// next boundary, a level's granularity being 8 times the one below's
// (1 tick for under 63 ticks, 8 under 504, 64 under 4032, ... up to
// the ninth level's). At 250
// Hz a delayed ACK of 40 ms may come 8 ms late where a 1000 Hz kernel
// sends it 2 ms late at most; a zero-window probe of 300 ms, 36 ms late
// against 9 ms.
func TimerLate(d, tick time.Duration) time.Duration {
	if tick <= 0 {
		return 0
	}
	ticks := int64((d + tick - 1) / tick)
	gran, start := int64(1), int64(63)
	for ticks >= start && gran < 1<<24 {
		gran <<= 3
		start <<= 3
	}
	return tick + time.Duration(gran)*tick
}

// Within judges an event that came at at, due at due give or take tol,
// on a machine whose scheduling ran late by noise between two times (nil:
// not measured, see Config.Noise): an event late by more than tol is
// within when that noise, from the earliest it was due to its arrival,
// covers the rest; an early one never is. It returns whether the event
// is within, and the noise that widened tol for a late one (0 for one on
// time or early).
func Within(at, due time.Time, tol time.Duration, noise func(from, to time.Time) time.Duration) (bool, time.Duration) {
	off := at.Sub(due)
	var widened time.Duration
	if off > tol && noise != nil {
		widened = noise(due.Add(-tol), at)
	}
	return off >= -tol && off <= tol+widened, widened
}
