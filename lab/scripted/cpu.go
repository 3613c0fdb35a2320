package scripted

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OneCPU confines every thread of this process to one CPU, the first of
// those the calling thread may run on, until undo puts back each
// thread's own set (and gives threads started meanwhile the caller's).
//
// packetdrill is one thread: the kernel arms the timers of the script's
// socket on the CPU that thread runs on, and while it sleeps between
// events that CPU idles with its tick stopped, so a timer due at the
// next tick wakes it, and the CPU, waking, brings jiffies up to date
// before it runs its timers. A Go process keeps threads awake on every
// CPU; where the socket's timer sits on a CPU whose tick still runs but
// which does not keep jiffies, that CPU's tick can come before the other
// CPU has counted the new jiffy, and the timer waits one more tick:
// measured here (HZ 250, 2 CPUs), the kernel's delayed ACK due at the
// next tick came 4 ms late in 15 of 60 runs of three selftests spread
// over both CPUs, 4 of 120 on one, and 1 of 60 under packetdrill.
//
// The threads' sets are process state: a command sets them around its
// work, not a library.
func OneCPU() (cpu int, undo func(), err error) {
	var mine unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mine); err != nil {
		return 0, nil, fmt.Errorf("run on one CPU: %w", err)
	}
	cpu = -1
	for i := 0; i < int(unsafe.Sizeof(mine))*8; i++ {
		if mine.IsSet(i) {
			cpu = i
			break
		}
	}
	if cpu < 0 {
		return 0, nil, errors.New("run on one CPU: this thread may run on none")
	}
	var one unix.CPUSet
	one.Set(cpu)
	old := map[int]unix.CPUSet{}
	undo = func() {
		for range 10 {
			if !setAll(func(tid int) (unix.CPUSet, bool) {
				if s, ok := old[tid]; ok {
					return s, true
				}
				return mine, true
			}) {
				return
			}
		}
	}
	// A new thread takes its creator's set: pass over the threads until
	// a pass finds none to set (one started during a pass, from a thread
	// not yet set, is set by the next). Only the first pass keeps the
	// sets it finds: a thread started later, perhaps from one already
	// set, gets the caller's back.
	for pass := range 10 {
		changed := setAll(func(tid int) (unix.CPUSet, bool) {
			if _, ok := old[tid]; !ok && pass == 0 {
				var s unix.CPUSet
				if unix.SchedGetaffinity(tid, &s) != nil {
					return s, false // the thread has ended
				}
				old[tid] = s
			}
			return one, true
		})
		if !changed {
			return cpu, undo, nil
		}
	}
	undo()
	return 0, nil, errors.New("run on one CPU: the process kept starting threads; try again")
}

// setAll gives each thread of this process the set want names for it
// (none where want says false) and reports whether any thread's set
// changed. Threads that end meanwhile are passed over.
func setAll(want func(tid int) (unix.CPUSet, bool)) (changed bool) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return false
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, ok := want(tid)
		if !ok {
			continue
		}
		var cur unix.CPUSet
		if unix.SchedGetaffinity(tid, &cur) != nil || cur == s {
			continue
		}
		if unix.SchedSetaffinity(tid, &s) == nil {
			changed = true
		}
	}
	return changed
}
