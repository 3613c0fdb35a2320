package netns

import (
	"fmt"
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
// says what it could not do: it needs CAP_SYS_NICE, which root usually
// has (a container's root may lack it). It is best effort: a caller goes
// on at the default priority.
//
// Where the scheduler groups processes by session (autogroups,
// kernel.sched_autogroup_enabled=1, Debian's default), a thread's nice
// weighs against the threads of its own session only: busy loops or
// builds in another session take their share whatever the lab asks.
// RaisePriority leaves the session's autogroup alone: its nice would
// outlive the process and apply to every program of the user's terminal.
func RaisePriority() error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("raise priority: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may end meanwhile (one locked into another namespace
		// does when its goroutine returns): ESRCH is no failure.
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, ForwarderNice); err != nil && err != unix.ESRCH {
			return fmt.Errorf("raise priority: thread %d to nice %d: %w", tid, ForwarderNice, err)
		}
	}
	return nil
}
