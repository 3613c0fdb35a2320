package netns

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ForwarderNice is the nice value RaisePriority gives the process. The
// lab's user-space parts of a network (a delay line forwarding every
// packet of a path, a scripted peer answering the kernel) are timed: on
// a busy machine a goroutine at the default priority waits for a CPU, and
// the path's delay or the script's answer grows by that wait (a hundred
// milliseconds under two busy loops, past a 40 ms path's retransmission
// timeout). At -10 the scheduler gives the process about nine times a
// busy loop's share.
const ForwarderNice = -10

// RaisePriority renices every thread of the process to ForwarderNice
// (threads made later inherit it from the thread that makes them) and
// reports whether it could: it needs CAP_SYS_NICE, which root has.
func RaisePriority() bool {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return false
	}
	ok := true
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may end meanwhile (one locked into another namespace
		// does when its goroutine returns): ESRCH is no failure.
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, ForwarderNice); err != nil && err != unix.ESRCH {
			ok = false
		}
	}
	return ok
}
