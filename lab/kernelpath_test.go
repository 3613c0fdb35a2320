package lab

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/ktrace"
	"github.com/tcplab/tcplab/lab/report"
)

// requestPath are the steps a data segment's timeline must have, in order.
var requestPath = []report.PathStepKind{report.PathSendBuffer, report.PathTCPOut, report.PathIPOut, report.PathSendQueue,
	report.PathIPIn, report.PathTCPIn, report.PathReceiveBuffer}

// pathEvents are the kernel's path events of one transmission of the
// segment p at its capture time (µs after it; negative before), on lo:
// the write, TCP's stamp, IP, the device, the backlog, softirq, IP, TCP,
// the receive buffer and the read.
func pathEvents(p *capture.Segment, skb uint64, at map[ktrace.Step]int) []ktrace.Event {
	var out []ktrace.Event
	for _, st := range []ktrace.Step{ktrace.StepSendmsg, ktrace.StepTCPOut, ktrace.StepIPOut, ktrace.StepQdisc, ktrace.StepDriver,
		ktrace.StepBacklog, ktrace.StepSoftirq, ktrace.StepIPIn, ktrace.StepTCPIn, ktrace.StepReceiveBuffer, ktrace.StepRead} {
		us, ok := at[st]
		if !ok {
			continue
		}
		pr, _ := ktrace.ProbeOf(st)
		e := ktrace.Event{Kind: ktrace.Path, Probe: pr, Time: p.Time.Add(time.Duration(us) * time.Microsecond), Src: p.Src, Dst: p.Dst,
			Seq: p.Seq, Flags: p.Flags, Len: p.Len, Skb: skb, HaveSeq: true}
		switch st {
		case ktrace.StepSendmsg:
			e.Flags, e.Len, e.Skb, e.Queue = 0, 0, 0, "send buffer"
		case ktrace.StepReceiveBuffer:
			e.Flags, e.Len, e.Skb, e.Seq, e.Queue, e.QueueLen = 0, 0, 0, p.Seq+uint32(p.Len), "receive buffer", 2880
		case ktrace.StepRead:
			e.Flags, e.Skb = 0, 0
		case ktrace.StepQdisc:
			e.Queue = "noqueue"
		case ktrace.StepDriver, ktrace.StepBacklog, ktrace.StepSoftirq, ktrace.StepIPIn:
			e.Queue = "lo"
		}
		out = append(out, e)
	}
	return out
}

// inOrder are a transmission's steps at times that never go back, the
// capture seeing it at the driver (0).
func inOrder() map[ktrace.Step]int {
	return map[ktrace.Step]int{ktrace.StepSendmsg: -30, ktrace.StepTCPOut: -20, ktrace.StepIPOut: -10, ktrace.StepQdisc: -5,
		ktrace.StepDriver: 0, ktrace.StepBacklog: 2, ktrace.StepSoftirq: 5, ktrace.StepIPIn: 6, ktrace.StepTCPIn: 8,
		ktrace.StepReceiveBuffer: 9, ktrace.StepRead: 500}
}

// TestPathTimelines builds the timeline of kvConn's data segment (frame 4,
// sent again as frame 5) from the kernel's path events: with every step
// in order it passes Check; a step the kernel did not tell, or one told
// at a time before the step it follows, fails it. The resend's events,
// 210 ms later, belong to frame 5's timeline, not frame 4's.
func TestPathTimelines(t *testing.T) {
	pkts := kvConn()
	data, resend := &pkts[3].Segment, &pkts[4].Segment
	without := func(st ktrace.Step) map[ktrace.Step]int { m := inOrder(); delete(m, st); return m }
	at := func(st ktrace.Step, us int) map[ktrace.Step]int { m := inOrder(); m[st] = us; return m }
	for _, tc := range []struct {
		name  string
		steps map[ktrace.Step]int
		wrong string // in Check's error; "" passes
	}{
		{"in order", inOrder(), ""},
		{"no TCP in", without(ktrace.StepTCPIn), "lacks step tcp-in"},
		{"no receive buffer", without(ktrace.StepReceiveBuffer), "lacks step receive-buffer"},
		{"no write", without(ktrace.StepSendmsg), "lacks step send-buffer"},
		{"no IP in", without(ktrace.StepIPIn), "lacks step ip-in"},
		{"TCP in before IP in", at(ktrace.StepTCPIn, 5), "step tcp-in"},
		{"TCP's stamp after IP's", at(ktrace.StepTCPOut, -8), "step ip "},
		{"receive buffer before TCP in", at(ktrace.StepReceiveBuffer, 7), "lacks step receive-buffer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := append(pathEvents(data, 0x1000, tc.steps), pathEvents(resend, 0x2000, inOrder())...)
			paths := pathTimelines(events, pkts, []int{4, 5}, pkts[0].Info.Timestamp)
			tl := paths[3]
			if tl == nil || tl.Frame != 4 {
				t.Fatalf("no timeline of frame 4: %v", paths)
			}
			err := tl.Check(requestPath...)
			switch {
			case tc.wrong == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tc.wrong != "" && (err == nil || !strings.Contains(err.Error(), tc.wrong)):
				t.Errorf("Check: %v, want an error with %q; steps %+v", err, tc.wrong, tl.Steps)
			}
			// Frame 5's steps are its own transmission's, 210 ms on.
			if r := paths[4]; r == nil || r.Check(requestPath...) != nil || r.Steps[2].At != 220*time.Millisecond-10*time.Microsecond {
				t.Errorf("frame 5's timeline: %+v", r)
			}
		})
	}
}

// TestPathAbsent: on loopback the timeline says the NIC's rings, DMA,
// MAC check and interrupt are absent, and why; a step the kernel did not
// tell is said untold, not invented.
func TestPathAbsent(t *testing.T) {
	pkts := kvConn()
	m := inOrder()
	delete(m, ktrace.StepBacklog)
	tl := pathTimelines(pathEvents(&pkts[3].Segment, 0x1000, m), pkts, []int{4}, pkts[0].Info.Timestamp)[3]
	got := map[report.PathStepKind]report.AbsentReason{}
	for _, a := range tl.Absent {
		got[a.Kind] = a.Why
	}
	want := map[report.PathStepKind]report.AbsentReason{report.PathRingBuffer: report.AbsentNoRing, report.PathDMA: report.AbsentNoDMA,
		report.PathMAC: report.AbsentNoMAC, report.PathRxRing: report.AbsentNoRxRing, report.PathInterrupt: report.AbsentNoInterrupt,
		report.PathBacklog: report.AbsentUntold}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("absent %s: %s, want %s", k, got[k], w)
		}
	}
	for _, s := range tl.Steps {
		if s.Kind == report.PathBacklog {
			t.Errorf("a backlog step was made up: %+v", s)
		}
	}
	// Across the delay line's TUN devices, the receiver's backlog and
	// softirq are another sk_buff's.
	evs := pathEvents(&pkts[3].Segment, 0x1000, m)
	for i := range evs {
		if evs[i].Probe.Step() == ktrace.StepDriver {
			evs[i].Queue = "tun0"
		}
	}
	tl = pathTimelines(evs, pkts, []int{4}, pkts[0].Info.Timestamp)[3]
	got = map[report.PathStepKind]report.AbsentReason{}
	for _, a := range tl.Absent {
		got[a.Kind] = a.Why
	}
	if got[report.PathBacklog] != report.AbsentDelayLine || got[report.PathMAC] != report.AbsentNoMAC {
		t.Errorf("across TUN: backlog %s, MAC %s; want delay-line, no-mac", got[report.PathBacklog], got[report.PathMAC])
	}
}

// TestPathFrames: by default each connection's SYN and its first data
// segment each way; frames asked for replace them.
func TestPathFrames(t *testing.T) {
	pkts := kvConn()
	pkts = append(pkts, pkts[5])
	pkts[10].Segment.Frame, pkts[10].Segment.Len = 11, 5 // the server's first data
	if got := pathFrames(pkts, nil); !slices.Equal(got, []int{1, 4, 11}) {
		t.Errorf("default frames %v, want [1 4 11]", got)
	}
	if got := pathFrames(pkts, []int{7}); !slices.Equal(got, []int{7}) {
		t.Errorf("frames asked for %v, want [7]", got)
	}
	if w := pathWarnings(pkts, []int{7, 99}); len(w) != 1 || !strings.Contains(w[0], "frame 99") {
		t.Errorf("warnings %q, want one of frame 99", w)
	}
}
