package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

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

// Thread is an OS thread that has joined a host's namespace and stays in
// it until Close: a function handed to it ([Thread.Go]) starts within a
// wake-up, where [Host.Do] starts a thread, joins the namespace and
// leaves it again for each one. A script's system calls run on one, as
// packetdrill makes them from one thread. It sleeps between functions:
// polling its queue instead, with sched_yield, made calls 0.1 ms
// quicker on a quiet 2-core machine and, beside two busy loops, some
// milliseconds later (a yielding thread waits out the loop's slice).
type Thread struct {
	fns  chan func()
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the thread has stopped
	once sync.Once
}

// Thread starts an OS thread in the host's namespace. A nil Host's
// thread is one of the caller's namespace.
func (h *Host) Thread() (*Thread, error) {
	// Functions queue in the channel, not in Go: the caller is not
	// kept waiting while the thread runs the one before.
	t := &Thread{fns: make(chan func(), 64), quit: make(chan struct{}), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(t.done)
		// The thread never goes back to the caller's namespace: it
		// exits locked, with this goroutine.
		runtime.LockOSThread()
		if h != nil {
			if err := unix.Setns(int(h.file.Fd()), unix.CLONE_NEWNET); err != nil {
				errc <- fmt.Errorf("netns: join network namespace of host %s: %w", h.name, err)
				return
			}
		}
		errc <- nil
		for {
			select {
			case fn := <-t.fns:
				fn()
			case <-t.quit:
				// What was handed before Close still runs.
				for {
					select {
					case fn := <-t.fns:
						fn()
					default:
						return
					}
				}
			}
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return t, nil
}

// errStopped is Go's error once the thread has stopped or is closed.
var errStopped = errors.New("netns: the thread has stopped")

// Go hands fn to the thread, which runs it once the functions handed
// before have returned, and returns without waiting for it; it fails
// after Close.
func (t *Thread) Go(fn func()) error {
	select {
	case <-t.quit:
		return errStopped
	default:
	}
	select {
	case t.fns <- fn:
		return nil
	case <-t.quit:
		return errStopped
	case <-t.done:
		return errStopped
	}
}

// Close ends the thread once the functions handed to it have returned;
// it does not wait for them.
func (t *Thread) Close() { t.once.Do(func() { close(t.quit) }) }
