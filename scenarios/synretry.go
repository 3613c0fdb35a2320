package scenarios

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/impair"
	"github.com/tcplab/tcplab/lab/peer"
)

// Linux's initial retransmission timeout (TCP_TIMEOUT_INIT): how long a
// client waits for the answer to its SYN before it sends the SYN again. The
// second retransmission would come 2 s after the first.
const (
	synRTO      = time.Second
	synRetryMin = 900 * time.Millisecond
	synRetryMax = 3 * time.Second
)

// SynRetry shows a lost SYN: Setup installs an nftables rule that drops the
// first SYN on the server's input hook, after the capture point. The
// client's connect() waits for its initial retransmission timeout, sends
// the SYN again, and the handshake completes; then one request, one
// response and the blog post's teardown.
func SynRetry() *lab.Scenario {
	return &lab.Scenario{
		Name:           "syn-retry",
		Summary:        "the first SYN is dropped on arrival: the client sends it again after its initial RTO (1 s) and the handshake completes",
		SummaryZH:      "第一个SYN在到达时被丢弃: 客户端在初始RTO (1秒) 后重发, 握手完成",
		NeedsNamespace: true,
		Wait:           func(lab.Options) time.Duration { return synRTO },
		Setup: func(ctx context.Context, env *lab.Env) (func(), error) {
			server, err := netip.ParseAddrPort(env.Addr)
			if err != nil {
				return nil, err
			}
			in, err := impair.Install(impair.DropFirstSYN(server.Port()))
			if err != nil {
				return nil, err
			}
			return func() { in.Remove() }, nil
		},
		Server: peer.Server(nil),
		Client: func(ctx context.Context, env *lab.Env) error {
			env.Progress(env.Text("connecting: the first SYN will be dropped, the retransmission comes after %v", "连接中: 第一个 SYN 会被丢弃, %v 后重传"), synRTO)
			start := time.Now()
			c, err := env.Dial(ctx)
			if err != nil {
				return err
			}
			env.Record(env.Text("connect() returned after %v", "connect() 在 %v 后返回"), time.Since(start).Round(time.Millisecond))
			defer c.Close()
			if _, err := peer.Exchange(c, peer.GetRequest()); err != nil {
				return err
			}
			return c.Close()
		},
		Steps: synRetrySteps,
	}
}

// synRetrySteps are the segments of SynRetry: two SYNs a timeout apart,
// then an ordinary conversation.
func synRetrySteps(opt lab.Options) []expect.Step {
	req := len(peer.GetRequest())
	// The time of the first SYN, for the check of the second. The first
	// step only ever matches the connection's first segment, so the value
	// is that segment's time whenever the second step is checked.
	var firstSYN time.Time
	steps := []expect.Step{
		expect.C2S(capture.SYN).SeqNum(0).Without(capture.Retransmission).Checking(func(s *capture.Segment) error {
			firstSYN = s.Time
			return expect.LinuxSYNOptions(s)
		}).Explain(
			"The client calls connect(): its kernel sends a SYN with its initial sequence number. The capture on lo records it, but an nftables rule on the server's input hook drops it: the server never sees it, and the client hears nothing back.",
			"客户端调用connect, 发送syn包; 抓包记录下来了, 但是服务端入口的nftables规则把它丢掉了, 服务端没有收到"),
		expect.C2S(capture.SYN).SeqNum(0).With(capture.Retransmission).Checking(func(s *capture.Segment) error {
			gap := s.Time.Sub(firstSYN)
			if gap < synRetryMin || gap > synRetryMax {
				return fmt.Errorf("SYN retransmitted %v after the first, want %v to %v", gap.Round(time.Millisecond), synRetryMin, synRetryMax)
			}
			return expect.LinuxSYNOptions(s)
		}).Explain(
			fmt.Sprintf("The client's initial retransmission timeout (%v on Linux: no round trip has been measured yet) expires: its kernel sends the same SYN again, same sequence number, and Wireshark labels it a retransmission. connect() is still blocked.", synRTO),
			"客户端的初始重传超时(1秒)到期, 再发一次同样的syn包(序列号相同), Wireshark标记为重传; connect还在阻塞"),
	}
	// The rest of the handshake is the usual one.
	steps = append(steps, expect.Handshake()[1:]...)
	steps = append(steps,
		sized(expect.C2S(pshAck).SeqNum(1), req, opt).Explain(
			"connect() has returned, a second late: the client sends the blog post's HTTP request.", "connect返回后, 客户端发送http请求"),
		// The server answers within microseconds, so its kernel's ACK
		// rides on the response; a busy machine may send it alone first.
		acking(expect.S2C(ack), 1+req, opt).Length(0).Optional().Explain(
			"The server's kernel acknowledges the request.", "服务端接收到数据回一个ack"),
		sized(expect.S2C(pshAck).SeqNum(1), len(peer.Response), opt).Explain(
			"The server answers with the blog post's HTTP response.", "服务端发送http格式的响应"),
		// The client closes as soon as it has read the response; its
		// delayed ACK of the response is then merged into its FIN.
		acking(expect.C2S(ack), 1+len(peer.Response), opt).Length(0).Optional().Explain(
			"The client acknowledges the response.", "客户端回ack"),
	)
	return append(steps, expect.ClientCloses()...)
}
