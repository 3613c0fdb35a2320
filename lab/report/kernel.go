package report

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// Side is the end of a connection a kernel event happened at.
type Side uint8

// The two ends.
const (
	SideClient Side = iota
	SideServer
)

// String returns "client" or "server".
func (s Side) String() string {
	if s == SideServer {
		return "server"
	}
	return "client"
}

// KernelKind is what the kernel did, as lab/ktrace's tracepoints tell it.
type KernelKind uint8

// The kinds of KernelEvent.
const (
	// KernelState is a socket's move from one state to another.
	KernelState KernelKind = iota + 1
	// KernelRetransmit is a segment sent again.
	KernelRetransmit
	// KernelRetransmitSYNACK is a listener's SYN-ACK sent again.
	KernelRetransmitSYNACK
	// KernelResetSent is a RST the kernel sent.
	KernelResetSent
	// KernelResetReceived is a RST a socket took in.
	KernelResetReceived
	// KernelDrop is a packet the kernel dropped.
	KernelDrop
	numKernelKinds
)

var kernelKindNames = [numKernelKinds]string{"", "state", "retransmit", "retransmit-synack", "reset-sent", "reset-received", "drop"}

// String returns the kind's name, as result.json has it: "state",
// "retransmit", "drop".
func (k KernelKind) String() string {
	if k > 0 && k < numKernelKinds {
		return kernelKindNames[k]
	}
	return "KernelKind(" + strconv.Itoa(int(k)) + ")"
}

// RetransCause is why the kernel sent a segment again.
type RetransCause uint8

// The causes of a retransmission, as the socket's congestion state and
// pending timer tell them when it went out again.
const (
	CauseUnknown         RetransCause = iota
	CauseRTO                          // the retransmission timer fired
	CauseFastRetransmit               // duplicate ACKs or SACKs showed the loss
	CauseTailLossProbe                // the loss probe timer sent the last segment again
	CauseZeroWindowProbe              // the zero-window probe timer was pending
	CauseSYNACK                       // a listener's SYN-ACK timer
	numCauses
)

var causeNames = [numCauses]string{"unknown", "RTO", "fast retransmit", "tail loss probe", "zero-window probe", "SYN-ACK timeout"}

// String returns the cause's name, such as "RTO".
func (c RetransCause) String() string {
	if c < numCauses {
		return causeNames[c]
	}
	return "RetransCause(" + strconv.Itoa(int(c)) + ")"
}

// KernelSource says where a run's account of the kernel came from.
type KernelSource string

// The kernel's accounts: its own events, traced with eBPF (lab/ktrace), or
// samples of both ends' sockets taken by INET_DIAG after segments
// (lab/sockstat), where tracing needs what the run lacks (root, BTF).
const (
	KernelTraced  KernelSource = "ktrace"
	KernelSampled KernelSource = "inet_diag"
)

// KernelEvent is one thing the kernel did at one end of a connection, on
// the capture's clock, tied to the frame it is about: the segment that
// made a socket change state or that it sent as it did, a segment sent
// again, a RST sent or taken in, a dropped packet. A drop of a packet the
// capture did not see stands alone (Frame 0).
type KernelEvent struct {
	// Frame is the frame the event belongs to (capture.Segment.Frame), or
	// 0 when it stands alone.
	Frame int
	// At is when the kernel did it, from the capture's first frame.
	At   time.Duration
	Side Side
	Kind KernelKind
	// Socket tells the events of one socket apart (its cookie); 0 when
	// the event has no socket (a drop).
	Socket uint64
	// From and To are a state change's states. A socket that becomes a
	// time-wait socket reads FIN_WAIT_2 (or CLOSING) -> TIME_WAIT here,
	// though the kernel's tracepoint says CLOSED: its timewait socket
	// takes over without a tracepoint of its own. From is also the
	// socket's state when it takes a RST in.
	From, To capture.State
	// Cause is why a segment was sent again.
	Cause RetransCause
	// Reason is the kernel's name for why a packet was dropped or a RST
	// sent, such as "NO_SOCKET" (empty when the kernel gives none).
	Reason string
}

// kernelEventJSON is a KernelEvent as result.json keeps it: names, not
// numbers.
type kernelEventJSON struct {
	Frame  int     `json:"frame"`
	AtMs   float64 `json:"at_ms"`
	Side   string  `json:"side"`
	Kind   string  `json:"kind"`
	Socket uint64  `json:"socket,omitempty"`
	From   string  `json:"from,omitempty"`
	To     string  `json:"to,omitempty"`
	Cause  string  `json:"cause,omitempty"`
	Reason string  `json:"reason,omitempty"`
}

// MarshalJSON writes the event with the names of its kind, states and
// cause.
func (e KernelEvent) MarshalJSON() ([]byte, error) {
	j := kernelEventJSON{Frame: e.Frame, AtMs: float64(e.At.Microseconds()) / 1000, Side: e.Side.String(),
		Kind: e.Kind.String(), Socket: e.Socket, Reason: e.Reason}
	if e.Kind == KernelState || e.Kind == KernelResetReceived {
		j.From = e.From.String()
	}
	if e.Kind == KernelState {
		j.To = e.To.String()
	}
	if e.Kind == KernelRetransmit || e.Kind == KernelRetransmitSYNACK {
		j.Cause = e.Cause.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote; names it does not know are
// an error.
func (e *KernelEvent) UnmarshalJSON(b []byte) error {
	var j kernelEventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = KernelEvent{Frame: j.Frame, At: time.Duration(j.AtMs * float64(time.Millisecond)), Socket: j.Socket, Reason: j.Reason}
	var ok bool
	switch j.Side {
	case "client":
	case "server":
		e.Side = SideServer
	default:
		return fmt.Errorf("kernel event: side %q: want client or server", j.Side)
	}
	if e.Kind, ok = nameOf[KernelKind](j.Kind, 1, 16); !ok {
		return fmt.Errorf("kernel event: unknown kind %q", j.Kind)
	}
	if j.From != "" {
		if e.From, ok = nameOf[capture.State](j.From, 0, 16); !ok {
			return fmt.Errorf("kernel event: unknown state %q", j.From)
		}
	}
	if j.To != "" {
		if e.To, ok = nameOf[capture.State](j.To, 0, 16); !ok {
			return fmt.Errorf("kernel event: unknown state %q", j.To)
		}
	}
	if j.Cause != "" {
		if e.Cause, ok = nameOf[RetransCause](j.Cause, 0, 16); !ok {
			return fmt.Errorf("kernel event: unknown cause %q", j.Cause)
		}
	}
	return nil
}

// nameOf returns the value from lo to hi whose String is name.
func nameOf[T interface {
	~uint8
	String() string
}](name string, lo, hi T) (T, bool) {
	for v := lo; v <= hi; v++ {
		if v.String() == name {
			return v, true
		}
	}
	return 0, false
}

// kernelStrings are the words of the kernel's lines in one language.
type kernelStrings struct {
	side                     [2]string
	at                       string // " at +%.1f ms"
	state                    string // side, from, to
	retransmit, synack       string // side; then the cause
	cause                    string // " (%s)"
	resetSent, resetReceived string // side; resetReceived: and its state
	drop                     string // side's, what; then the reason
	sampled                  string // a sample's text
	causes                   map[RetransCause]string
	reasons                  map[string]string
	alone                    string // the heading of drops tied to no frame
}

// kernelTexts holds kernelStrings by language.
var kernelTexts = []kernelStrings{
	expect.English: {
		side:          [2]string{"client", "server"},
		at:            " at %+.1f ms",
		state:         "kernel: %s %s -> %s",
		retransmit:    "kernel: %s sent this segment again",
		synack:        "kernel: %s sent its SYN-ACK again",
		cause:         ": %s",
		resetSent:     "kernel: %s sent this RST",
		resetReceived: "kernel: %s took this RST in, in %s",
		drop:          "dropped by the %s's kernel: %s",
		sampled:       "kernel (sampled after the segment): %s",
		alone:         "## Packets the kernel dropped that the capture did not show\n\n",
		causes: map[RetransCause]string{
			CauseRTO:             "retransmission timeout (RTO)",
			CauseFastRetransmit:  "fast retransmit",
			CauseTailLossProbe:   "tail loss probe",
			CauseZeroWindowProbe: "zero-window probe",
			CauseSYNACK:          "SYN-ACK timeout",
		},
		reasons: map[string]string{
			"NO_SOCKET":                "no socket for it",
			"NETFILTER_DROP":           "a firewall rule",
			"TCP_LISTEN_OVERFLOW":      "accept queue full",
			"TCP_INVALID_SEQUENCE":     "sequence number outside the window",
			"TCP_OLD_SEQUENCE":         "old sequence number",
			"TCP_OLD_DATA":             "data already received",
			"TCP_ZEROWINDOW":           "the receive window is zero",
			"TCP_OVERWINDOW":           "data beyond the receive window",
			"TCP_CLOSE":                "the socket is closed",
			"TCP_RESET":                "the connection was reset",
			"TCP_FLAGS":                "flags not allowed in this state",
			"TCP_OLD_ACK":              "an old ACK",
			"TCP_TOO_OLD_ACK":          "an ACK too old",
			"TCP_ACK_UNSENT_DATA":      "an ACK of data not sent yet",
			"TCP_INVALID_ACK_SEQUENCE": "an ACK number outside the window",
			"TCP_RFC7323_PAWS":         "an old timestamp (PAWS)",
			"TCP_OFOMERGE":             "merged into the out-of-order queue",
			"TCP_ABORT_ON_DATA":        "data after the socket was closed",
			"PROTO_MEM":                "out of TCP memory",
			"SOCKET_RCVBUFF":           "the receive buffer is full",
			"QUEUE_PURGE":              "left in a queue when the socket closed",
			"NOT_SPECIFIED":            "no reason given",
			"TCP_TIMEWAIT_SOCKET":      "a time-wait socket",
			"INVALID_SYN":              "an invalid SYN",
			"TCP_ABORT_ON_CLOSE":       "closed with unread data",
			"TCP_ABORT_ON_LINGER":      "closed with SO_LINGER 0",
			"TCP_STATE":                "the socket's state",
		},
	},
	expect.Chinese: {
		side:          [2]string{"客户端", "服务端"},
		at:            ", 在 %+.1f ms",
		state:         "内核: %s %s -> %s",
		retransmit:    "内核: %s重传了这个包",
		synack:        "内核: %s重传了SYN-ACK",
		cause:         ": %s",
		resetSent:     "内核: %s发送了这个RST",
		resetReceived: "内核: %s接受了这个RST, 当时是 %s",
		drop:          "被%s内核丢弃: %s",
		sampled:       "内核 (在这个包之后采样): %s",
		alone:         "## 内核丢弃了、抓包里没有的包\n\n",
		causes: map[RetransCause]string{
			CauseRTO:             "超时重传 (RTO)",
			CauseFastRetransmit:  "快速重传",
			CauseTailLossProbe:   "尾部丢失探测",
			CauseZeroWindowProbe: "零窗口探测",
			CauseSYNACK:          "SYN-ACK超时",
		},
		reasons: map[string]string{
			"NO_SOCKET":                "没有对应的socket",
			"NETFILTER_DROP":           "防火墙规则",
			"TCP_LISTEN_OVERFLOW":      "全连接队列已满",
			"TCP_INVALID_SEQUENCE":     "序号不在窗口内",
			"TCP_OLD_SEQUENCE":         "旧的序号",
			"TCP_OLD_DATA":             "数据已经收到过",
			"TCP_ZEROWINDOW":           "接收窗口为零",
			"TCP_OVERWINDOW":           "数据超出接收窗口",
			"TCP_CLOSE":                "socket已关闭",
			"TCP_RESET":                "连接已被重置",
			"TCP_FLAGS":                "这个状态不允许这些标志",
			"TCP_OLD_ACK":              "旧的ACK",
			"TCP_TOO_OLD_ACK":          "太旧的ACK",
			"TCP_ACK_UNSENT_DATA":      "确认了还没发送的数据",
			"TCP_INVALID_ACK_SEQUENCE": "确认号不在窗口内",
			"TCP_RFC7323_PAWS":         "旧的时间戳 (PAWS)",
			"TCP_OFOMERGE":             "并入了乱序队列",
			"TCP_ABORT_ON_DATA":        "socket关闭后又来数据",
			"PROTO_MEM":                "TCP内存不足",
			"SOCKET_RCVBUFF":           "接收缓冲区已满",
			"QUEUE_PURGE":              "socket关闭时还在队列里",
			"NOT_SPECIFIED":            "没有给出原因",
			"TCP_TIMEWAIT_SOCKET":      "TIME_WAIT的socket",
			"INVALID_SYN":              "无效的SYN",
			"TCP_ABORT_ON_CLOSE":       "关闭时还有未读数据",
			"TCP_ABORT_ON_LINGER":      "用SO_LINGER 0关闭",
			"TCP_STATE":                "socket的状态",
		},
	},
}

// reason says a kernel reason in words, with the kernel's own name.
func (t *kernelStrings) reason(name string) string {
	if w, ok := t.reasons[name]; ok {
		return w + " (" + name + ")"
	}
	return name
}

// KernelText says in one line, in lang, what the kernel did: "kernel:
// client FIN_WAIT_1 -> FIN_WAIT_2 at +41.2 ms", "dropped by the server's
// kernel: accept queue full (TCP_LISTEN_OVERFLOW) at +3.0 ms".
func KernelText(e *KernelEvent, lang expect.Lang) string {
	t := byLang(kernelTexts, lang)
	side := t.side[e.Side&1]
	var s string
	switch e.Kind {
	case KernelState:
		s = fmt.Sprintf(t.state, side, e.From, e.To)
	case KernelRetransmit, KernelRetransmitSYNACK:
		s = fmt.Sprintf(t.retransmit, side)
		if e.Kind == KernelRetransmitSYNACK {
			s = fmt.Sprintf(t.synack, side)
		}
		if c, ok := t.causes[e.Cause]; ok {
			s += fmt.Sprintf(t.cause, c)
		}
	case KernelResetSent:
		s = fmt.Sprintf(t.resetSent, side)
		if e.Reason != "" {
			s += fmt.Sprintf(t.cause, t.reason(e.Reason))
		}
	case KernelResetReceived:
		s = fmt.Sprintf(t.resetReceived, side, e.From)
	case KernelDrop:
		s = fmt.Sprintf(t.drop, side, t.reason(e.Reason))
	default:
		s = "kernel: " + side + " " + e.Kind.String()
	}
	ms := math.Round(float64(e.At.Microseconds())/100) / 10
	if ms == 0 {
		ms = 0 // not -0: a state set just before the first frame went out
	}
	return s + fmt.Sprintf(t.at, ms)
}

// kernelLines returns the kernel's lines under the packet at index j of
// run.Packets: what it did (lines) and what it dropped (drops, each a row
// of its own); with samples in place of events, the sample's text.
func kernelLines(run *Run, j int) (lines, drops []string) {
	for k := range run.KernelEvents[j] {
		e := &run.KernelEvents[j][k]
		if e.Kind == KernelDrop {
			drops = append(drops, KernelText(e, run.Lang))
		} else {
			lines = append(lines, KernelText(e, run.Lang))
		}
	}
	if s := run.Kernel[j]; s != "" {
		lines = append(lines, fmt.Sprintf(byLang(kernelTexts, run.Lang).sampled, s))
	}
	return lines, drops
}

// kernelAlone returns the lines of the drops tied to no frame.
func kernelAlone(run *Run) []string {
	var out []string
	for k := range run.KernelAlone {
		out = append(out, KernelText(&run.KernelAlone[k], run.Lang))
	}
	return out
}

// withKernelStates returns run.Packets with each side's state taken from
// the kernel where it told one (KernelStates); without kernel events, it
// returns run.Packets itself.
func withKernelStates(run *Run) []capture.Packet {
	return kernelStates(run.Packets, run.KernelEvents)
}

// KernelStates returns pkts with each side's state, as their annotation
// holds it, taken from the kernel where it told one: the state its last
// state change tied to this segment or an earlier one of the same
// connection entered. The wire's inference stays where the kernel has
// said nothing yet (the server's LISTEN, before its child socket exists).
// events are result.json's, tied to pkts by frame; without any, it
// returns pkts itself.
func KernelStates(pkts []capture.Packet, events []KernelEvent) []capture.Packet {
	index := map[int]int{}
	for i := range pkts {
		index[pkts[i].Segment.Frame] = i
	}
	byIndex := map[int][]KernelEvent{}
	for _, e := range events {
		if j, ok := index[e.Frame]; ok && e.Frame != 0 {
			byIndex[j] = append(byIndex[j], e)
		}
	}
	return kernelStates(pkts, byIndex)
}

// kernelStates is KernelStates with the events by index of pkts.
func kernelStates(packets []capture.Packet, events map[int][]KernelEvent) []capture.Packet {
	if len(events) == 0 {
		return packets
	}
	pkts := make([]capture.Packet, len(packets))
	copy(pkts, packets)
	known := map[int]*[2]capture.State{} // by stream: the client's, the server's
	for j := range pkts {
		a := &pkts[j].Annotation
		if !pkts[j].TCP {
			continue
		}
		st := known[a.Stream]
		if st == nil {
			st = &[2]capture.State{}
			known[a.Stream] = st
		}
		for _, e := range events[j] {
			if e.Kind == KernelState {
				st[e.Side&1] = e.To
			}
		}
		if st[SideClient] != capture.Unknown {
			a.Client = st[SideClient]
		}
		if st[SideServer] != capture.Unknown {
			a.Server = st[SideServer]
		}
	}
	return pkts
}
