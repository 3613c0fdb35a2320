package netns_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"
)

// TestThreadOrder: a Thread runs what it is handed in order, on one OS
// thread, and what was handed before Close; Go fails after Close.
func TestThreadOrder(t *testing.T) {
	var h *netns.Host // the caller's namespace
	th, err := h.Thread()
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	got := make(chan [2]int, n)
	for i := range n {
		if err := th.Go(func() { got <- [2]int{i, unix.Gettid()} }); err != nil {
			t.Fatalf("Go %d: %v", i, err)
		}
	}
	th.Close()
	if err := th.Go(func() { t.Error("ran after Close") }); err == nil {
		t.Error("Go after Close: no error")
	}
	tid := 0
	for i := range n {
		select {
		case g := <-got:
			if g[0] != i {
				t.Fatalf("function %d ran in place %d", g[0], i)
			}
			if tid == 0 {
				tid = g[1]
			}
			if g[1] != tid {
				t.Errorf("function %d ran on thread %d, the others on %d", i, g[1], tid)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d functions ran: those handed before Close must run", i, n)
		}
	}
}

// TestThreadNamespace: a Host's Thread runs in the host's namespace, one
// thread for all it runs.
func TestThreadNamespace(t *testing.T) {
	testenv.NetNS(t)
	lines := runSelf(t, "thread")
	for _, want := range []string{"thread in host's namespace: true", "threads: 1"} {
		if !slices.Contains(lines, want) {
			t.Errorf("no line %q in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}

// childThread makes a host and a Thread of it, and reports whether three
// functions run there see the host's namespace, and on how many threads.
func childThread() error {
	host, err := netns.NewHost("thread")
	if err != nil {
		return err
	}
	defer host.Close()
	th, err := host.Thread()
	if err != nil {
		return err
	}
	defer th.Close()
	var want unix.Stat_t
	if err := unix.Fstat(int(host.File().Fd()), &want); err != nil {
		return err
	}
	type seen struct {
		ino uint64
		tid int
		err error
	}
	c := make(chan seen, 3)
	for range 3 {
		if err := th.Go(func() {
			var st unix.Stat_t
			err := unix.Stat("/proc/thread-self/ns/net", &st)
			c <- seen{st.Ino, unix.Gettid(), err}
		}); err != nil {
			return err
		}
	}
	in, tids := true, map[int]bool{}
	for range 3 {
		s := <-c
		if s.err != nil {
			return s.err
		}
		in = in && s.ino == want.Ino
		tids[s.tid] = true
	}
	if tids[unix.Gettid()] {
		return errors.New("a function ran on the caller's thread")
	}
	fmt.Printf("thread in host's namespace: %v\nthreads: %d\n", in, len(tids))
	_ = os.Stdout.Sync()
	return nil
}
