package scripted

import "time"

// Tolerance is how far from its expected time a segment may come: the
// larger of Abs and Rel times the gap since the previous event, as
// packetdrill allows (its defaults are 4 ms and 12.5%, the kernel timer
// wheel's worst rounding). The zero value is DefaultAbs and DefaultRel.
type Tolerance struct {
	Abs time.Duration
	Rel float64
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
	return max(abs, time.Duration(rel*float64(gap.Abs())))
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
