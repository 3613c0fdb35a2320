package scripted

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStartBlocking: StartBlocking returns only once the call waits in
// the kernel, not when its goroutine starts: the call first spends 50 ms
// in Go, as a goroutine run late on a loaded machine does, and only then
// reads a pipe that the test fills afterwards.
func TestStartBlocking(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	const late = 50 * time.Millisecond
	start := time.Now()
	done := StartBlocking(func() (int, error) {
		time.Sleep(late)
		return unix.Read(p[0], make([]byte, 1))
	})
	if took := time.Since(start); took < late {
		t.Errorf("StartBlocking returned after %v, before the call was made (%v)", took, late)
	}
	if _, err := unix.Write(p[1], []byte{1}); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.N != 1 || r.Err != nil {
		t.Errorf("read = %d, %v; want 1", r.N, r.Err)
	}
}

// TestInSyscall: a thread that runs Go code is not in a system call.
func TestInSyscall(t *testing.T) {
	var stop atomic.Bool
	tids := make(chan int)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		for !stop.Load() {
		}
	}()
	tid := <-tids
	defer stop.Store(true)
	time.Sleep(10 * time.Millisecond)
	if inSyscall(tid) {
		t.Errorf("a thread running Go code is said to wait in a system call")
	}
}
