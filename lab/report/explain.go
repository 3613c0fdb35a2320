package report

import (
	"fmt"
	"strings"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// explainer tells what each segment of a capture does, in words, from the
// segment and what came before it in its connection: the walkthrough of a
// capture that no scenario describes.
type explainer struct {
	lang  expect.Lang
	t     *explainStrings
	conns map[int]*explainConn
}

// explainConn is what the explainer remembers of one connection.
type explainConn struct {
	finEnd  [2]uint32 // per direction, the relative seq just past its FIN
	finSent [2]bool
	synAck  bool // a SYN/ACK was seen
	open    bool // the handshake's last ACK was seen
	// end follows the close as capture.Ending defines it, so that a
	// second FIN is called crossed by the model every command uses.
	end capture.EndingTracker
}

func newExplainer(lang expect.Lang) *explainer {
	return &explainer{lang: lang, t: byLang(explainTexts, lang), conns: map[int]*explainConn{}}
}

// explain returns what p does, in one or two sentences.
func (e *explainer) explain(p *capture.Packet) string {
	s, a := &p.Segment, &p.Annotation
	t := e.t
	c := e.conns[a.Stream]
	if c == nil {
		c = &explainConn{}
		e.conns[a.Stream] = c
	}
	who, other := t.client, t.theServer
	if a.Dir == capture.ServerToClient {
		who, other = t.server, t.theClient
	}
	d, r := int(a.Dir), 1-int(a.Dir)
	var check capture.RSTCheck
	var past int32
	if s.Flags.Has(capture.RST) && s.Problem != capture.HeaderCut {
		// Whether its receiver takes it, by capture.Ending's rule.
		check, past = c.end.CheckRST(s, a.Dir)
	}
	peerState := a.Server
	if a.Dir == capture.ServerToClient {
		peerState = a.Client
	}
	c.end.Add(s, a.Dir, a.Client, a.Server)
	if s.Problem == capture.HeaderCut {
		return fmt.Sprintf(t.cut, who)
	}
	var b strings.Builder
	f := s.Flags
	retrans := a.Labels.Has(capture.Retransmission)
	switch {
	case f.Has(capture.RST) && check == capture.RSTChallenged:
		fmt.Fprintf(&b, t.rstChallenged, who, past, other)
	case f.Has(capture.RST) && check == capture.RSTDropped && peerState == capture.SynSent:
		fmt.Fprintf(&b, t.rstSynSent, who, other)
	case f.Has(capture.RST) && check == capture.RSTDropped:
		fmt.Fprintf(&b, t.rstDropped, who, past, other)
	case f.Has(capture.RST):
		fmt.Fprintf(&b, t.rst, who)
	case f.Has(capture.SYN) && !f.Has(capture.ACK) && retrans:
		fmt.Fprintf(&b, t.synAgain, who)
	case f.Has(capture.SYN) && !f.Has(capture.ACK):
		fmt.Fprintf(&b, t.syn, who, e.options(&s.Options))
	case f.Has(capture.SYN):
		c.synAck = true
		fmt.Fprintf(&b, t.synAck, who, e.options(&s.Options))
	case f.Has(capture.FIN):
		end := a.RelSeq + uint32(s.Len) + 1
		first := !c.finSent[r]
		c.finSent[d], c.finEnd[d] = true, end
		if s.Len > 0 {
			fmt.Fprintf(&b, t.data, who, s.Len, a.RelSeq, a.RelSeq+uint32(s.Len))
			b.WriteString(t.sep)
		}
		switch {
		case first:
			fmt.Fprintf(&b, t.finFirst, who, other)
		case c.crossed(s.Frame, a.Dir):
			fmt.Fprintf(&b, t.finCrossed, who, other)
		default:
			fmt.Fprintf(&b, t.finSecond, who)
		}
		if c.finSent[r] && a.RelAck == c.finEnd[r] {
			b.WriteString(t.sep)
			fmt.Fprintf(&b, t.finAcksFin, other)
		}
	case s.Len > 0:
		fmt.Fprintf(&b, t.data, who, s.Len, a.RelSeq, a.RelSeq+uint32(s.Len))
	case !c.open && c.synAck && a.Dir == capture.ClientToServer && a.RelAck == 1 && a.RelSeq == 1:
		c.open = true
		fmt.Fprintf(&b, t.handshakeDone, who)
	case c.finSent[r] && a.RelAck == c.finEnd[r] && f.Has(capture.ACK) && a.Labels == 0:
		fmt.Fprintf(&b, t.ackFin, who, other, a.RelAck)
	case f.Has(capture.ACK) && a.Labels == 0:
		fmt.Fprintf(&b, t.ack, who, a.RelAck)
	case f.Has(capture.ACK):
		fmt.Fprintf(&b, t.bareAck, who, a.RelSeq, a.RelAck)
	}
	for l := capture.Label(0); l.WiresharkField() != ""; l++ {
		if a.Labels.Has(l) {
			if b.Len() > 0 {
				b.WriteString(t.sep)
			}
			b.WriteString(t.labels[l])
		}
	}
	if a.Client != capture.Unknown && b.Len() == 0 {
		fmt.Fprintf(&b, t.other, who, s.Flags)
	}
	return b.String()
}

// crossed reports whether frame is the FIN of side d that, by
// capture.Ending, crossed the other side's.
func (c *explainConn) crossed(frame int, d capture.Dir) bool {
	e := c.end.Ending()
	return e.Crossed && e.FIN[d].Frame == frame
}

// options describes the options of a SYN or SYN/ACK.
func (e *explainer) options(o *capture.Options) string {
	var parts []string
	if o.MSS != 0 {
		parts = append(parts, fmt.Sprintf("MSS %d", o.MSS))
	}
	if o.WindowScale >= 0 {
		parts = append(parts, fmt.Sprintf(e.t.wscale, o.WindowScale))
	}
	if o.SACKPermitted {
		parts = append(parts, e.t.sackPerm)
	}
	if o.HasTimestamps {
		parts = append(parts, e.t.timestamps)
	}
	if len(parts) == 0 {
		return ""
	}
	return e.t.optionsIntro + strings.Join(parts, ", ")
}

// bulk describes n data segments of one direction that carried bytes
// [from, to), and the acks pure ACKs the other way.
func (e *explainer) bulk(dir capture.Dir, n, acks int, from, to uint32) string {
	who, other := e.t.client, e.t.theServer
	if dir == capture.ServerToClient {
		who, other = e.t.server, e.t.theClient
	}
	s := fmt.Sprintf(e.t.bulk, who, to-from, n, from, to)
	if acks > 0 {
		s += e.t.sep + fmt.Sprintf(e.t.bulkAcks, other, acks)
	}
	return s
}

// explainStrings are the sentences of the capture walkthrough in one
// language. Each %s who is "The client" or "The server".
type explainStrings struct {
	client, server                             string
	theClient, theServer                       string // as an object
	bareAck, bulkAcks                          string
	sep                                        string // between sentences
	syn, synAgain, synAck, handshakeDone       string
	data, bulk, ack                            string
	finFirst, finSecond, finAcksFin, ackFin    string
	finCrossed                                 string
	rst, cut, other                            string
	rstChallenged, rstDropped, rstSynSent      string // a RST its receiver does not take
	optionsIntro, wscale, sackPerm, timestamps string
	labels                                     [18]string // by capture.Label
}

// explainTexts holds explainStrings by language.
var explainTexts = []explainStrings{
	expect.English: {
		client: "The client", server: "The server", theClient: "the client", theServer: "the server",
		bareAck:  "%s sends an ACK without data (seq %d, ack %d).",
		bulkAcks: "Meanwhile %s acknowledges them in %d ACKs.", sep: " ",
		syn:           "%s opens a connection: a SYN with its initial sequence number (relative 0)%s.",
		synAgain:      "%s sends its SYN again: no SYN/ACK came back in time.",
		synAck:        "%s accepts: its SYN/ACK acknowledges the SYN (ack 1) and carries its own initial sequence number%s.",
		handshakeDone: "%s acknowledges the SYN/ACK: the three-way handshake is complete and both ends are ESTABLISHED.",
		data:          "%s sends %d bytes (seq %d; the byte after them is seq %d).",
		bulk:          "%s sends %d bytes in %d segments (seq %d; the byte after them is seq %d).",
		ack:           "%s acknowledges every byte before %d.",
		finFirst:      "%s closes its side with a FIN: it will send nothing more, though it can still receive from %s.",
		finSecond:     "%s closes its side too with a FIN.",
		finCrossed:    "%s closes its side too with a FIN, sent before %s's FIN reached it (it does not acknowledge it): the FINs crossed, a simultaneous close. Both ends go FIN_WAIT_1 -> CLOSING -> TIME_WAIT.",
		finAcksFin:    "It also acknowledges %s's FIN.",
		ackFin:        "%s acknowledges %s's FIN (ack %d: a FIN takes one sequence number).",
		rst:           "%s resets the connection: it ends at once, without the FIN exchange.",
		rstChallenged: "%s sends a RST %d past RCV.NXT, inside %s's window: it is not taken, as only a RST at RCV.NXT resets (RFC 5961 3.2); a challenge ACK answers it and the connection goes on.",
		rstDropped:    "%s sends a RST %d past RCV.NXT, outside %s's window: it is dropped and the connection goes on (RFC 5961 3.2).",
		rstSynSent:    "%s sends a RST that does not acknowledge %s's SYN: in SYN_SENT it is dropped and the connection goes on (RFC 9293 3.10.7.3).",
		cut:           "%s sent this segment, but the snap length cut its TCP header: it is not analysed.",
		other:         "%s sends %s.",
		optionsIntro:  "; its options: ", wscale: "window scale %d", sackPerm: "SACK permitted", timestamps: "timestamps",
		labels: [...]string{
			capture.KeepAlive:              "A TCP keep-alive: after an idle time, an empty (or one-byte) segment one below the next sequence number asks the peer to confirm the connection.",
			capture.KeepAliveACK:           "The answer to the keep-alive: an ACK of the next expected byte.",
			capture.WindowUpdate:           "A window update: nothing new to acknowledge, but the window grew: the receiver made room.",
			capture.ZeroWindow:             "A zero window: the receiver's buffer is full and the sender must stop.",
			capture.ZeroWindowProbe:        "A zero-window probe: the sender asks whether the window has opened.",
			capture.ZeroWindowProbeACK:     "The answer to a zero-window probe.",
			capture.WindowFull:             "This segment fills the receiver's advertised window.",
			capture.DupACK:                 "A duplicate ACK: the same acknowledgement again, usually because a segment beyond a gap arrived.",
			capture.Retransmission:         "A retransmission: this sequence space was sent before.",
			capture.FastRetransmission:     "A fast retransmission: resent right after duplicate ACKs, without waiting for the timer.",
			capture.SpuriousRetransmission: "A spurious retransmission: the receiver had already acknowledged these bytes.",
			capture.OutOfOrder:             "Out of order: it came after segments with higher sequence numbers, within a round trip.",
			capture.LostSegment:            "A gap: sequence numbers before this segment were not captured.",
			capture.ACKLostSegment:         "This ACK acknowledges bytes the capture did not see.",
			capture.ReusedPorts:            "A new connection on the same addresses and ports as an earlier one in the capture (its SYN carries another initial sequence number).",
			capture.TFOSyn:                 "A TCP Fast Open SYN: it carries the cookie the server gave earlier, so its data may be accepted at once.",
			capture.TFOAck:                 "The server accepts the Fast Open data: the SYN/ACK acknowledges the SYN's bytes too.",
			capture.TFOIgnored:             "The server ignores the Fast Open data: the SYN/ACK acknowledges only the SYN, and the client sends the data again.",
		},
	},
	expect.Chinese: {
		client: "客户端", server: "服务端", theClient: "客户端", theServer: "服务端",
		bareAck:  "%s发送一个不带数据的 ACK (seq %d, ack %d).",
		bulkAcks: "同时%s用 %d 个 ACK 确认它们.", sep: " ",
		syn:           "%s发起连接: SYN 携带它的初始序号 (相对序号 0)%s.",
		synAgain:      "%s再次发送 SYN: 没有及时收到 SYN/ACK.",
		synAck:        "%s接受连接: SYN/ACK 确认了 SYN (ack 1), 并带上自己的初始序号%s.",
		handshakeDone: "%s确认 SYN/ACK: 三次握手完成, 两端都进入 ESTABLISHED.",
		data:          "%s发送 %d 字节 (seq %d; 其后的下一个字节是 seq %d).",
		bulk:          "%s发送 %d 字节, 共 %d 个包 (seq %d; 其后的下一个字节是 seq %d).",
		ack:           "%s确认 %d 之前的所有字节.",
		finFirst:      "%s用 FIN 关闭自己这一侧: 它不再发送数据, 但仍可以接收%s的数据.",
		finSecond:     "%s也用 FIN 关闭自己这一侧.",
		finCrossed:    "%s也用 FIN 关闭自己这一侧, 而且是在%s的 FIN 到达之前发出的 (没有确认它): 两个 FIN 交叉, 即同时关闭. 两端都经过 FIN_WAIT_1 -> CLOSING -> TIME_WAIT.",
		finAcksFin:    "同时确认了%s的 FIN.",
		ackFin:        "%s确认%s的 FIN (ack %d: FIN 占一个序号).",
		rst:           "%s重置连接: 连接立即结束, 没有 FIN 交换.",
		rstChallenged: "%s发出一个 RST, 比 RCV.NXT 大 %d, 在%s的窗口内: 它不被接受, 只有等于 RCV.NXT 的 RST 才重置连接 (RFC 5961 3.2); 对方回一个挑战 ACK, 连接照常.",
		rstDropped:    "%s发出一个 RST, 与 RCV.NXT 相差 %d, 在%s的窗口之外: 它被丢弃, 连接照常 (RFC 5961 3.2).",
		rstSynSent:    "%s发出的 RST 没有确认%s的 SYN: 在 SYN_SENT 状态它被丢弃, 连接照常 (RFC 9293 3.10.7.3).",
		cut:           "%s发送了这个包, 但抓包长度截断了它的 TCP 头: 不做分析.",
		other:         "%s发送 %s.",
		optionsIntro:  "; 选项: ", wscale: "窗口扩大因子 %d", sackPerm: "允许 SACK", timestamps: "时间戳",
		labels: [...]string{
			capture.KeepAlive:              "TCP keep-alive (保活) 探测: 空闲一段时间后, 发送一个序号比下一个序号小 1 的空包 (或一字节), 请对方确认连接还在.",
			capture.KeepAliveACK:           "对保活探测的应答: 确认下一个期望的字节.",
			capture.WindowUpdate:           "窗口更新: 没有新的确认, 但窗口变大了: 接收方腾出了缓冲区.",
			capture.ZeroWindow:             "零窗口: 接收方缓冲区已满, 发送方必须暂停.",
			capture.ZeroWindowProbe:        "零窗口探测: 发送方询问窗口是否已经打开.",
			capture.ZeroWindowProbeACK:     "对零窗口探测的应答.",
			capture.WindowFull:             "这个包正好填满了接收方通告的窗口.",
			capture.DupACK:                 "重复确认: 又一次相同的确认号, 通常是因为收到了缺口之后的包.",
			capture.Retransmission:         "重传: 这段序号之前已经发送过.",
			capture.FastRetransmission:     "快速重传: 收到重复确认后立即重发, 不等重传定时器.",
			capture.SpuriousRetransmission: "虚假重传: 接收方已经确认过这些字节.",
			capture.OutOfOrder:             "乱序: 它在序号更大的包之后到达 (在一个往返时间之内).",
			capture.LostSegment:            "缺口: 这个包之前的序号没有被抓到.",
			capture.ACKLostSegment:         "这个确认号确认了抓包没有看到的字节.",
			capture.ReusedPorts:            "新连接使用了抓包中先前某个连接的相同地址和端口 (它的 SYN 带着另一个初始序号).",
			capture.TFOSyn:                 "TCP Fast Open 的 SYN: 它带着服务端先前给的 cookie, 所以它的数据可以立即被接受.",
			capture.TFOAck:                 "服务端接受 Fast Open 数据: SYN/ACK 同时确认了 SYN 携带的字节.",
			capture.TFOIgnored:             "服务端忽略 Fast Open 数据: SYN/ACK 只确认了 SYN, 客户端会重新发送这些数据.",
		},
	},
}
