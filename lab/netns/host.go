package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Host is a second network namespace, made beside the caller's by a process
// that has CAP_SYS_ADMIN over its own (a child of [Command] has): another
// host of a lab's topology, with only lo, which [Host.Do] brings up. It
// lives as long as its file is open or a process is in it; Close lets it
// go.
//
// Go schedules goroutines on any thread, so the caller's own code never
// enters the namespace: [Host.Do] runs a function on a thread of its own
// that joins the namespace and dies with the function. Sockets and capture
// handles made there stay in the host's namespace after Do returns.
type Host struct {
	name string
	file *os.File // the namespace, /proc/<pid>/task/<tid>/ns/net
}

// NewHost makes a network namespace for the host called name (for errors
// and messages) and brings its lo up.
func NewHost(name string) (*Host, error) {
	type made struct {
		f   *os.File
		err error
	}
	ch := make(chan made, 1)
	go func() {
		// The thread changes namespace and is never handed back: a
		// goroutine that exits locked takes its thread with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- made{err: fmt.Errorf("netns: make host %s: unshare: %w", name, err)}
			return
		}
		f, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			ch <- made{err: fmt.Errorf("netns: make host %s: %w", name, err)}
			return
		}
		if err := SetupLoopback(); err != nil {
			f.Close()
			ch <- made{err: fmt.Errorf("netns: host %s: %w", name, err)}
			return
		}
		ch <- made{f: f}
	}()
	m := <-ch
	if m.err != nil {
		return nil, m.err
	}
	return &Host{name: name, file: m.f}, nil
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// File returns the namespace's file, for netlink calls that take one (a
// link moved into the namespace, say). It stays the Host's.
func (h *Host) File() *os.File { return h.file }

// Do runs fn in the host's namespace, on a thread of its own, and returns
// its error. fn must not start goroutines that expect to be in the
// namespace: they run in the caller's. A nil Host is the caller's own
// namespace: fn runs as it is.
func (h *Host) Do(fn func() error) error {
	if h == nil {
		return fn()
	}
	return Enter(h.file, fn)
}

// Enter runs f on a thread that has joined the network namespace ns (a
// file such as /proc/PID/ns/net), and returns f's error; with ns nil, f
// runs on the calling goroutine. Sockets f opens, devices it creates and
// capture handles it starts belong to ns for their whole life, whatever
// thread uses them afterwards. The thread goes back to its namespace
// afterwards, or, if it cannot, exits with its goroutine instead of
// serving other goroutines.
func Enter(ns *os.File, f func() error) error {
	if ns == nil {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: join network namespace %s: %w", ns.Name(), err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and exits with this goroutine.
		errc <- ferr
	}()
	return <-errc
}

// Close releases the namespace: it disappears once no process or socket
// holds it.
func (h *Host) Close() error {
	if h == nil || h.file == nil {
		return errors.New("netns: close of a host that was not made")
	}
	return h.file.Close()
}
