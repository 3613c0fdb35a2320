package ktrace

import (
	"strconv"

	"github.com/cilium/ebpf/link"
)

// Step is a step of a segment's path through the kernel, as the hook that
// told it names it (a Path event's Probe).
type Step uint8

// The steps, in the order a segment takes them: down the sender's stack,
// then up the receiver's.
const (
	// StepSendmsg: the application's write puts its bytes in the socket's
	// send buffer, the sk_buffs of TCP's write queue
	// (tcp:tcp_sendmsg_locked).
	StepSendmsg Step = iota + 1
	// StepTCPOut: TCP builds the segment on a clone of its sk_buff and
	// stamps it with its departure time (skb->tstamp, read at IP's hook:
	// TCP itself has no tracepoint there).
	StepTCPOut
	// StepIPOut: IP sends it out, its header built (netfilter's
	// LOCAL_OUT hook, in __ip_local_out).
	StepIPOut
	// StepQdisc: the device layer takes it to the device's queue
	// discipline, the send queue (net:net_dev_queue, in
	// __dev_queue_xmit).
	StepQdisc
	// StepDriver: the driver is handed it (net:net_dev_start_xmit).
	StepDriver
	// StepBacklog: the receiving side puts it in the CPU's backlog queue
	// (net:netif_rx), where a NIC's driver would have taken it from its
	// ring buffer.
	StepBacklog
	// StepSoftirq: the network softirq takes it from the backlog
	// (net:netif_receive_skb).
	StepSoftirq
	// StepIPIn: IP takes it in (netfilter's PRE_ROUTING hook, in ip_rcv).
	StepIPIn
	// StepTCPIn: TCP takes it in on its established socket
	// (tcp:tcp_probe, in tcp_rcv_established).
	StepTCPIn
	// StepReceiveBuffer: a connection's data is in its receive buffer and
	// its reader is woken (sock:sk_data_ready).
	StepReceiveBuffer
	// StepAcceptQueue: a listener's accept queue has a new connection and
	// its accept() is woken (sock:sk_data_ready of a listener).
	StepAcceptQueue
	// StepRead: the application's read returns the bytes
	// (sock:sock_recv_length).
	StepRead
	numSteps
)

var stepNames = [numSteps]string{"", "sendmsg", "tcp-out", "ip-out", "qdisc", "driver", "backlog", "softirq",
	"ip-in", "tcp-in", "receive-buffer", "accept-queue", "read"}

// String returns the step's name, such as "tcp-out".
func (s Step) String() string {
	if s > 0 && s < numSteps {
		return stepNames[s]
	}
	return "Step(" + strconv.Itoa(int(s)) + ")"
}

// Probe is the hook that told a Path event.
type Probe uint8

// probe is one of ktrace.c's path programs: the program, what it hooks
// (a tracepoint, a netfilter hook, or neither: the segment's time stamp
// read at another's), the kernel function that makes the step, and the
// step.
type probe struct {
	prog, tracepoint string
	nf               link.NetfilterInetHook
	fn               string
	step             Step
}

// probes are ktrace.c's path programs, numbered as its enum probe.
var probes = []probe{
	{prog: ktraceProgPathSendmsg, tracepoint: "tcp_sendmsg_locked", fn: "tcp_sendmsg_locked", step: StepSendmsg},
	{fn: "__tcp_transmit_skb", step: StepTCPOut},
	{prog: ktraceProgPathLocalOut, nf: link.NetfilterInetLocalOut, fn: "__ip_local_out", step: StepIPOut},
	{prog: ktraceProgPathDevQueue, tracepoint: "net_dev_queue", fn: "__dev_queue_xmit", step: StepQdisc},
	{prog: ktraceProgPathStartXmit, tracepoint: "net_dev_start_xmit", fn: "ndo_start_xmit", step: StepDriver},
	{prog: ktraceProgPathNetifRx, tracepoint: "netif_rx", fn: "netif_rx", step: StepBacklog},
	{prog: ktraceProgPathReceiveSkb, tracepoint: "netif_receive_skb", fn: "__netif_receive_skb", step: StepSoftirq},
	{prog: ktraceProgPathPreRouting, nf: link.NetfilterInetPreRouting, fn: "ip_rcv", step: StepIPIn},
	{prog: ktraceProgPathTcpProbe, tracepoint: "tcp_probe", fn: "tcp_rcv_established", step: StepTCPIn},
	{prog: ktraceProgPathDataReady, tracepoint: "sk_data_ready", fn: "tcp_data_ready", step: StepReceiveBuffer},
	{fn: "inet_csk_reqsk_queue_add", step: StepAcceptQueue}, // told by path_data_ready of a listener
	{prog: ktraceProgPathRecvLength, tracepoint: "sock_recv_length", fn: "tcp_recvmsg", step: StepRead},
}

// Func returns the name of the kernel function that makes the step, such
// as "ip_rcv".
func (p Probe) Func() string {
	if int(p) < len(probes) {
		return probes[p].fn
	}
	return "Probe(" + strconv.Itoa(int(p)) + ")"
}

// Step returns the step the probe tells.
func (p Probe) Step() Step {
	if int(p) < len(probes) {
		return probes[p].step
	}
	return 0
}

// ProbeOf returns the probe of the step st, for tests.
func ProbeOf(st Step) (Probe, bool) {
	for i, p := range probes {
		if p.step == st {
			return Probe(i), true
		}
	}
	return 0, false
}

// DefaultFollow is how many segments a Tracer follows through the kernel
// when asked to follow some (Config.Follow): a scenario's story is told
// in tens of segments; a bulk transfer's first ones are followed, and its
// thousands of others cost a map lookup in each probe.
const DefaultFollow = 256
