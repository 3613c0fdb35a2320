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
