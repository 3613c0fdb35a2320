package ktrace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// Kind says which tracepoint reported an Event.
type Kind uint8

// The kinds of Event, numbered as ktrace.c's enum kind.
const (
	// StateChange is a socket's move from OldState to NewState
	// (sock:inet_sock_set_state).
	StateChange Kind = iota + 1
	// Retransmit is a segment sent again (tcp:tcp_retransmit_skb); Cause
	// says why.
	Retransmit
	// RetransmitSYNACK is a listener's SYN-ACK sent again
	// (tcp:tcp_retransmit_synack).
	RetransmitSYNACK
	// CongestionChange is a move of the socket's congestion state from
	// OldCong to NewCong (tcp:tcp_cong_state_set).
	CongestionChange
	// ResetSent is a RST the kernel sent (tcp:tcp_send_reset), with its
	// Reason.
	ResetSent
	// ResetReceived is a RST a socket accepted (tcp:tcp_receive_reset).
	ResetReceived
	// Drop is a TCP packet the kernel freed without delivering it
	// (skb:kfree_skb), with its Reason.
	Drop
	// Path is a step of a followed segment's path through the kernel
	// (Probe says which), from the functions that make it (Config.Follow).
	Path
	numKinds
)

var kindNames = [numKinds]string{"", "state", "retransmit", "retransmit-synack", "congestion", "reset-sent", "reset-received", "drop", "path"}

// String returns the kind's name, such as "retransmit".
func (k Kind) String() string {
	if k > 0 && k < numKinds {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// CongState is a socket's congestion state, icsk_ca_state (enum
// tcp_ca_state, a user-space ABI in linux/tcp.h).
type CongState uint8

// The congestion states, numbered as the kernel numbers them.
const (
	CongOpen CongState = iota
	CongDisorder
	CongCWR
	CongRecovery
	CongLoss
	numCongStates
)

var congNames = [numCongStates]string{"Open", "Disorder", "CWR", "Recovery", "Loss"}

// String returns the state's name as the kernel's TCP_CA_ constants have
// it: "Open", "Recovery", "Loss".
func (c CongState) String() string {
	if c < numCongStates {
		return congNames[c]
	}
	return "CongState(" + strconv.Itoa(int(c)) + ")"
}

// Timer is the socket's pending retransmission timer, icsk_pending.
type Timer uint8

// The timers, numbered as the ICSK_TIME_ constants of
// include/net/inet_connection_sock.h (defines, so not in BTF; unchanged
// since they were written).
const (
	NoTimer       Timer = 0
	TimerRetrans  Timer = 1 // ICSK_TIME_RETRANS: the retransmission timeout
	TimerDelAck   Timer = 2 // ICSK_TIME_DACK
	TimerProbe0   Timer = 3 // ICSK_TIME_PROBE0: zero-window probe
	TimerLossProb Timer = 5 // ICSK_TIME_LOSS_PROBE: tail loss probe
	TimerReorder  Timer = 6 // ICSK_TIME_REO_TIMEOUT: RACK reordering
)

// String returns the timer's name, such as "RETRANS".
func (t Timer) String() string {
	switch t {
	case NoTimer:
		return "none"
	case TimerRetrans:
		return "RETRANS"
	case TimerDelAck:
		return "DACK"
	case TimerProbe0:
		return "PROBE0"
	case TimerLossProb:
		return "LOSS_PROBE"
	case TimerReorder:
		return "REO_TIMEOUT"
	}
	return "Timer(" + strconv.Itoa(int(t)) + ")"
}

// RetransCause says why the kernel sent a segment again, as far as the
// socket's state at that moment tells.
type RetransCause uint8

// The causes of a retransmission.
const (
	// CauseUnknown: the socket's state does not tell.
	CauseUnknown RetransCause = iota
	// CauseRTO: the retransmission timer fired (the socket is in Loss).
	CauseRTO
	// CauseFastRetransmit: duplicate ACKs or SACKs showed the loss (the
	// socket is in Recovery).
	CauseFastRetransmit
	// CauseTailLossProbe: the loss probe timer sent the last segment again.
	CauseTailLossProbe
	// CauseZeroWindowProbe: the zero-window probe timer was pending.
	CauseZeroWindowProbe
	// CauseSYNACK: a listener's SYN-ACK timer (RetransmitSYNACK).
	CauseSYNACK
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

// cause tells the cause of a retransmission from the congestion state and
// the pending timer at the moment the segment went out again.
func cause(ca CongState, pending Timer) RetransCause {
	switch {
	case ca == CongLoss:
		return CauseRTO
	case ca == CongRecovery:
		return CauseFastRetransmit
	case pending == TimerLossProb:
		return CauseTailLossProbe
	case pending == TimerProbe0:
		return CauseZeroWindowProbe
	}
	return CauseUnknown
}

// Event is one thing the kernel did to a traced connection.
type Event struct {
	// Time is when the tracepoint ran, in wall-clock time (the boot-time
	// clock shifted by one offset measured at Open).
	Time time.Time
	Kind Kind
	// NetNS is the inode of the network namespace it happened in.
	NetNS uint64
	// Cookie is the socket's cookie (SO_COOKIE, and sock_diag's
	// idiag_cookie), the same for all the events of one socket; 0 for
	// events without a full socket (Drop, RetransmitSYNACK, a ResetSent
	// for no socket).
	Cookie uint64
	// Src and Dst are the socket's own and its peer's address for the
	// socket's events; a dropped packet's sender and receiver; a sent
	// RST's sender and receiver.
	Src, Dst netip.AddrPort
	// OldState and NewState are a StateChange's; OldState is also the
	// socket's state on ResetSent (when it has one) and ResetReceived,
	// NewState the socket's state on Retransmit.
	OldState, NewState capture.State
	// Cong is the socket's congestion state on Retransmit, and the state
	// it leaves on CongestionChange; NewCong the state it enters.
	Cong, NewCong CongState
	// Pending is the socket's pending timer on Retransmit.
	Pending Timer
	// HaveSeq says that Seq, End, Ack and Flags are known.
	HaveSeq bool
	// Seq is the first sequence number of the segment: retransmitted,
	// dropped, or sent as RST (0 when the RST answers a segment without
	// ACK). End is the sequence number after a retransmitted segment
	// (its SYN and FIN count). Ack is a dropped segment's ACK number, or
	// the RST's when it answers a segment without ACK.
	Seq, End, Ack uint32
	// Len is a dropped segment's payload length, or that of the segment
	// that drew a RST.
	Len int
	// Flags are the segment's TCP flags.
	Flags capture.Flags
	// Cause is why a Retransmit or RetransmitSYNACK was sent.
	Cause RetransCause
	// Err is the error of a Retransmit that the kernel attempted and did
	// not send: since Linux 6.13 the tracepoint runs for those too, such
	// as EBUSY when the original copy is still in a queue of this host
	// (a qdisc, a device's backlog). Such an attempt has no frame. 0 for
	// a segment sent again.
	Err syscall.Errno
	// Reason is the kernel's name of a Drop's drop reason (enum
	// skb_drop_reason without its SKB_DROP_REASON_ prefix, such as
	// "NETFILTER_DROP") or a ResetSent's reset reason (enum sk_rst_reason
	// without SK_RST_REASON_, such as "NO_SOCKET"; empty before Linux
	// 6.10, which gives none).
	Reason string

	// Probe is the hook that told a Path event. Src and Dst of a Path
	// event are the segment's sender and receiver at every step, the
	// receiver's too (a listener's accept queue has only its own address,
	// Src); Seq, Ack, Flags and Len are the segment's, read from its
	// headers, at the steps that follow its sk_buff; a write tells the
	// sequence number of the next byte it queues (Seq), the receive
	// buffer the one after the bytes it holds, a read the first byte it
	// returns and how many (Len).
	Probe Probe
	// Skb is the address of the sk_buff a Path event's step handled: the
	// steps of one transmission of a segment share it from IP on.
	Skb uint64
	// Queue names what a Path event's step put the segment in, or where:
	// the queue discipline ("noqueue", "fq_codel"), the device ("lo",
	// "eth0"), the socket's buffers and queues ("send buffer", "SYN
	// queue"). QueueLen is that queue's length before it: packets for a
	// queue discipline, bytes for a socket's buffers, connections for a
	// listener's queues.
	Queue    string
	QueueLen int
}

// String returns the event in one line, for logs and tests.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s %s -> %s", e.Time.Format("15:04:05.000000"), e.Kind, e.Src, e.Dst)
	switch e.Kind {
	case StateChange:
		s += " " + e.OldState.String() + " -> " + e.NewState.String()
	case CongestionChange:
		s += " " + e.Cong.String() + " -> " + e.NewCong.String()
	case Retransmit, RetransmitSYNACK:
		s += fmt.Sprintf(" [%s] seq %d-%d cause %s (ca %s, timer %s)", e.Flags, e.Seq, e.End, e.Cause, e.Cong, e.Pending)
	case ResetSent, Drop:
		if e.HaveSeq {
			s += fmt.Sprintf(" [%s] seq %d ack %d", e.Flags, e.Seq, e.Ack)
		}
		s += " reason " + e.Reason
	case Path:
		s += fmt.Sprintf(" %s (%s) [%s] seq %d len %d skb %#x", e.Probe.Step(), e.Probe.Func(), e.Flags, e.Seq, e.Len, e.Skb)
		if e.Queue != "" {
			s += fmt.Sprintf(" %s %d", e.Queue, e.QueueLen)
		}
	}
	return s
}

// kernelStates maps the kernel's TCP states (include/net/tcp_states.h,
// TCP_ESTABLISHED = 1 ...; a user-space ABI) to capture's.
var kernelStates = [...]capture.State{
	1:  capture.Established,
	2:  capture.SynSent,
	3:  capture.SynReceived,
	4:  capture.FinWait1,
	5:  capture.FinWait2,
	6:  capture.TimeWait,
	7:  capture.Closed,
	8:  capture.CloseWait,
	9:  capture.LastACK,
	10: capture.Listen,
	11: capture.Closing,
	12: capture.SynReceived, // TCP_NEW_SYN_RECV: a request sock
}

func kernelState(n uint8) capture.State {
	if int(n) < len(kernelStates) {
		return kernelStates[n]
	}
	return capture.Unknown
}

// The layout of struct event in ktrace.c; TestEventLayout checks these
// offsets against bpf2go's ktraceEvent.
const (
	offBootNs   = 0
	offSaddr    = 8
	offDaddr    = 24
	offSport    = 40
	offDport    = 42
	offFamily   = 44
	offKind     = 46
	offFlags    = 47
	offOldState = 48
	offNewState = 49
	offCaState  = 50
	offPending  = 51
	offTcpFlags = 52
	offPayload  = 54
	offSeq      = 56
	offEndSeq   = 60
	offReason   = 64
	offNetns    = 68
	offCookie   = 72
	offSkb      = 80
	offQlen     = 88
	offProbe    = 92
	offName     = 96
	nameSize    = 16
	eventSize   = 112
)

// noReason is ktrace.c's NO_REASON: a kernel without reset reasons.
const noReason = 0xffffffff

// Flags of struct event.
const (
	evHaveSeq  = 1
	evHaveSock = 2
)

const (
	afInet  = 2
	afInet6 = 10
)

// names turns the kernel's numbers of drop and reset reasons into names.
type names struct {
	drop, reset map[uint32]string
}

func (n *names) name(m map[uint32]string, v uint32) string {
	if s, ok := m[v]; ok {
		return s
	}
	return strconv.FormatUint(uint64(v), 10)
}

// decode turns one ring-buffer record into an Event; bootOffset is wall
// time minus boot time.
func decode(b []byte, bootOffset time.Duration, n *names, e *Event) error {
	if len(b) < eventSize {
		return fmt.Errorf("ktrace: record of %d bytes, want %d", len(b), eventSize)
	}
	ne := binary.NativeEndian
	*e = Event{
		Time:   time.Unix(0, 0).Add(time.Duration(ne.Uint64(b[offBootNs:])) + bootOffset),
		Kind:   Kind(b[offKind]),
		NetNS:  uint64(ne.Uint32(b[offNetns:])),
		Cookie: ne.Uint64(b[offCookie:]),
	}
	sport, dport := ne.Uint16(b[offSport:]), ne.Uint16(b[offDport:])
	switch ne.Uint16(b[offFamily:]) {
	case afInet:
		e.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[offSaddr:offSaddr+4])), sport)
		e.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[offDaddr:offDaddr+4])), dport)
	case afInet6:
		e.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[offSaddr:offSaddr+16])).Unmap(), sport)
		e.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[offDaddr:offDaddr+16])).Unmap(), dport)
	}
	flags := b[offFlags]
	seq, end := ne.Uint32(b[offSeq:]), ne.Uint32(b[offEndSeq:])
	tcpFlags := capture.Flags(ne.Uint16(b[offTcpFlags:]))
	reason := ne.Uint32(b[offReason:])
	payload := int(ne.Uint16(b[offPayload:]))
	if flags&evHaveSock != 0 {
		e.Cong = CongState(b[offCaState])
		e.Pending = Timer(b[offPending])
	}
	e.HaveSeq = flags&evHaveSeq != 0
	if e.HaveSeq {
		e.Flags = tcpFlags
	}
	switch e.Kind {
	case StateChange:
		e.OldState = kernelState(b[offOldState])
		e.NewState = kernelState(b[offNewState])
	case Retransmit:
		e.NewState = kernelState(b[offNewState])
		e.Seq, e.End = seq, end
		e.Cause = cause(e.Cong, e.Pending)
		if err := int32(reason); err < 0 {
			e.Err = syscall.Errno(-err)
		}
	case RetransmitSYNACK:
		e.Seq, e.End = seq, end
		e.Cause = CauseSYNACK
	case CongestionChange:
		e.NewCong = CongState(b[offNewState])
	case ResetReceived:
		e.OldState = kernelState(b[offOldState])
	case ResetSent:
		e.OldState = kernelState(b[offOldState])
		if reason != noReason {
			e.Reason = n.name(n.reset, reason)
		}
		e.Len = payload
		if e.HaveSeq {
			// seq and end are the seq and ack of the segment that drew
			// the RST (RFC 9293 3.10.7.1): with an ACK, the RST takes
			// its sequence number from that ACK; without, it has
			// sequence number 0 and acknowledges the segment.
			e.Flags = capture.RST
			if tcpFlags.Has(capture.ACK) {
				e.Seq = end
			} else {
				e.Flags |= capture.ACK
				e.Ack = seq + uint32(payload)
				if tcpFlags.Has(capture.SYN) {
					e.Ack++
				}
				if tcpFlags.Has(capture.FIN) {
					e.Ack++
				}
			}
		}
	case Drop:
		e.Reason = n.name(n.drop, reason)
		e.Seq, e.Ack, e.Len = seq, end, payload
	case Path:
		e.Probe = Probe(b[offProbe])
		e.Skb = ne.Uint64(b[offSkb:])
		e.QueueLen = int(ne.Uint32(b[offQlen:]))
		name := b[offName : offName+nameSize]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		e.Queue = string(name)
		e.Seq, e.Len = seq, payload
		switch e.Probe.Step() {
		case StepSendmsg, StepReceiveBuffer, StepAcceptQueue:
			e.Len = 0
		case StepRead:
			e.Len = int(reason)
		default:
			e.Ack = end // read from the segment's header
		}
	}
	return nil
}
