package scripted

import (
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// kernelHz are the tick rates Linux can be built with (CONFIG_HZ).
var kernelHz = []int{100, 250, 300, 1000}

// MeasureTick returns the kernel's tick, 1/CONFIG_HZ, measured: a
// socket's receive timeout is a timer of the wheel that counts ticks, and
// one of a microsecond (a tick, rounded up) ends on the wheel's second
// tick from when it was set. The median of n such waits is two ticks;
// it is snapped to the nearest rate Linux can be built with, so a
// loaded machine's late wake-ups do not move it. Nothing else tells an
// unprivileged process the kernel's HZ (/proc/config.gz may be absent,
// and sysconf's clock ticks are the fixed USER_HZ).
func MeasureTick(n int) (time.Duration, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("measure the kernel's tick: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Usec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("measure the kernel's tick: SO_RCVTIMEO: %w", err)
	}
	waits := make([]time.Duration, 0, n)
	buf := make([]byte, 1)
	for tries := 0; len(waits) < max(n, 1); tries++ {
		start := time.Now()
		_, _, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case err == unix.EINTR && tries < 10*n:
			// A signal (the Go runtime's preemption) cut the wait
			// short: measure it again.
		case err != unix.EAGAIN:
			return 0, fmt.Errorf("measure the kernel's tick: recvfrom returned %v, want EAGAIN", err)
		default:
			waits = append(waits, time.Since(start))
		}
	}
	slices.Sort(waits)
	return snapTick(waits[len(waits)/2] / 2), nil
}

// snapTick is the tick of the rate Linux can be built with nearest to
// one measured as tick, by ratio.
func snapTick(tick time.Duration) time.Duration {
	best, bestRatio := time.Second/time.Duration(kernelHz[0]), 0.0
	for _, hz := range kernelHz {
		t := time.Second / time.Duration(hz)
		r := float64(t) / float64(tick)
		if r > 1 {
			r = 1 / r
		}
		if r > bestRatio {
			best, bestRatio = t, r
		}
	}
	return best
}

// AwaitTick waits until offset after one of the kernel's ticks, tick
// being its period (MeasureTick), and returns then. Linux keeps its
// ticks on whole multiples of the period on CLOCK_MONOTONIC (since 5.10;
// jiffies advance, and the timer wheel's timers fire, just after them),
// so the wait needs no probing. packetdrill starts each script 250 µs
// after a tick, so that the kernel's timers (a delayed ACK, a
// retransmission: whole ticks from when they were set) land at the same
// point of the script each run; starting at the same phase does that
// for a script played here. A tick that is not positive waits for
// nothing.
func AwaitTick(tick, offset time.Duration) error {
	if tick <= 0 {
		return nil
	}
	for try := 0; ; try++ {
		now, err := Monotonic()
		if err != nil {
			return fmt.Errorf("wait for the kernel's tick: %w", err)
		}
		// The first time from now that is offset past a tick.
		target := now + (tick-((now-offset)%tick+tick)%tick)%tick
		// Sleep most of the way, then spin on the clock for the rest.
		if d := target - now - spinBefore; d > 0 {
			time.Sleep(d)
			if now, err = Monotonic(); err != nil {
				return fmt.Errorf("wait for the kernel's tick: %w", err)
			}
			if now > target && try < awaitTries {
				// The sleep ended past the time: aim at the next tick.
				continue
			}
		}
		for now < target {
			if now, err = Monotonic(); err != nil {
				return fmt.Errorf("wait for the kernel's tick: %w", err)
			}
		}
		return nil
	}
}

// spinBefore is how long before its time AwaitTick stops sleeping and
// reads the clock until then: a sleep of a few milliseconds ended up to
// 0.5 ms late on a quiet 2-core machine.
const spinBefore = time.Millisecond

// awaitTries is how many ticks AwaitTick aims at before it takes a
// late wake-up as it is (a loaded machine).
const awaitTries = 4

// Monotonic reads CLOCK_MONOTONIC, the clock the kernel's ticks are
// aligned on (Go's monotonic readings are relative to the process).
func Monotonic() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}
