package scripted_test

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/tcplab/tcplab/lab/scripted"
	"golang.org/x/sys/unix"
)

// threadSets returns the CPU set of each thread of this process.
func threadSets(t *testing.T) map[int]unix.CPUSet {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	sets := map[int]unix.CPUSet{}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		var s unix.CPUSet
		if unix.SchedGetaffinity(tid, &s) == nil {
			sets[tid] = s
		}
	}
	return sets
}

// lockedThread starts a goroutine on a thread of its own, which sends
// that thread's CPU set and then waits until done closes.
func lockedThread(done <-chan struct{}) <-chan unix.CPUSet {
	sets := make(chan unix.CPUSet, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var s unix.CPUSet
		_ = unix.SchedGetaffinity(0, &s)
		sets <- s
		<-done
	}()
	return sets
}

func TestOneCPU(t *testing.T) {
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer close(done)
	// Threads that exist before the call, besides the runtime's own.
	for range 3 {
		<-lockedThread(done)
	}
	cpu, undo, err := scripted.OneCPU()
	if err != nil {
		t.Fatal(err)
	}
	if !before.IsSet(cpu) {
		t.Errorf("OneCPU chose CPU %d, where this thread may not run", cpu)
	}
	later := <-lockedThread(done)
	var one unix.CPUSet
	one.Set(cpu)
	if later != one {
		t.Errorf("a thread started after OneCPU may run on %d CPUs, want CPU %d only", later.Count(), cpu)
	}
	for tid, s := range threadSets(t) {
		if s != one {
			t.Errorf("thread %d may run on %d CPUs after OneCPU, want CPU %d only", tid, s.Count(), cpu)
		}
	}
	undo()
	for tid, s := range threadSets(t) {
		if s != before {
			t.Errorf("thread %d may run on %d CPUs after undo, want the %d it had", tid, s.Count(), before.Count())
		}
	}
}
