package report

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tcplab/tcplab/lab/expect"
)

// PathHalf is the half of a segment's path a step is in: down the
// sender's stack or up the receiver's, as the blog post tells them.
type PathHalf uint8

// The halves.
const (
	HalfSend PathHalf = iota + 1
	HalfReceive
)

// PathStepKind is a step of a segment's path through the kernel, as the
// blog post numbers them.
type PathStepKind uint8

// The steps, in the order of the path; Num gives the post's numbers.
// Some are only ever absent on the lab's devices (loopback, veth, TUN):
// the NIC's rings, DMA, the interrupt.
const (
	// PathConnect: the application's connect() (send 2, for a SYN).
	PathConnect PathStepKind = iota + 1
	// PathSendBuffer: the application's write puts the bytes in the
	// socket's send buffer (send 2).
	PathSendBuffer
	// PathTCPOut: TCP builds the segment and its sk_buff (send 3).
	PathTCPOut
	// PathIPOut: IP (send 4).
	PathIPOut
	// PathSendQueue: the device's send queue, its queue discipline
	// (send 5).
	PathSendQueue
	// PathDriver: the device's driver takes it (send 5).
	PathDriver
	// PathRingBuffer: the NIC's transmit ring (send 6).
	PathRingBuffer
	// PathDMA: DMA onto the wire (send 7).
	PathDMA
	// PathMAC: the NIC checks the destination MAC address (receive 1).
	PathMAC
	// PathRxRing: the NIC's receive ring (receive 2).
	PathRxRing
	// PathBacklog: the CPU's backlog queue, which stands in for the
	// receive ring on the lab's devices (receive 2).
	PathBacklog
	// PathInterrupt: the NIC's interrupt (receive 3).
	PathInterrupt
	// PathSoftirq: the network softirq takes the packet from the backlog
	// (receive 3).
	PathSoftirq
	// PathIPIn: IP (receive 4).
	PathIPIn
	// PathTCPIn: TCP (receive 4).
	PathTCPIn
	// PathSYNQueue: a listener's SYN queue (receive 5, for a SYN).
	PathSYNQueue
	// PathAcceptQueue: a listener's accept queue (receive 5, for a SYN,
	// once the handshake's ACK came).
	PathAcceptQueue
	// PathReceiveBuffer: the socket's receive buffer (receive 6).
	PathReceiveBuffer
	// PathRead: the application's read (receive 6).
	PathRead
	numPathSteps
)

var pathStepNames = [numPathSteps]string{"", "connect", "send-buffer", "tcp", "ip", "send-queue", "driver", "ring-buffer", "dma",
	"mac", "rx-ring", "backlog", "interrupt", "softirq", "ip-in", "tcp-in", "syn-queue", "accept-queue", "receive-buffer", "read"}

var pathStepNums = [numPathSteps]int{0, 2, 2, 3, 4, 5, 5, 6, 7, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6}

// String returns the step's name, as result.json has it: "send-buffer",
// "tcp", "ip-in".
func (k PathStepKind) String() string {
	if k > 0 && k < numPathSteps {
		return pathStepNames[k]
	}
	return "PathStepKind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText writes the step's name.
func (k PathStepKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a step's name.
func (k *PathStepKind) UnmarshalText(b []byte) error {
	v, ok := nameOf[PathStepKind](string(b), 1, numPathSteps-1)
	if !ok {
		return fmt.Errorf("path step: unknown %q", b)
	}
	*k = v
	return nil
}

// Half returns the half of the path the step is in.
func (k PathStepKind) Half() PathHalf {
	if k >= PathMAC {
		return HalfReceive
	}
	return HalfSend
}

// Num returns the step's number in the blog post's account of its half.
func (k PathStepKind) Num() int {
	if k < numPathSteps {
		return pathStepNums[k]
	}
	return 0
}

// PathStep is one step a segment took, told by the kernel.
type PathStep struct {
	Kind PathStepKind `json:"step"`
	// At is when, from the capture's first frame.
	At time.Duration `json:"-"`
	// Func is the kernel function that makes the step, Hook what told it
	// (a tracepoint, a netfilter hook, the segment's own time stamp).
	Func string `json:"func"`
	Hook string `json:"hook,omitempty"`
	// Queue is the queue or place the step put the segment in (a queue
	// discipline, a device, a socket's buffer or queue), QueueLen its
	// length then: packets, bytes or connections (Unit).
	Queue    string `json:"queue,omitempty"`
	QueueLen int    `json:"queue_len,omitempty"`
	Unit     string `json:"unit,omitempty"`
	// Device is the network device of the step, where it has one.
	Device string `json:"device,omitempty"`
}

// The hooks of PathStep.Hook that are no tracepoint or netfilter hook of
// their own; the walkthrough says them in words.
const (
	// HookStamp: the time stamp TCP puts on the segment as it builds it
	// (skb->tstamp), read at IP's hook.
	HookStamp = "skb->tstamp"
	// HookSYNACKStamp: the SYN-ACK's own time stamp, which TCP puts on it
	// as it makes it from the request sock it queued.
	HookSYNACKStamp = "SYN-ACK skb->tstamp"
	// HookSynSent: the socket's state change to SYN_SENT in connect().
	HookSynSent = "tracepoint sock:inet_sock_set_state SYN_SENT"
)

// AbsentReason says why a step of the post's path is absent.
type AbsentReason uint8

// The reasons.
const (
	// AbsentNoRing: the lab's devices have no transmit ring.
	AbsentNoRing AbsentReason = iota + 1
	// AbsentNoDMA: nor DMA.
	AbsentNoDMA
	// AbsentNoMAC: loopback frames have no MAC address.
	AbsentNoMAC
	// AbsentMACUntold: veth checks the MAC address with no hook of its
	// own.
	AbsentMACUntold
	// AbsentNoRxRing: the lab's devices have no receive ring; the
	// backlog stands in.
	AbsentNoRxRing
	// AbsentNoInterrupt: no NIC raises an interrupt; the sender raises
	// the softirq.
	AbsentNoInterrupt
	// AbsentUntold: the step exists, but the kernel told nothing of it
	// for this segment.
	AbsentUntold
	// AbsentDelayLine: across a TUN device and the lab's delay line (a
	// user-space process), the receiver takes the packet in as a new
	// sk_buff, found again by its headers from IP on.
	AbsentDelayLine
	numAbsentReasons
)

var absentNames = [numAbsentReasons]string{"", "no-ring", "no-dma", "no-mac", "mac-untold", "no-rx-ring", "no-interrupt", "untold", "delay-line"}

// String returns the reason's name, as result.json has it.
func (r AbsentReason) String() string {
	if r > 0 && r < numAbsentReasons {
		return absentNames[r]
	}
	return "AbsentReason(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText writes the reason's name.
func (r AbsentReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a reason's name.
func (r *AbsentReason) UnmarshalText(b []byte) error {
	v, ok := nameOf[AbsentReason](string(b), 1, numAbsentReasons-1)
	if !ok {
		return fmt.Errorf("absent step: unknown reason %q", b)
	}
	*r = v
	return nil
}

// AbsentStep is a step of the post's path that the segment did not take
// where the lab ran it, or that the kernel did not tell, with why.
type AbsentStep struct {
	Kind PathStepKind `json:"step"`
	Why  AbsentReason `json:"why"`
}

// PathTimeline is a segment's path through the kernel: the steps the
// kernel told, in the path's order, and those it did not take.
type PathTimeline struct {
	Frame  int          `json:"frame"`
	Sender Side         `json:"-"`
	Steps  []PathStep   `json:"steps"`
	Absent []AbsentStep `json:"absent,omitempty"`
}

// pathStepJSON adds the time in milliseconds.
type pathStepJSON struct {
	PathStep
	AtMs float64 `json:"at_ms"`
}

type timelineJSON struct {
	Frame  int            `json:"frame"`
	Sender string         `json:"sender"`
	Steps  []pathStepJSON `json:"steps"`
	Absent []AbsentStep   `json:"absent,omitempty"`
}

// MarshalJSON writes the timeline with times in milliseconds and the
// sender's name.
func (t PathTimeline) MarshalJSON() ([]byte, error) {
	j := timelineJSON{Frame: t.Frame, Sender: t.Sender.String(), Absent: t.Absent}
	for _, s := range t.Steps {
		j.Steps = append(j.Steps, pathStepJSON{s, float64(s.At.Nanoseconds()) / 1e6})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (t *PathTimeline) UnmarshalJSON(b []byte) error {
	var j timelineJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = PathTimeline{Frame: j.Frame, Absent: j.Absent}
	if j.Sender == "server" {
		t.Sender = SideServer
	}
	for _, s := range j.Steps {
		st := s.PathStep
		st.At = time.Duration(math.Round(s.AtMs * 1e6))
		t.Steps = append(t.Steps, st)
	}
	return nil
}

// Check reports whether the timeline has the steps want, in that order
// among its own, at times that never go back: an error names the first
// step missing or out of order.
func (t *PathTimeline) Check(want ...PathStepKind) error {
	i := 0
	var last *PathStep
	for _, k := range want {
		for i < len(t.Steps) && t.Steps[i].Kind != k {
			i++
		}
		if i == len(t.Steps) {
			return fmt.Errorf("frame %d: the path lacks step %s after %s", t.Frame, k, stepName(last))
		}
		s := &t.Steps[i]
		if last != nil && s.At < last.At {
			return fmt.Errorf("frame %d: step %s at %v comes before step %s at %v", t.Frame, k, s.At, last.Kind, last.At)
		}
		last = s
		i++
	}
	return nil
}

func stepName(s *PathStep) string {
	if s == nil {
		return "the start"
	}
	return s.Kind.String()
}

// pathStrings are the words of a timeline in one language.
type pathStrings struct {
	heading     string // the sender, the receiver
	at          string // the step's time, in ms
	half        [3]string
	steps       [numPathSteps]string
	queue       string // name, length, unit
	units       map[string]string
	wait        string // time to the next step
	absent      string // the step's name, why
	why         [numAbsentReasons]string
	unavailable string
	unfollowed  string            // why a segment has no step
	hooks       map[string]string // PathStep.Hook in words
}

var pathTexts = []pathStrings{
	expect.English: {
		heading: "its path through the kernel, %s to %s (the blog post's steps):",
		half:    [3]string{"", "send", "receive"},
		at:      " at %+.3f ms",
		steps: [numPathSteps]string{"", "connect()", "send buffer", "TCP builds the segment and its sk_buff", "IP", "send queue",
			"the device's driver takes it", "NIC ring buffer", "DMA onto the wire", "NIC checks the MAC address", "NIC ring buffer",
			"the CPU's backlog queue, standing in for the ring buffer", "interrupt", "the network softirq takes it from the backlog",
			"IP", "TCP", "SYN queue", "accept queue", "receive buffer", "the application's read"},
		queue:  "%s qdisc, %d %s",
		units:  map[string]string{"packets": "packets waiting", "bytes": "bytes held", "connections": "connections waiting"},
		wait:   ", %.3f ms to the next step",
		absent: "%s: %s",
		why: [numAbsentReasons]string{"",
			"none here: a NIC's driver would put the packet in the NIC's transmit ring; the lab's device hands the sk_buff over in memory",
			"none here: a NIC would fetch the frame from memory by DMA and put it on the wire; this sk_buff never leaves memory",
			"none here: loopback and TUN frames carry no MAC address",
			"not told: veth checks it (eth_type_trans) as it hands the frame over, with no hook of its own",
			"none here: a NIC would write the frame by DMA into its receive ring; the sending CPU puts the sk_buff in the backlog queue instead",
			"none here: a NIC would raise an interrupt; netif_rx raises the network softirq itself",
			"not told: the kernel said nothing of this step for this segment",
			"not told: the delay line (a process between two TUN devices) wrote the packet in anew, as another sk_buff, which the lab finds again by its headers from IP on"},
		unavailable: "its path through the kernel: not traced (%s)",
		unfollowed:  "the kernel told nothing of it: a run follows the first 256 SYNs, FINs, data segments and handshake ACKs it sends",
		hooks: map[string]string{HookStamp: "the segment's own time stamp, skb->tstamp",
			HookSYNACKStamp: "the SYN-ACK's own time stamp, made from the request sock queued",
			HookSynSent:     "tracepoint sock:inet_sock_set_state, to SYN_SENT"},
	},
	expect.Chinese: {
		heading: "它在内核中的路径, %s到%s (博客文章的步骤):",
		half:    [3]string{"", "发送", "接收"},
		at:      ", 在 %+.3f ms",
		steps: [numPathSteps]string{"", "connect()", "tcp发送缓冲", "tcp层组装数据包和sk_buff", "IP层", "发送队列",
			"设备驱动取走它", "网卡的环形缓冲区", "DMA发送到网线上", "网卡检查MAC地址", "网卡的环形缓冲区",
			"CPU的backlog队列, 代替环形缓冲区", "中断", "网络软中断从backlog取走它",
			"IP层", "tcp层", "半连接队列", "全连接队列", "tcp接收缓冲", "应用层读取"},
		queue:  "%s 排队规则, %d %s",
		units:  map[string]string{"packets": "个包在等待", "bytes": "字节已占用", "connections": "个连接在等待"},
		wait:   ", 到下一步 %.3f ms",
		absent: "%s: %s",
		why: [numAbsentReasons]string{"",
			"这里没有: 网卡驱动会把包放进网卡的发送环形缓冲区; 实验的设备直接在内存里交出sk_buff",
			"这里没有: 网卡会用DMA从内存取出帧发到网线上; 这个sk_buff从未离开内存",
			"这里没有: 回环和TUN的帧没有MAC地址",
			"没有记录: veth在交出帧时检查它 (eth_type_trans), 没有自己的钩子",
			"这里没有: 网卡会用DMA把帧写进接收环形缓冲区; 这里由发送的CPU把sk_buff放进backlog队列",
			"这里没有: 网卡会发起中断; 这里netif_rx自己触发网络软中断",
			"没有记录: 内核没有说这个包的这一步",
			"没有记录: 延迟线 (两个TUN设备之间的进程) 把包重新写入, 成为另一个sk_buff, 实验从IP层起按包头重新找到它"},
		unavailable: "它在内核中的路径: 没有追踪 (%s)",
		unfollowed:  "内核没有说它: 一次运行只跟踪它发送的前256个SYN, FIN, 数据包和握手的ACK",
		hooks: map[string]string{HookStamp: "包自己的时间戳, skb->tstamp",
			HookSYNACKStamp: "SYN-ACK自己的时间戳, 由放进队列的request sock生成",
			HookSynSent:     "tracepoint sock:inet_sock_set_state, 进入SYN_SENT"},
	},
}

// PathLines says the timeline in lines of lang, each step numbered as the
// blog post numbers it in its half ("send 4. IP (__ip_local_out, netfilter
// LOCAL_OUT) at +1.204 ms"), the steps the lab's network lacks in their
// place, with why.
func PathLines(t *PathTimeline, lang expect.Lang) []string {
	w := byLang(pathTexts, lang)
	if len(t.Steps) == 0 {
		return []string{fmt.Sprintf(w.unavailable, w.unfollowed)}
	}
	side := byLang(kernelTexts, lang).side
	out := []string{fmt.Sprintf(w.heading, side[t.Sender&1], side[(t.Sender+1)&1])}
	type line struct {
		kind PathStepKind
		text string
	}
	var lines []line
	for i, s := range t.Steps {
		text := fmt.Sprintf("%s %d. %s", w.half[s.Kind.Half()], s.Kind.Num(), w.steps[s.Kind])
		var what []string
		switch {
		case s.Queue != "" && s.Kind == PathSendQueue:
			what = append(what, fmt.Sprintf(w.queue, s.Queue, s.QueueLen, w.units[s.Unit]))
		case s.Queue != "":
			what = append(what, fmt.Sprintf("%d %s", s.QueueLen, w.units[s.Unit]))
		}
		if s.Device != "" {
			what = append(what, s.Device)
		}
		fn := s.Func
		if h, ok := w.hooks[s.Hook]; ok {
			fn += ", " + h
		} else if s.Hook != "" {
			fn += ", " + s.Hook
		}
		what = append(what, fn)
		text += " (" + strings.Join(what, "; ") + ")"
		text += fmt.Sprintf(w.at, float64(s.At.Microseconds())/1000)
		if i+1 < len(t.Steps) && s.Queue != "" {
			text += fmt.Sprintf(w.wait, float64((t.Steps[i+1].At-s.At).Microseconds())/1000)
		}
		lines = append(lines, line{s.Kind, text})
	}
	for _, a := range t.Absent {
		text := fmt.Sprintf("%s %d. "+w.absent, w.half[a.Kind.Half()], a.Kind.Num(), w.steps[a.Kind], w.why[a.Why%numAbsentReasons])
		// In its place among the steps.
		at := len(lines)
		for i, l := range lines {
			if l.kind > a.Kind {
				at = i
				break
			}
		}
		lines = append(lines[:at], append([]line{{a.Kind, text}}, lines[at:]...)...)
	}
	for _, l := range lines {
		out = append(out, "  "+l.text)
	}
	return out
}

// PathUnavailableLine says in lang that a chosen segment's path was not
// traced, and why.
func PathUnavailableLine(why string, lang expect.Lang) string {
	return fmt.Sprintf(byLang(pathTexts, lang).unavailable, why)
}

// pathLines returns the lines of the path of the packet at index j of
// run.Packets, if the run followed it.
func pathLines(run *Run, j int) []string {
	if t := run.KernelPaths[j]; t != nil {
		return PathLines(t, run.Lang)
	}
	return nil
}
