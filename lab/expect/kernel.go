package expect

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tcplab/tcplab/capture"
)

// KernelKind is what a kernel did at a segment, as a KernelEvent tells
// the judge.
type KernelKind uint8

// The kinds of KernelEvent.
const (
	// KernelStateChange is a socket's move from one state to another.
	KernelStateChange KernelKind = iota + 1
	// KernelRetransmit is the segment sent again by its sender.
	KernelRetransmit
	// KernelResetSent is a RST its sender's kernel sent.
	KernelResetSent
	// KernelResetReceived is a RST a socket took in.
	KernelResetReceived
	// KernelDrop is the segment dropped by its receiver's kernel.
	KernelDrop
	numKernelKinds
)

var kernelKindNames = [numKernelKinds]string{"", "state change", "retransmission", "RST sent", "RST taken in", "drop"}

// String names the kind: "drop", "retransmission".
func (k KernelKind) String() string {
	if k > 0 && k < numKernelKinds {
		return kernelKindNames[k]
	}
	return "KernelKind(" + strconv.Itoa(int(k)) + ")"
}

// Cause is why a kernel sent a segment again.
type Cause uint8

// The causes of a retransmission a step may require.
const (
	CauseUnknown Cause = iota
	// RTO: the retransmission timer fired.
	RTO
	// FastRetransmit: duplicate ACKs or SACKs showed the loss (RACK).
	FastRetransmit
	// TailLossProbe: the loss probe timer sent the last segment again.
	TailLossProbe
	// ZeroWindowProbe: the zero-window probe timer was pending.
	ZeroWindowProbe
	// SYNACKTimeout: a listener's SYN-ACK timer.
	SYNACKTimeout
	numCauses
)

var causeNames = [numCauses]string{"unknown", "RTO", "fast retransmit", "tail loss probe", "zero-window probe", "SYN-ACK timeout"}

// String names the cause as the kernel's account does: "RTO".
func (c Cause) String() string {
	if c < numCauses {
		return causeNames[c]
	}
	return "Cause(" + strconv.Itoa(int(c)) + ")"
}

// KernelEvent is one thing the kernel did at a segment, as the runner
// tells the judge: it ties each event of its own account to the segment
// it is about, at the segment's sender or receiver.
type KernelEvent struct {
	Kind KernelKind
	// AtSender says the event happened at the segment's sender (a
	// retransmission, a RST sent), not its receiver (a drop).
	AtSender bool
	// To is the state a state change entered.
	To capture.State
	// Cause is why a retransmission went out.
	Cause Cause
	// Reason is the kernel's name for why a packet was dropped or a RST
	// sent: "NETFILTER_DROP", "TCP_LISTEN_OVERFLOW".
	Reason string
}

// String says the event in a few words: "drop (NETFILTER_DROP)".
func (e KernelEvent) String() string {
	s := e.Kind.String()
	switch e.Kind {
	case KernelStateChange:
		s += " to " + e.To.String()
	case KernelRetransmit:
		s += " (" + e.Cause.String() + ")"
	case KernelDrop, KernelResetSent:
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
	}
	return s
}

// KernelCheck is what a step requires of the kernel's own account of its
// segment: built by Dropped, NoDrop, Resent, Entered and ResetFor, given
// to Step.Kernel.
type KernelCheck struct {
	kind    KernelKind
	none    bool // NoDrop: no event of kind
	reasons []string
	causes  []Cause
	state   capture.State
}

// Dropped requires the segment's receiver to drop it for one of
// reasons, the kernel's names ("NETFILTER_DROP", "TCP_LISTEN_OVERFLOW"),
// which differ between kernels now and then; none takes any reason.
func Dropped(reasons ...string) KernelCheck { return KernelCheck{kind: KernelDrop, reasons: reasons} }

// NoDrop requires that the segment's receiver did not drop it.
func NoDrop() KernelCheck { return KernelCheck{kind: KernelDrop, none: true} }

// Resent requires the segment's sender to have sent it again for one of
// causes; none takes any cause.
func Resent(causes ...Cause) KernelCheck {
	return KernelCheck{kind: KernelRetransmit, causes: causes}
}

// Entered requires a socket of the connection, at either end, to enter
// state st as the segment went out or came in.
func Entered(st capture.State) KernelCheck { return KernelCheck{kind: KernelStateChange, state: st} }

// ResetFor requires the segment to be a RST its sender's kernel sent for
// one of reasons, the kernel's names ("NOT_SPECIFIED",
// "TCP_ABORT_ON_DATA"); none takes any reason.
func ResetFor(reasons ...string) KernelCheck {
	return KernelCheck{kind: KernelResetSent, reasons: reasons}
}

// String says the requirement in a few words: "a drop (NETFILTER_DROP)",
// "a retransmission (tail loss probe or RTO)", "no drop".
func (c KernelCheck) String() string { return c.StringIn(English) }

// kernelCheckStrings are the words of KernelCheck.StringIn in one
// language: the kinds and causes by value, then "no %s", "a %s", " to
// %s" and " or ".
type kernelCheckStrings struct {
	kinds         [numKernelKinds]string
	causes        [numCauses]string
	no, a, to, or string
}

// kernelCheckTexts holds kernelCheckStrings by language.
var kernelCheckTexts = [langs]kernelCheckStrings{
	English: {kinds: kernelKindNames, causes: causeNames, no: "no %s", a: "a %s", to: " to %s", or: " or "},
	Chinese: {
		kinds:  [numKernelKinds]string{"", "状态变化", "重传", "发送RST", "收到RST", "丢包"},
		causes: [numCauses]string{"原因不明", "RTO", "快速重传", "尾部丢失探测", "零窗口探测", "SYN-ACK超时"},
		no:     "没有%s", a: "%s", to: ", 变为 %s", or: " 或 ",
	},
}

// StringIn is String in lang; the kernel's names (reasons, states) stay
// as the kernel spells them.
func (c KernelCheck) StringIn(lang Lang) string {
	if lang >= langs {
		lang = English
	}
	t := &kernelCheckTexts[lang]
	kind := c.kind.String()
	if c.kind < numKernelKinds {
		kind = t.kinds[c.kind]
	}
	if c.none {
		return fmt.Sprintf(t.no, kind)
	}
	s := fmt.Sprintf(t.a, kind)
	switch {
	case c.kind == KernelStateChange:
		s += fmt.Sprintf(t.to, c.state)
	case len(c.causes) > 0:
		names := make([]string, len(c.causes))
		for i, x := range c.causes {
			names[i] = x.String()
			if x < numCauses {
				names[i] = t.causes[x]
			}
		}
		s += " (" + strings.Join(names, t.or) + ")"
	case len(c.reasons) > 0:
		s += " (" + strings.Join(c.reasons, t.or) + ")"
	}
	return s
}

// meets reports whether e is an event the check asks for.
func (c *KernelCheck) meets(e *KernelEvent) bool {
	if e.Kind != c.kind {
		return false
	}
	switch c.kind {
	case KernelDrop:
		return !e.AtSender && c.reason(e.Reason)
	case KernelResetSent:
		return e.AtSender && c.reason(e.Reason)
	case KernelRetransmit:
		if !e.AtSender {
			return false
		}
		for _, x := range c.causes {
			if e.Cause == x {
				return true
			}
		}
		return len(c.causes) == 0
	case KernelStateChange:
		return e.To == c.state
	}
	return true
}

// reason reports whether the kernel's reason r is one the check takes.
func (c *KernelCheck) reason(r string) bool {
	for _, x := range c.reasons {
		if x == r {
			return true
		}
	}
	return len(c.reasons) == 0
}

// judge returns what is wrong with events for the check, or "".
func (c *KernelCheck) judge(events []KernelEvent) string {
	for i := range events {
		if c.meets(&events[i]) {
			if c.none {
				return events[i].String()
			}
			return ""
		}
	}
	if c.none {
		return ""
	}
	if len(events) == 0 {
		return "nothing"
	}
	told := make([]string, len(events))
	for i := range events {
		told[i] = events[i].String()
	}
	return strings.Join(told, ", ")
}

// Kernel requires the kernel's own account of the segment to hold each
// of checks: `.Kernel(expect.Dropped("NETFILTER_DROP"))`. They do not take
// part in matching: a run that traced the kernel judges them on the
// segments that matched the step (Verdict.JudgeKernel); a capture alone,
// or a run that could only sample the sockets, leaves them unjudged and
// says so (Verdict.KernelUnjudged).
func (s Step) Kernel(checks ...KernelCheck) Step {
	return s.refine(func(s *Step) { s.kernel = append(s.kernel[:len(s.kernel):len(s.kernel)], checks...) })
}

// KernelChecks returns what the step requires of the kernel, each
// requirement once, those of every alternative of a choice included.
func (s *Step) KernelChecks() []KernelCheck {
	var out []KernelCheck
	seen := map[string]bool{}
	var walk func(st *Step)
	walk = func(st *Step) {
		for _, c := range st.kernel {
			if k := c.String(); !seen[k] {
				seen[k] = true
				out = append(out, c)
			}
		}
		for _, alt := range st.alts {
			for j := range alt {
				walk(&alt[j])
			}
		}
	}
	walk(s)
	return out
}

// Unjudged says why what the steps require of the kernel (Step.Kernel)
// was not judged.
type Unjudged uint8

// The reasons a verdict leaves the kernel's requirements unjudged.
// Judged is the zero value: judged, or nothing to judge.
const (
	Judged Unjudged = iota
	// NoKernelAccount: the segments alone cannot say what the kernel
	// did (Match's verdict, and a capture checked on its own).
	NoKernelAccount
	// KernelSampled: the run sampled the sockets (INET_DIAG) instead of
	// tracing the kernel's events, which needs root.
	KernelSampled
	// KernelEventsLost: the run lost some of the kernel's events.
	KernelEventsLost
	// KernelNotObserved: the run neither traced nor sampled the kernel.
	KernelNotObserved
	// StepsFailed: the segments did not match the steps.
	StepsFailed
	// KernelBlackout: the kernel's events did not meet what the steps
	// require, but during the run the kernel ran no BPF program for some
	// of the tracepoints it fired (BPF was busy on the CPU), so the events
	// may lack what it did.
	KernelBlackout
	numUnjudged
)

var unjudgedTexts = [langs][numUnjudged]string{
	English: {"", "the capture alone does not say what the kernel did", "the run sampled the sockets instead of tracing the kernel (that needs root)",
		"the run lost some of the kernel's events", "the run did not observe the kernel", "the segments did not match the steps",
		"the kernel's events lacked what the steps require, but the kernel skipped the tracer's programs during the run (BPF was busy on a CPU), so events may be missing"},
	Chinese: {"", "只有抓包, 不知道内核做了什么", "这次运行采样了socket, 没有跟踪内核 (跟踪需要root)",
		"这次运行丢失了一些内核事件", "这次运行没有观察内核", "包没有匹配步骤",
		"内核事件缺少步骤要求的内容, 但运行期间内核跳过了跟踪程序 (某个CPU上BPF正忙), 事件可能不全"},
}

// String says why in English.
func (u Unjudged) String() string { return u.StringIn(English) }

// StringIn says why in lang.
func (u Unjudged) StringIn(lang Lang) string {
	if lang >= langs {
		lang = English
	}
	if u < numUnjudged {
		return unjudgedTexts[lang][u]
	}
	return "Unjudged(" + strconv.Itoa(int(u)) + ")"
}

// JudgeKernel judges what the steps require of the kernel (Step.Kernel)
// on the segments that matched them, against events: the kernel's
// account, tied to the packets Match was given, by their index. Each
// requirement that a segment's events do not meet is a mismatch, and the
// verdict fails. A verdict that failed already is not judged further:
// the segments that matched no step, or the wrong one, would only add
// noise to the mismatch that says what went wrong.
func (v *Verdict) JudgeKernel(name string, pkts []capture.Packet, events map[int][]KernelEvent) {
	if v.KernelUnjudged == Judged {
		return
	}
	if !v.Pass {
		v.KernelUnjudged = StepsFailed
		return
	}
	v.KernelUnjudged = Judged
	for i, st := range v.Why {
		if st == nil || len(st.kernel) == 0 || i >= len(pkts) {
			continue
		}
		for k := range st.kernel {
			c := &st.kernel[k]
			got := c.judge(events[i])
			if got == "" {
				continue
			}
			p := &pkts[i]
			v.Mismatches = append(v.Mismatches, Mismatch{
				Scenario: name, Step: v.StepOf[i],
				Diffs:    []Diff{{Field: FieldKernel, Want: c.String(), Got: got}},
				Expected: st.String(),
				Actual:   Format(p, pkts[0].Info.Timestamp),
				Frame:    p.Segment.Frame,
			})
		}
	}
	v.Pass = len(v.Mismatches) == 0
}

// SkipKernel leaves what the steps require of the kernel unjudged, for
// why (a run that could only sample the sockets), when a step requires
// anything of it.
func (v *Verdict) SkipKernel(why Unjudged) {
	if v.KernelUnjudged != Judged {
		v.KernelUnjudged = why
	}
}

// kernelUnjudged returns NoKernelAccount when a step requires anything
// of the kernel.
func kernelUnjudged(steps []Step) Unjudged {
	for i := range steps {
		if len(steps[i].KernelChecks()) > 0 {
			return NoKernelAccount
		}
	}
	return Judged
}

// kernelString formats the step's kernel checks for Step.String.
func (s *Step) kernelString() string {
	if len(s.kernel) == 0 {
		return ""
	}
	parts := make([]string, len(s.kernel))
	for i, c := range s.kernel {
		parts[i] = c.String()
	}
	return fmt.Sprintf(" kernel[%s]", strings.Join(parts, "; "))
}
