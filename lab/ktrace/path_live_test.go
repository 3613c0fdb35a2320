package ktrace

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
)

// TestPathLive follows a connection's SYN and its first data segment down
// and up the stack of a namespace's loopback, as root: each shows the
// steps of its path in the order the kernel takes them, and nothing of
// another namespace's connection is told.
func TestPathLive(t *testing.T) {
	s, other := newSpace(t), newSpace(t)
	tr, err := Open(Config{NetNS: []uint64{s.inode}, Hosts: []*os.File{s.file}, Follow: DefaultFollow})
	if errors.Is(err, ErrUnsupported) {
		testenv.SkipOrFail(t, "needs root for BPF: "+err.Error(), "")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if why := tr.PathUnavailable(); why != nil {
		t.Fatalf("path unavailable: %v (skipped %v)", why, tr.Skipped())
	}
	p := connect(t, s)
	q := connect(t, other)
	if _, err := q.client.Write([]byte("elsewhere")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := p.server.Read(buf); err != nil {
		t.Fatal(err)
	}
	steps := func(evs []Event, data bool) []Step {
		var out []Step
		for _, e := range evs {
			if e.Kind != Path || e.Src != p.clientAddr && e.Dst != p.clientAddr {
				continue
			}
			if e.Src == q.clientAddr || e.Dst == q.clientAddr {
				continue
			}
			st := e.Probe.Step()
			isData := e.Flags&capture.SYN == 0 && e.Src == p.clientAddr && (e.Len > 0 || st == StepSendmsg || st == StepReceiveBuffer)
			if data == isData && (data || e.Flags.Has(capture.SYN) && !e.Flags.Has(capture.ACK)) {
				out = append(out, st)
			}
		}
		return out
	}
	want := []Step{StepSendmsg, StepTCPOut, StepIPOut, StepQdisc, StepDriver, StepBacklog, StepSoftirq, StepIPIn, StepTCPIn, StepReceiveBuffer, StepRead}
	evs := collect(t, tr, 5*time.Second, func(evs []Event) bool {
		return len(steps(evs, true)) >= len(want)
	})
	evs = settle(tr, 100*time.Millisecond, evs)
	slices.SortStableFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) })
	for _, e := range evs {
		if e.NetNS != s.inode {
			t.Errorf("an event of another namespace: %s", e)
		}
	}
	got := steps(evs, true)
	if !slices.Equal(got, want) {
		t.Errorf("the data segment's steps: %v, want %v\n%s", got, want, dump(evs))
	}
	syn := steps(evs, false)
	for _, st := range []Step{StepTCPOut, StepIPOut, StepQdisc, StepDriver, StepBacklog, StepSoftirq, StepIPIn} {
		if !slices.Contains(syn, st) {
			t.Errorf("the SYN's steps %v lack %s\n%s", syn, st, dump(evs))
		}
	}
}

// TestPathBudget: a Tracer follows at most Config.Follow segments, then,
// a grace period later, detaches the path's programs: what comes after
// costs nothing and is not told.
func TestPathBudget(t *testing.T) {
	s := newSpace(t)
	tr, err := Open(Config{NetNS: []uint64{s.inode}, Hosts: []*os.File{s.file}, Follow: 2})
	if errors.Is(err, ErrUnsupported) {
		testenv.SkipOrFail(t, "needs root for BPF: "+err.Error(), "")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	p := connect(t, s) // the SYN and the SYN-ACK: two segments
	followed := map[uint64]bool{}
	count := func(evs []Event) int {
		for _, e := range evs {
			if e.Kind == Path && e.Probe.Step() == StepIPOut {
				followed[e.Skb] = true
			}
		}
		return len(followed)
	}
	evs := collect(t, tr, 5*time.Second, func(evs []Event) bool { return count(evs) >= 2 })
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr.mu.Lock()
		n := len(tr.pathLinks)
		tr.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d path programs still attached 5 s after the budget was spent", n)
		}
		evs = settle(tr, 100*time.Millisecond, evs)
	}
	if _, err := p.client.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	evs = settle(tr, 200*time.Millisecond, evs)
	if n := count(evs); n != 2 {
		t.Errorf("%d segments followed, want 2 (Follow)\n%s", n, dump(evs))
	}
}
