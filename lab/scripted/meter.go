package scripted

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The noise meter's rhythm: it sleeps noisePeriod at a time, keeps the
// wake-ups later than noiseQuiet (smaller lateness is far below any
// script's tolerance), and at most noiseKeep of them, the newest.
const (
	noisePeriod = time.Millisecond
	noiseQuiet  = 100 * time.Microsecond
	noiseKeep   = 1 << 16
)

// NoiseMeter measures the machine's scheduling noise while a script
// plays, for Config.Noise: a thread at nice 0, the priority of ksoftirqd,
// which runs the kernel's timers when a busy machine defers them, sleeps
// a millisecond at a time and keeps each wake-up that came late. An
// event due while that thread waited for a CPU may come as late as it
// did: the kernel's delayed ACK beside two busy loops came 4 to 5 ms
// late, after a noise sample taken before the script had seen under a
// millisecond. tcplab pkt's -tolerance auto and this package's own live
// tests use one.
type NoiseMeter struct {
	mu   sync.Mutex
	late []wakeUp // oldest first
	// asleep is when the sleep in progress should end (Unix
	// nanoseconds), or 0: a sleep overdue now is noise not yet kept.
	asleep atomic.Int64
	// sleep sleeps noisePeriod on the meter's thread (nanosleep; a test
	// gives one that sleeps longer).
	sleep func()
	stop  chan struct{}
	done  chan struct{}
}

// wakeUp is a sleep that should have ended at due and ended at woke.
type wakeUp struct{ due, woke time.Time }

// StartNoiseMeter starts measuring; Stop ends it.
func StartNoiseMeter() *NoiseMeter {
	ts := unix.NsecToTimespec(int64(noisePeriod))
	m := &NoiseMeter{stop: make(chan struct{}), done: make(chan struct{}),
		sleep: func() { _ = unix.Nanosleep(&ts, nil) }} // EINTR: a short sleep, no noise
	go m.run()
	return m
}

func (m *NoiseMeter) run() {
	defer close(m.done)
	// The thread is never unlocked: it ends with this goroutine, and
	// its priority with it.
	runtime.LockOSThread()
	// From tcplab's raised priority (netns.RaisePriority) down to nice
	// 0; a process already below it stays where it is.
	tid := unix.Gettid()
	if prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil && 20-prio < 0 {
		_ = unix.Setpriority(unix.PRIO_PROCESS, tid, 0)
	}
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		due := time.Now().Add(noisePeriod)
		m.asleep.Store(due.UnixNano())
		m.sleep()
		woke := time.Now()
		m.asleep.Store(0)
		if woke.Sub(due) > noiseQuiet {
			m.keep(wakeUp{due: due, woke: woke})
		}
	}
}

func (m *NoiseMeter) keep(w wakeUp) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.late) == noiseKeep {
		m.late = append(m.late[:0], m.late[noiseKeep/2:]...)
	}
	m.late = append(m.late, w)
}

// Late returns the lateness of the latest wake-up that was due before
// to and came after from, counting the sleep in progress if it is
// overdue: how late the machine let a thread at nice 0 run in that
// span.
func (m *NoiseMeter) Late(from, to time.Time) time.Duration {
	var worst time.Duration
	if a := m.asleep.Load(); a != 0 {
		if due, now := time.Unix(0, a), time.Now(); now.After(due) && due.Before(to) {
			worst = now.Sub(due)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.late) - 1; i >= 0 && !m.late[i].woke.Before(from); i-- {
		if w := m.late[i]; w.due.Before(to) {
			worst = max(worst, w.woke.Sub(w.due))
		}
	}
	return worst
}

// Noise is Late as Config.Noise takes it: nil for a nil meter.
func (m *NoiseMeter) Noise() func(from, to time.Time) time.Duration {
	if m == nil {
		return nil
	}
	return m.Late
}

// Stop ends the measure; Late still answers for what was measured.
func (m *NoiseMeter) Stop() {
	close(m.stop)
	<-m.done
}
