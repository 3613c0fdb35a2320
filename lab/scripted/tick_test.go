package scripted

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAwaitTick: AwaitTick returns offset after a whole multiple of the
// period on CLOCK_MONOTONIC (within what a spin and a read of the clock
// take), and at once for no period. A loaded machine preempts some tries
// (2 of 5 in a CI run beside other packages' tests), so a quarter of 20
// tries must be on time: a wait at a random phase is on time 1 try in
// 20 (for 200 µs of 4 ms) and passes that about 1 time in 400; one that
// ignores the offset, never.
func TestAwaitTick(t *testing.T) {
	for _, c := range []struct{ tick, offset time.Duration }{
		{4 * time.Millisecond, 250 * time.Microsecond},
		{time.Millisecond, 250 * time.Microsecond},
		{10 * time.Millisecond, 3 * time.Millisecond},
		{4 * time.Millisecond, 0},
	} {
		const tries, onTime = 20, 5
		var phases []time.Duration
		good := 0
		for range tries {
			if err := AwaitTick(c.tick, c.offset); err != nil {
				t.Fatal(err)
			}
			now, err := Monotonic()
			if err != nil {
				t.Fatal(err)
			}
			p := now % c.tick
			phases = append(phases, p)
			if late := (p - c.offset + c.tick) % c.tick; late < 200*time.Microsecond {
				good++
			}
		}
		if good < onTime {
			t.Errorf("AwaitTick(%v, %v): returned at %v past a multiple of the period; want %v (+200µs) in %d of %d", c.tick, c.offset, phases, c.offset, onTime, tries)
		}
	}
	start := time.Now()
	if err := AwaitTick(0, time.Millisecond); err != nil || time.Since(start) > time.Millisecond {
		t.Errorf("AwaitTick(0, ...) = %v after %v: want nil at once", err, time.Since(start))
	}
}

// TestTicksOnMultiples: the kernel's ticks fall on whole multiples of
// its period on CLOCK_MONOTONIC, as AwaitTick assumes: a timer of the
// tick wheel (a socket's receive timeout) ends just after one.
func TestTicksOnMultiples(t *testing.T) {
	tick, err := MeasureTick(8)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(3 * tick / 2))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	var phases []time.Duration
	buf := make([]byte, 1)
	for len(phases) < 9 {
		_, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != unix.EAGAIN {
			t.Fatalf("recvfrom: %v, want EAGAIN", err)
		}
		now, err := Monotonic()
		if err != nil {
			t.Fatal(err)
		}
		phases = append(phases, now%tick)
	}
	slices.Sort(phases)
	// The median wake-up: a timer's interrupt and a thread's wake-up
	// take tens of microseconds, a quarter of a tick is far beyond.
	if med := phases[len(phases)/2]; med > tick/4 {
		t.Errorf("receive timeouts ended %v past a multiple of the %v tick (median %v): the ticks are not on multiples of the period", phases, tick, med)
	}
}
