package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
)

// offloadBody is what the client sends on each connection: more than the
// first flight's ten segments, so the kernel has whole flights to hand to
// the device at once.
const offloadBody = 256 << 10

// offloadMSS is the most payload a segment on the LAN's wire carries: MSS
// 1460 less the 12-byte timestamps option.
const offloadMSS = lanMSS4 - lanTSOpt

// Offload sends the same data twice across the LAN, first with the
// kernel's segmentation and receive offloads on (TSO, GSO, GRO, as on
// most hosts), then with them off: why a capture can show "segments" far
// larger than the MTU, and where.
func Offload() *lab.Scenario {
	return &lab.Scenario{
		Name:      "offload",
		Summary:   "the same 256 KiB sent twice across the LAN, offloads (TSO, GSO, GRO) on then off: captured at the hosts, segments far larger than the MTU with them on, none above 1448 bytes with them off",
		SummaryZH: "在局域网上两次发送同样的256 KiB, 先打开再关闭网卡卸载(TSO, GSO, GRO): 打开时在主机上抓到远大于MTU的段, 关闭时没有超过1448字节的段",
		Topology:  lab.LAN,
		Offload:   true,
		// Headers are enough, and a GSO buffer of 64 KiB a frame would
		// overflow the capture's ring.
		Snaplen: 128,
		Server: func(ctx context.Context, env *lab.Env) error {
			ln, err := env.Listen(ctx, nil)
			if err != nil {
				return err
			}
			defer ln.Close()
			stop := context.AfterFunc(ctx, func() { ln.Close() })
			defer stop()
			for range 2 {
				c, err := ln.Accept()
				if err != nil {
					return fmt.Errorf("accept: %w", err)
				}
				// All the data, a one-byte answer, then the client's close:
				// the client's FIN comes after its data is acknowledged.
				c.SetDeadline(time.Now().Add(5 * time.Second))
				n, err := io.CopyN(io.Discard, c, offloadBody)
				if err == nil {
					_, err = c.Write([]byte("k"))
				}
				if err == nil {
					_, err = io.Copy(io.Discard, c)
				}
				c.Close()
				if err != nil {
					return fmt.Errorf("connection with %d bytes received: %w", n, err)
				}
			}
			return nil
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			body := bytes.Repeat([]byte{'a'}, offloadBody)
			for i, on := range []bool{true, false} {
				if err := env.SetOffload(on); err != nil {
					return err
				}
				env.Record(env.Text("connection %d: offloads %s", "连接 %d: 卸载%s"), i, map[bool]string{true: env.Text("on", "开启"), false: env.Text("off", "关闭")}[on])
				c, err := env.Connect(ctx)
				if err != nil {
					return err
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(body); err != nil {
					c.Close()
					return err
				}
				// The server's answer says it has everything.
				if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
					c.Close()
					return fmt.Errorf("the server's answer: %w", err)
				}
				if err := c.Close(); err != nil {
					return err
				}
			}
			return nil
		},
		Steps: offloadSteps,
	}
}

// larger checks that a segment carries more than the wire's MSS allows.
func larger(s *capture.Segment) error {
	if s.Len <= offloadMSS {
		return fmt.Errorf("%d bytes, want more than the %d one frame carries", s.Len, offloadMSS)
	}
	return nil
}

// fits checks that a segment carries no more than the wire's MSS.
func fits(s *capture.Segment) error {
	if s.Len > offloadMSS {
		return fmt.Errorf("%d bytes, more than the %d one frame carries", s.Len, offloadMSS)
	}
	return nil
}

func offloadSteps(lab.Options) []expect.Step { return offloadStepsWith(offloadHandshake) }

// offloadStepsWith are offload's steps with handshake(stream) as each
// connection's handshake.
func offloadStepsWith(handshake func(stream int) []expect.Step) []expect.Step {
	var steps []expect.Step
	for stream, on := range []bool{true, false} {
		steps = append(steps, handshake(stream)...)
		// Data and the server's ACKs interleave as the kernel schedules
		// them; retransmissions are not expected but TCP allows them.
		ack := expect.S2C(capture.ACK).On(stream).Length(0)
		data := expect.Either(expect.C2S(capture.ACK), expect.C2S(capture.PSH|capture.ACK)).On(stream).WithData()
		if on {
			plain, big := data, data.Checking(larger)
			steps = append(steps,
				expect.OneOf(expect.Seq(
					expect.Either(plain, ack).AnyNumber(),
					big.Explain(
						"With the offloads on, the client's kernel hands the device one buffer of many segments' worth (TSO/GSO), and the capture, taken where the packet crosses the device (AF_PACKET, before segmentation), shows it as one TCP segment far larger than the MTU. The veth passes it whole, so the server's eth0 sees it the same; on a real NIC the frames on the wire are 1448-byte segments, cut by the card, and the receiving host's capture may show them merged again by GRO. Wireshark shows such a segment as one frame longer than the MTU, which is not an error.",
						"打开卸载后, 客户端内核把好几个段的数据作为一个缓冲区交给网卡(TSO/GSO), 抓包发生在数据包经过设备的地方(AF_PACKET, 在分段之前), 所以看到一个远大于MTU的TCP段. veth原样传递它, 服务端的eth0也看到同样的段; 真实网卡会把它切成1448字节的段放到线上, 接收主机的抓包又可能被GRO合并. Wireshark显示一个比MTU还长的帧, 这不是错误."),
					expect.Either(plain, ack).AnyNumber(),
				)).Explain(
					fmt.Sprintf("Connection 1, offloads on: the client sends %d KiB.", offloadBody>>10),
					fmt.Sprintf("第1个连接, 打开卸载: 客户端发送%d KiB.", offloadBody>>10)))
		} else {
			steps = append(steps, expect.Either(data.Checking(fits), ack).AtLeast(offloadBody/offloadMSS).Explain(
				fmt.Sprintf("Connection 2, offloads off: the same %d KiB leave as segments of at most %d bytes, each a frame of the capture, as on the wire.", offloadBody>>10, offloadMSS),
				fmt.Sprintf("第2个连接, 关闭卸载: 同样的%d KiB以最多%d字节的段发出, 每个段是抓包里的一帧, 和线上一样.", offloadBody>>10, offloadMSS)))
		}
		steps = append(steps,
			expect.S2C(capture.PSH|capture.ACK).On(stream).Length(1).Explain(
				"The server has read everything and answers with one byte.", "服务端读完所有数据后回一个字节"),
			expect.C2S(capture.ACK).On(stream).Length(0).Optional().Explain(
				"The client acknowledges the answer (or its FIN does).", "客户端确认(或者由它的FIN确认)"),
			// On its way to the client, the answer may overtake the
			// server's last pure ACKs (the veth's receive path with GRO
			// reorders them: soak round 402 saw the answer arrive 30
			// ACKs early). Once the client has acknowledged the answer,
			// each late ACK carries a sequence number below its window,
			// and its kernel answers an unacceptable segment with an ACK
			// (RFC 793; one per tcp_invalid_ratelimit, 500 ms): the same
			// ACK again. TCP allows it.
			expect.C2S(capture.ACK).On(stream).Length(0).With(capture.DupACK).Optional().Explain(
				"The client's kernel answers a late ACK of the server, which came after the answer and carries a sequence number it has already acknowledged, with its ACK again (a duplicate ACK, as TCP answers an unacceptable segment).",
				"服务端较早的ack在回答之后才到达客户端, 它的序号已经被确认过, 客户端内核再发一次同样的ack来回答它(重复ack, TCP对不可接受的段就是这样回答的)"))
		for _, st := range expect.ClientCloses() {
			steps = append(steps, st.On(stream))
		}
	}
	return steps
}

// offloadHandshake is the handshake of connection stream, with the resends
// TCP makes when a handshake segment is held or lost. A connection starts
// right after its SetOffload, and changing a veth's GRO tears down or
// builds its NAPI context, waiting for RCU grace periods: under CPU load
// `make test` once saw the change take 12.6 s, then the second
// connection's SYN (frame 29) answered only when the client resent it
// 1.04 s later, by two SYN/ACKs at the same microsecond (frames 30-32):
// the first SYN had waited in the kernel until the resend came. The lab
// does not promise that a device being reconfigured delays nothing; TCP
// promises that the SYN is resent until answered, and that a resent
// SYN/ACK is acknowledged again. Neither resend is what the scenario
// shows, so they are allowed, not required.
func offloadHandshake(stream int) []expect.Step {
	hs := expect.Handshake()
	resent := func(s expect.Step) expect.Step {
		return s.With(capture.Retransmission).On(stream).AnyNumber().Explain(
			"Resent: the handshake segment before it was lost while the device was being reconfigured, and its sender's timer (1 s) sent it again.",
			"重传: 前一个握手段在设备重新配置时丢失, 发送方的定时器(1秒)又发了一次")
	}
	return []expect.Step{
		hs[0].On(stream),
		resent(expect.C2S(capture.SYN).SeqNum(0)),
		hs[1].On(stream),
		resent(expect.S2C(capture.SYN | capture.ACK).SeqNum(0).AckNum(1)),
		hs[2].On(stream),
		expect.C2S(capture.ACK).SeqNum(1).AckNum(1).Length(0).On(stream).AnyNumber().Explain(
			"The client acknowledges a resent SYN/ACK again.",
			"客户端再次确认重传的SYN/ACK"),
		hs[3].On(stream),
	}
}
