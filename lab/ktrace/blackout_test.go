package ktrace

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/internal/testenv"
)

// onCPU0 runs fn on a thread of its own, bound to CPU 0.
func onCPU0(fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread ends with the goroutine: its mask goes with it.
		var set unix.CPUSet
		set.Set(0)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			errc <- err
			return
		}
		errc <- nil
		fn()
	}()
	return <-errc
}

// TestBlackouts: a task inside a BPF system call (updating a map), taken
// off CPU 0 by another that makes the traced namespace's sockets change
// state there, makes the kernel skip every BPF program those changes
// fire; the Tracer counts such blackouts, and keeps the count once
// closed.
func TestBlackouts(t *testing.T) {
	s := newSpace(t)
	tr, err := Open(Config{NetNS: []uint64{s.inode}})
	if errors.Is(err, ErrUnsupported) {
		testenv.SkipOrFail(t, "needs root for BPF: "+err.Error(), "")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	go func() {
		for range tr.Events() {
		}
	}()
	if n, ok := tr.Blackouts(); !ok {
		t.Fatalf("blackouts unknown: %v", tr.BlackoutsUnknown())
	} else {
		t.Logf("%d blackouts before", n)
	}
	// The update copies a MiB with BPF marked busy on the CPU, most of
	// the time the task spends.
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 1 << 20, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	value := make([]byte, 1<<20)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	err = onCPU0(func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := m.Update(uint32(0), value, 0); err != nil {
				t.Error(err)
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	done := make(chan error, 1)
	err = onCPU0(func() {
		done <- func() error {
			// This thread ends with the goroutine, never to be reused.
			if err := unix.Setns(int(s.file.Fd()), unix.CLONE_NEWNET); err != nil {
				return err
			}
			ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return err
			}
			defer ln.Close()
			for n, _ := tr.Blackouts(); n == 0 && time.Now().Before(deadline); n, _ = tr.Blackouts() {
				if err := connectOnce(ln); err != nil {
					return err
				}
			}
			return nil
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	n, _ := tr.Blackouts()
	if n == 0 {
		t.Fatal("no blackout counted in 10 s of a BPF system call sharing the CPU with the traced sockets")
	}
	tr.Close()
	if after, ok := tr.Blackouts(); !ok || after < n {
		t.Errorf("after Close: %d blackouts (known %v); want at least %d", after, ok, n)
	}
	t.Logf("%d blackouts", n)
}

// TestPrivateTracepointIDs reads tracepoints' ids from a tracefs of its
// own, which leaves the machine's mounts as they were.
func TestPrivateTracepointIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "mounting tracefs needs root", "run as root")
	}
	before, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	state, reset := tracepoint{"sock", "inet_sock_set_state"}, tracepoint{"tcp", "tcp_send_reset"}
	ids, err := privateTracepointIDs([]tracepoint{state, reset})
	if err != nil || ids[state] == 0 || ids[reset] == 0 || ids[state] == ids[reset] {
		t.Fatalf("ids %v, %v; want two ids", ids, err)
	}
	if _, err := privateTracepointIDs([]tracepoint{state, {"sock", "no_such_tracepoint"}}); err == nil {
		t.Error("an id for a tracepoint that does not exist")
	}
	after, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("the mounts changed:\n%s\nthen\n%s", before, after)
	}
}
