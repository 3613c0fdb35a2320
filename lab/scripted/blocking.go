package scripted

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Result is what a call started with StartBlocking returned.
type Result struct {
	N   int
	Err error
}

// StartBlocking runs call on a thread of its own and returns once that
// thread waits in a system call (a script's blocking call: an accept, a
// read, a poll that the script's next packets will end), or after a
// second; the call's result comes on the channel. A goroutine merely
// started may run late on a loaded machine, after the packets meant to
// wake it: a poll began after the script's own read had taken its data.
func StartBlocking(call func() (n int, err error)) <-chan Result {
	out := make(chan Result, 1)
	tids := make(chan int, 1)
	go func() {
		// The thread ends with the goroutine: it may have entered a
		// namespace.
		runtime.LockOSThread()
		tids <- unix.Gettid()
		n, err := call()
		out <- Result{n, err}
	}()
	tid := <-tids
	for end := time.Now().Add(time.Second); time.Now().Before(end) && !inSyscall(tid); {
		time.Sleep(100 * time.Microsecond)
	}
	return out
}

// inSyscall reports whether thread tid of this process waits in a system
// call other than futex (the Go runtime parks a thread there), from
// /proc/self/task/TID/syscall: "running", or the call's number and
// arguments. Where the file cannot be read, it says true: there is no
// telling, and the caller goes on.
func inSyscall(tid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/syscall", tid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return false
	}
	nr, err := strconv.Atoi(f[0])
	return err == nil && nr >= 0 && nr != unix.SYS_FUTEX
}
