package lab

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/ktrace"
	"github.com/tcplab/tcplab/lab/report"
)

// Contradiction is where the wire's analysis of a run says what the
// kernel's own account of it denies.
type Contradiction struct {
	Frame int // the segment it is about
	What  ContradictionKind
	Side  report.Side
	State capture.State // of StateNeverEntered
}

// ContradictionKind says what the wire and the kernel disagree on.
type ContradictionKind uint8

// The contradictions a run checks for.
const (
	// LabelNotRetransmitted: the wire labels a segment a retransmission
	// that its sender's kernel never sent again.
	LabelNotRetransmitted ContradictionKind = iota + 1
	// RetransmitNotLabelled: the kernel sent a segment again that the
	// wire did not label a retransmission.
	RetransmitNotLabelled
	// StateNeverEntered: the wire puts an end in a state its socket never
	// entered.
	StateNeverEntered
	// RetransmitOutOfOrder: the kernel sent a segment again that the
	// wire labels out-of-order, as Wireshark labels a segment that fills
	// a hole sooner after it than a retransmission timer could (3 ms):
	// a resend that quick and a reordered segment look alike on the
	// wire, so the label is not wrong, only less than the kernel knows.
	RetransmitOutOfOrder
	// LabelOnFirstCopy: the wire labels a segment a retransmission that
	// carries bytes no segment before it carried, and its sender's
	// kernel sent nothing again: segments reordered on their way to the
	// capture (two CPUs transmitting), which TCP allows, and which
	// Wireshark's rule labels so when the later one fills the hole.
	LabelOnFirstCopy
	numContradictions
)

// String says the contradiction in a line, for result.json and the
// run's error.
func (c Contradiction) String() string {
	switch c.What {
	case LabelNotRetransmitted:
		return fmt.Sprintf("frame %d: the wire labels it a retransmission, but the %s's kernel sent nothing again", c.Frame, c.Side)
	case RetransmitNotLabelled:
		return fmt.Sprintf("frame %d: the %s's kernel sent it again, but the wire does not label it a retransmission", c.Frame, c.Side)
	case RetransmitOutOfOrder:
		return fmt.Sprintf("frame %d: the %s's kernel sent it again (a fast retransmit the wire labels out-of-order, as Wireshark does)", c.Frame, c.Side)
	case LabelOnFirstCopy:
		return fmt.Sprintf("frame %d: the wire labels it a retransmission, but it is the first to carry its bytes and the %s's kernel sent nothing again (reordered before the capture)", c.Frame, c.Side)
	case StateNeverEntered:
		return fmt.Sprintf("frame %d: the wire puts the %s in %s, a state its socket never entered", c.Frame, c.Side, c.State)
	}
	return fmt.Sprintf("frame %d: contradiction %d", c.Frame, c.What)
}

// retransmitted are the labels that say a segment was sent again by its
// sender.
const retransmitted = 1<<capture.Retransmission | 1<<capture.FastRetransmission | 1<<capture.SpuriousRetransmission

// contradictions checks the wire's analysis of pkts against the kernel's
// account a: each segment labelled a retransmission was sent again by
// its sender's kernel, each segment its kernel sent again is labelled,
// and each state the wire puts an end in is one its socket entered. An
// end whose socket the kernel never told of (no event of it is tied to a
// segment) is not checked.
func contradictions(pkts []capture.Packet, a *kernelAccount) []Contradiction {
	var out []Contradiction
	type end struct {
		stream int
		side   report.Side
	}
	sockets := map[end]uint64{}
	for j, evs := range a.events {
		for _, e := range evs {
			if e.Socket != 0 && pkts[j].TCP {
				sockets[end{pkts[j].Annotation.Stream, e.Side}] = e.Socket
			}
		}
	}
	entered := map[uint64]map[capture.State]bool{}
	for _, e := range a.raw {
		if e.Kind != ktrace.StateChange {
			continue
		}
		if entered[e.Cookie] == nil {
			entered[e.Cookie] = map[capture.State]bool{}
		}
		entered[e.Cookie][e.NewState] = true
		if e.NewState == capture.Closed && (e.OldState == capture.FinWait2 || e.OldState == capture.Closing) {
			entered[e.Cookie][capture.TimeWait] = true // a time-wait socket took over
		}
	}
	reported := map[end]map[capture.State]bool{}
	first := firstCopies(pkts)
	for j := range pkts {
		p := &pkts[j]
		if !p.TCP {
			continue
		}
		sender := report.SideClient
		if p.Annotation.Dir == capture.ServerToClient {
			sender = report.SideServer
		}
		labelled := p.Annotation.Labels&retransmitted != 0
		sentAgain := false
		for _, e := range a.events[j] {
			if (e.Kind == report.KernelRetransmit || e.Kind == report.KernelRetransmitSYNACK) && e.Side == sender {
				sentAgain = true
			}
		}
		_, traced := sockets[end{p.Annotation.Stream, sender}]
		switch {
		case labelled && !sentAgain && traced && !resent(a.raw, &p.Segment):
			what := LabelNotRetransmitted
			if first[j] {
				what = LabelOnFirstCopy
			}
			out = append(out, Contradiction{Frame: p.Segment.Frame, What: what, Side: sender})
		case sentAgain && !labelled && p.Annotation.Labels.Has(capture.OutOfOrder):
			out = append(out, Contradiction{Frame: p.Segment.Frame, What: RetransmitOutOfOrder, Side: sender})
		case sentAgain && !labelled:
			out = append(out, Contradiction{Frame: p.Segment.Frame, What: RetransmitNotLabelled, Side: sender})
		}
		for side, st := range [2]capture.State{p.Annotation.Client, p.Annotation.Server} {
			k := end{p.Annotation.Stream, report.Side(side)}
			cookie, ok := sockets[k]
			if !ok || !checkedState(st) || entered[cookie][st] {
				continue
			}
			if reported[k] == nil {
				reported[k] = map[capture.State]bool{}
			}
			if !reported[k][st] {
				reported[k][st] = true
				out = append(out, Contradiction{Frame: p.Segment.Frame, What: StateNeverEntered, Side: report.Side(side), State: st})
			}
		}
	}
	return out
}

// resent reports whether the kernel sent s again as part of a larger
// segment: a retransmitted buffer of several MTUs' worth leaves as
// several segments (GSO), but the kernel tells of it once, with its
// whole range, tied to its first segment. An attempt that sent nothing
// (Err) is no resend.
func resent(events []ktrace.Event, s *capture.Segment) bool {
	for i := range events {
		e := &events[i]
		if e.Kind != ktrace.Retransmit || e.Err != 0 || e.Src != s.Src || e.Dst != s.Dst || e.Time.Sub(s.Time).Abs() > ktrace.AttachWindow {
			continue
		}
		if s.Seq-e.Seq < e.End-e.Seq {
			return true
		}
	}
	return false
}

// firstCopies reports, by index of pkts, whether each segment is the
// first on the wire to carry any of its bytes (or its SYN or FIN), in
// its connection's direction: a segment sent again repeats bytes that
// an earlier one carried; one that merely came late does not.
func firstCopies(pkts []capture.Packet) []bool {
	type key struct {
		stream int
		dir    capture.Dir
	}
	// Each direction's bytes seen, as sorted, disjoint spans counted
	// from its first sequence number.
	type span struct{ from, to int64 }
	base := map[key]uint32{}
	spans := map[key][]span{}
	out := make([]bool, len(pkts))
	for j := range pkts {
		p := &pkts[j]
		n := int64(p.Segment.Len)
		if p.Segment.Flags.Has(capture.SYN) {
			n++
		}
		if p.Segment.Flags.Has(capture.FIN) {
			n++
		}
		if !p.TCP || n == 0 {
			continue
		}
		k := key{p.Annotation.Stream, p.Annotation.Dir}
		b, ok := base[k]
		if !ok {
			b, base[k] = p.Segment.Seq, p.Segment.Seq
		}
		from := int64(int32(p.Segment.Seq - b))
		to := from + n
		s := spans[k]
		i := sort.Search(len(s), func(i int) bool { return s[i].to > from })
		out[j] = i == len(s) || s[i].from >= to
		lo := sort.Search(len(s), func(i int) bool { return s[i].to >= from })
		hi := lo
		for hi < len(s) && s[hi].from <= to {
			from, to = min(from, s[hi].from), max(to, s[hi].to)
			hi++
		}
		spans[k] = slices.Replace(s, lo, hi, span{from, to})
	}
	return out
}

// checkedState reports whether the wire's claim of st can be checked
// against a connection's socket: not the states of no socket (CLOSED,
// and the unknown before any segment), nor LISTEN, which is the
// listener's, another socket.
func checkedState(st capture.State) bool {
	return st != capture.Unknown && st != capture.Closed && st != capture.Listen
}

// warnedContradictions are the contradictions that are recorded in
// result.json (kernel_warnings) without failing the run.
var warnedContradictions = [numContradictions]bool{RetransmitOutOfOrder: true, LabelOnFirstCopy: true}

// judge checks the wire's analysis of pkts against the kernel's own
// account, when the run traced the kernel and lost none of its events:
// it returns the contradictions that fail the run, and records those
// that do not in r's kernel warnings.
//
// At full speed (highRate), a retransmission label the kernel denies is
// a warning: the two CPUs' transmissions then reach the loopback's
// receiver, and the capture, out of order now and then (the receiver's
// duplicate ACK shows it), and the wire labels the late segment a
// retransmission. It failed 6 of 14 runs of bulk, and none of 40 runs of
// each other scenario.
func (a *kernelAccount) judge(r *report.Result, pkts []capture.Packet, highRate bool) error {
	if a.source != report.KernelTraced || a.lost > 0 {
		return nil
	}
	var fails []string
	for _, c := range contradictions(pkts, a) {
		warned := int(c.What) < len(warnedContradictions) && warnedContradictions[c.What]
		if warned || highRate && c.What == LabelNotRetransmitted {
			r.KernelWarnings = append(r.KernelWarnings, c.String())
		} else {
			fails = append(fails, c.String())
		}
	}
	if len(fails) == 0 {
		return nil
	}
	if a.blackouts > 0 {
		// The account may lack the very events that would agree.
		for _, f := range fails {
			r.KernelWarnings = append(r.KernelWarnings, blackoutWarning(f, a.blackouts))
		}
		return nil
	}
	return errors.New("the wire's analysis contradicts the kernel: " + strings.Join(fails, "; "))
}

// judgeSteps judges what the steps require of the kernel (expect.Step.Kernel)
// against the account, on the verdict v of matching pkts: the one place
// where the kernel's events reach the judge. Without the kernel's own
// events (a run that sampled the sockets, or lost events), it leaves them
// unjudged and says why.
func (a *kernelAccount) judgeSteps(name string, v *expect.Verdict, pkts []capture.Packet) {
	switch {
	case a == nil || a.source == "":
		v.SkipKernel(expect.KernelNotObserved)
	case a.source == report.KernelSampled:
		// Why it could not trace is said once, for the whole run.
		v.SkipKernel(expect.KernelSampled)
	case a.lost > 0:
		v.SkipKernel(expect.KernelEventsLost)
	default:
		judged := *v
		judged.Mismatches = slices.Clone(v.Mismatches)
		judged.JudgeKernel(name, pkts, expectEvents(pkts, a.events))
		if a.blackouts > 0 && len(judged.Mismatches) > len(v.Mismatches) {
			// The account may lack the very events the steps require.
			v.SkipKernel(expect.KernelBlackout)
			return
		}
		*v = judged
	}
}

// blackoutWarning is what result.json says of a contradiction left
// unjudged for the kernel's blackouts.
func blackoutWarning(contradiction string, blackouts uint64) string {
	return fmt.Sprintf("not judged: %s; the kernel ran no BPF program for a traced tracepoint %d times during the run (BPF busy on the CPU), so its events may be missing", contradiction, blackouts)
}

// expectEvents tells the judge the kernel's events, by index of pkts, in
// its own words: each at the segment's sender or receiver.
func expectEvents(pkts []capture.Packet, events map[int][]report.KernelEvent) map[int][]expect.KernelEvent {
	out := make(map[int][]expect.KernelEvent, len(events))
	for j, evs := range events {
		if j < 0 || j >= len(pkts) {
			continue
		}
		sender := report.SideClient
		if pkts[j].Annotation.Dir == capture.ServerToClient {
			sender = report.SideServer
		}
		for _, e := range evs {
			ke := expect.KernelEvent{AtSender: e.Side == sender, To: e.To, Cause: expectCause(e.Cause), Reason: e.Reason}
			switch e.Kind {
			case report.KernelState:
				ke.Kind = expect.KernelStateChange
			case report.KernelRetransmit, report.KernelRetransmitSYNACK:
				ke.Kind = expect.KernelRetransmit
			case report.KernelResetSent:
				ke.Kind = expect.KernelResetSent
			case report.KernelResetReceived:
				ke.Kind = expect.KernelResetReceived
			case report.KernelDrop:
				ke.Kind = expect.KernelDrop
			default:
				continue
			}
			out[j] = append(out[j], ke)
		}
	}
	return out
}

// expectCause returns the judge's name of the account's cause c.
func expectCause(c report.RetransCause) expect.Cause {
	switch c {
	case report.CauseRTO:
		return expect.RTO
	case report.CauseFastRetransmit:
		return expect.FastRetransmit
	case report.CauseTailLossProbe:
		return expect.TailLossProbe
	case report.CauseZeroWindowProbe:
		return expect.ZeroWindowProbe
	case report.CauseSYNACK:
		return expect.SYNACKTimeout
	}
	return expect.CauseUnknown
}
