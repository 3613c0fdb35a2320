package lab

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/ktrace"
	"github.com/tcplab/tcplab/lab/report"
)

// The path through the kernel of chosen segments (issue 16): the blog
// post's first half walks one segment down the sender's stack and up the
// receiver's; ktrace follows the segments a run sends (Path events), and
// pathTimelines ties their steps to the frames of the capture.

// pathFrames returns the frames whose paths a run shows: those asked for
// (-trace-path), else the first SYN of each connection and its first data
// segment each way.
func pathFrames(pkts []capture.Packet, asked []int) []int {
	if len(asked) > 0 {
		return asked
	}
	type first struct {
		stream int
		dir    capture.Dir
	}
	syn := map[int]bool{}
	data := map[first]bool{}
	var out []int
	for i := range pkts {
		p := &pkts[i]
		if !p.TCP {
			continue
		}
		s, a := &p.Segment, &p.Annotation
		switch {
		case s.Flags&(capture.SYN|capture.ACK) == capture.SYN && !syn[a.Stream]:
			syn[a.Stream] = true
			out = append(out, s.Frame)
		case s.Len > 0 && s.Flags&capture.SYN == 0 && !data[first{a.Stream, a.Dir}]:
			data[first{a.Stream, a.Dir}] = true
			out = append(out, s.Frame)
		}
	}
	return out
}

// pathSteps turns ktrace's steps into the post's.
var pathSteps = map[ktrace.Step]report.PathStepKind{
	ktrace.StepSendmsg:       report.PathSendBuffer,
	ktrace.StepTCPOut:        report.PathTCPOut,
	ktrace.StepIPOut:         report.PathIPOut,
	ktrace.StepQdisc:         report.PathSendQueue,
	ktrace.StepDriver:        report.PathDriver,
	ktrace.StepBacklog:       report.PathBacklog,
	ktrace.StepSoftirq:       report.PathSoftirq,
	ktrace.StepIPIn:          report.PathIPIn,
	ktrace.StepTCPIn:         report.PathTCPIn,
	ktrace.StepReceiveBuffer: report.PathReceiveBuffer,
	ktrace.StepAcceptQueue:   report.PathAcceptQueue,
	ktrace.StepRead:          report.PathRead,
}

// pathHooks say what told each of ktrace's steps.
var pathHooks = map[ktrace.Step]string{
	ktrace.StepSendmsg:       "tracepoint tcp:tcp_sendmsg_locked",
	ktrace.StepTCPOut:        report.HookStamp,
	ktrace.StepIPOut:         "netfilter LOCAL_OUT",
	ktrace.StepQdisc:         "tracepoint net:net_dev_queue",
	ktrace.StepDriver:        "tracepoint net:net_dev_start_xmit",
	ktrace.StepBacklog:       "tracepoint net:netif_rx",
	ktrace.StepSoftirq:       "tracepoint net:netif_receive_skb",
	ktrace.StepIPIn:          "netfilter PRE_ROUTING",
	ktrace.StepTCPIn:         "tracepoint tcp:tcp_probe",
	ktrace.StepReceiveBuffer: "tracepoint sock:sk_data_ready",
	ktrace.StepAcceptQueue:   "tracepoint sock:sk_data_ready",
	ktrace.StepRead:          "tracepoint sock:sock_recv_length",
}

// pathTimelines builds the timelines of frames from the kernel's events,
// by index of pkts; start is the capture's first frame's time. A frame
// the capture lacks is left out; one the kernel told nothing of has a
// timeline with no step.
func pathTimelines(events []ktrace.Event, pkts []capture.Packet, frames []int, start time.Time) map[int]*report.PathTimeline {
	index := map[int]int{}
	for i := range pkts {
		if pkts[i].TCP {
			index[pkts[i].Segment.Frame] = i
		}
	}
	var path []ktrace.Event
	for _, e := range events {
		if e.Kind == ktrace.Path {
			path = append(path, e)
		}
	}
	sort.SliceStable(path, func(a, b int) bool { return path[a].Time.Before(path[b].Time) })
	out := map[int]*report.PathTimeline{}
	for _, f := range frames {
		j, ok := index[f]
		if !ok {
			continue
		}
		p := &pkts[j]
		sender := report.SideClient
		if p.Annotation.Dir == capture.ServerToClient {
			sender = report.SideServer
		}
		out[j] = timeline(path, events, &p.Segment, sender, start)
	}
	return out
}

// timeline is the path of the segment s, from the time-ordered path
// events and all the events.
func timeline(path, events []ktrace.Event, s *capture.Segment, sender report.Side, start time.Time) *report.PathTimeline {
	t := &report.PathTimeline{Frame: s.Frame, Sender: sender}
	same := func(e *ktrace.Event) bool {
		return e.Src == s.Src && e.Dst == s.Dst && e.Seq == s.Seq && e.Flags == s.Flags && e.Len == s.Len
	}
	// The transmission the capture saw: the one whose IP step is nearest
	// the frame (its resends are a timeout apart), and its sk_buff.
	out := -1
	for i := range path {
		e := &path[i]
		if e.Probe.Step() == ktrace.StepIPOut && same(e) &&
			(out < 0 || e.Time.Sub(s.Time).Abs() < path[out].Time.Sub(s.Time).Abs()) {
			out = i
		}
	}
	if out < 0 || path[out].Time.Sub(s.Time).Abs() > ktrace.AttachWindow {
		return t
	}
	skb, from := path[out].Skb, path[out].Time
	var after time.Time // the last step's time
	add := func(e *ktrace.Event) {
		after = e.Time
		st := report.PathStep{Kind: pathSteps[e.Probe.Step()], At: e.Time.Sub(start), Func: e.Probe.Func(), Hook: pathHooks[e.Probe.Step()]}
		switch e.Probe.Step() {
		case ktrace.StepQdisc:
			st.Queue, st.QueueLen, st.Unit = e.Queue, e.QueueLen, "packets"
		case ktrace.StepDriver, ktrace.StepBacklog, ktrace.StepSoftirq, ktrace.StepIPIn:
			st.Device = e.Queue
		case ktrace.StepSendmsg, ktrace.StepReceiveBuffer:
			st.Queue, st.QueueLen, st.Unit = e.Queue, e.QueueLen, "bytes"
		case ktrace.StepAcceptQueue:
			st.Queue, st.QueueLen, st.Unit = e.Queue, e.QueueLen, "connections"
		}
		t.Steps = append(t.Steps, st)
	}
	// Before IP: the application's write or connect, and TCP's stamp.
	if s.Flags.Has(capture.SYN) && !s.Flags.Has(capture.ACK) {
		if c, ok := connectOf(events, s, from); ok {
			t.Steps = append(t.Steps, report.PathStep{Kind: report.PathConnect, At: c.Sub(start), Func: "tcp_v4_connect",
				Hook: report.HookSynSent})
		}
	}
	if s.Len > 0 {
		if w := lastBefore(path, from, func(e *ktrace.Event) bool {
			return e.Probe.Step() == ktrace.StepSendmsg && e.Src == s.Src && e.Dst == s.Dst && seqIn(e.Seq, s.Seq-1<<30, s.Seq+1)
		}); w != nil {
			add(w)
		}
	}
	// TCP's stamp is told at IP's hook, with the same sk_buff.
	for i := range path {
		if e := &path[i]; e.Probe.Step() == ktrace.StepTCPOut && e.Skb == skb && same(e) && e.Time.Sub(from).Abs() <= ktrace.AttachWindow {
			add(e)
			break
		}
	}
	add(&path[out])
	// The steps of this transmission come before the next one's: a resend
	// is a timeout later.
	until := from.Add(ktrace.AttachWindow)
	if next := firstAfter(path, from.Add(time.Nanosecond), func(e *ktrace.Event) bool {
		return e.Probe.Step() == ktrace.StepIPOut && same(e)
	}); next != nil {
		until = next.Time
	}
	before := func(ok func(*ktrace.Event) bool) func(*ktrace.Event) bool {
		return func(e *ktrace.Event) bool { return e.Time.Before(until) && ok(e) }
	}
	// From IP on: the sk_buff's own steps, each the first after IP's;
	// after a TUN device the receiver's sk_buff is another, found by the
	// segment's headers.
	for _, st := range []ktrace.Step{ktrace.StepQdisc, ktrace.StepDriver, ktrace.StepBacklog, ktrace.StepSoftirq, ktrace.StepIPIn, ktrace.StepTCPIn} {
		if e := firstAfter(path, from, before(func(e *ktrace.Event) bool { return e.Probe.Step() == st && same(e) })); e != nil {
			add(e)
		}
	}
	switch {
	case s.Flags.Has(capture.SYN) && !s.Flags.Has(capture.ACK):
		// The listener's answer tells of its SYN queue: TCP stamped the
		// SYN-ACK as it made it, from the request sock it queued.
		if e := firstAfter(path, after, func(e *ktrace.Event) bool {
			return e.Probe.Step() == ktrace.StepTCPOut && e.Src == s.Dst && e.Dst == s.Src &&
				e.Flags.Has(capture.SYN|capture.ACK) && e.Ack == s.Seq+1
		}); e != nil {
			t.Steps = append(t.Steps, report.PathStep{Kind: report.PathSYNQueue, At: e.Time.Sub(start), Func: "inet_csk_reqsk_queue_hash_add",
				Hook: report.HookSYNACKStamp})
		}
		if e := firstAfter(path, after, func(e *ktrace.Event) bool {
			return e.Probe.Step() == ktrace.StepAcceptQueue && e.Src.Port() == s.Dst.Port() &&
				(e.Src.Addr() == s.Dst.Addr() || e.Src.Addr().IsUnspecified())
		}); e != nil {
			add(e)
		}
	case s.Len > 0:
		end := s.Seq + uint32(s.Len)
		if e := firstAfter(path, after, before(func(e *ktrace.Event) bool {
			return e.Probe.Step() == ktrace.StepReceiveBuffer && e.Src == s.Src && e.Dst == s.Dst && seqIn(e.Seq, end, end+1<<30)
		})); e != nil {
			add(e)
		}
		if e := firstAfter(path, after, func(e *ktrace.Event) bool {
			return e.Probe.Step() == ktrace.StepRead && e.Src == s.Src && e.Dst == s.Dst && seqIn(s.Seq, e.Seq, e.Seq+uint32(e.Len))
		}); e != nil {
			add(e)
		}
	}
	t.Absent = absentSteps(t)
	return t
}

// absentSteps says which of the post's steps the segment's path lacks,
// and why: the lab's devices have no NIC rings, DMA or interrupt; a step
// that exists but was not told is said so.
func absentSteps(t *report.PathTimeline) []report.AbsentStep {
	has := map[report.PathStepKind]bool{}
	noEthernet, tun := false, false
	for _, s := range t.Steps {
		has[s.Kind] = true
		if s.Kind == report.PathDriver {
			tun = strings.HasPrefix(s.Device, "tun")
			noEthernet = s.Device == "lo" || tun
		}
	}
	out := []report.AbsentStep{{Kind: report.PathRingBuffer, Why: report.AbsentNoRing}, {Kind: report.PathDMA, Why: report.AbsentNoDMA}}
	if noEthernet {
		out = append(out, report.AbsentStep{Kind: report.PathMAC, Why: report.AbsentNoMAC})
	} else {
		out = append(out, report.AbsentStep{Kind: report.PathMAC, Why: report.AbsentMACUntold})
	}
	out = append(out, report.AbsentStep{Kind: report.PathRxRing, Why: report.AbsentNoRxRing},
		report.AbsentStep{Kind: report.PathInterrupt, Why: report.AbsentNoInterrupt})
	for _, k := range []report.PathStepKind{report.PathTCPOut, report.PathIPOut, report.PathSendQueue, report.PathDriver,
		report.PathBacklog, report.PathSoftirq, report.PathIPIn} {
		switch {
		case has[k]:
		case tun && (k == report.PathBacklog || k == report.PathSoftirq):
			out = append(out, report.AbsentStep{Kind: k, Why: report.AbsentDelayLine})
		default:
			out = append(out, report.AbsentStep{Kind: k, Why: report.AbsentUntold})
		}
	}
	return out
}

// connectOf returns when the socket that sent the SYN s went to SYN_SENT
// (connect()), before its IP step at from: the state change's socket is
// told by its cookie, whose other events carry its tuple.
func connectOf(events []ktrace.Event, s *capture.Segment, from time.Time) (time.Time, bool) {
	cookies := map[uint64]bool{}
	for _, e := range events {
		if e.Cookie != 0 && e.Src == s.Src && e.Dst == s.Dst {
			cookies[e.Cookie] = true
		}
	}
	var at time.Time
	for _, e := range events {
		if e.Kind == ktrace.StateChange && e.NewState == capture.SynSent && cookies[e.Cookie] && !e.Time.After(from) && from.Sub(e.Time) < ktrace.AttachWindow {
			at = e.Time
		}
	}
	return at, !at.IsZero()
}

// seqIn reports whether a is in [lo, hi) in sequence space.
func seqIn(a, lo, hi uint32) bool { return a-lo < hi-lo }

// firstAfter returns the first of the time-ordered events at or after t
// that ok accepts, within AttachWindow.
func firstAfter(evs []ktrace.Event, t time.Time, ok func(*ktrace.Event) bool) *ktrace.Event {
	i := sort.Search(len(evs), func(i int) bool { return !evs[i].Time.Before(t) })
	for ; i < len(evs) && evs[i].Time.Sub(t) <= ktrace.AttachWindow; i++ {
		if ok(&evs[i]) {
			return &evs[i]
		}
	}
	return nil
}

// lastBefore returns the last of the time-ordered events before t that
// ok accepts, within AttachWindow.
func lastBefore(evs []ktrace.Event, t time.Time, ok func(*ktrace.Event) bool) *ktrace.Event {
	i := sort.Search(len(evs), func(i int) bool { return !evs[i].Time.Before(t) })
	for i--; i >= 0 && t.Sub(evs[i].Time) <= ktrace.AttachWindow; i-- {
		if ok(&evs[i]) {
			return &evs[i]
		}
	}
	return nil
}

// pathWarnings says which frames asked for are not TCP segments of the
// capture.
func pathWarnings(pkts []capture.Packet, asked []int) []string {
	have := map[int]bool{}
	for i := range pkts {
		if pkts[i].TCP {
			have[pkts[i].Segment.Frame] = true
		}
	}
	var out []string
	for _, f := range asked {
		if !have[f] {
			out = append(out, fmt.Sprintf("-trace-path: frame %d is no TCP segment of the capture", f))
		}
	}
	return out
}
