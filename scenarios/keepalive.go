package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// keepAliveWait is how long the server waits before it answers: one and a
// half idle times, so the first probe (sent after one idle time without
// traffic) and its ACK come before the response.
func keepAliveWait(opt lab.Options) time.Duration { return opt.Idle() * 3 / 2 }

// KeepAlive shows TCP keep-alive: the server enables SO_KEEPALIVE with a
// short idle time and takes longer than that to answer, as the blog post's
// server waits on input().
func KeepAlive() *lab.Scenario {
	return &lab.Scenario{
		Name:      "keepalive",
		Summary:   "SO_KEEPALIVE on the server, which answers only after the idle time: keep-alive probe and its ACK, then the response",
		SummaryZH: "服务端开启SO_KEEPALIVE, 过了空闲时间才响应: keep-alive探测和它的ack, 然后是响应",
		Wait:      keepAliveWait,
		Server: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, nil)
			if err != nil {
				return err
			}
			idle := env.Options.Idle()
			// The blog post sets TCP_KEEPALIVE (macOS) to 8 s; on Linux that is
			// TCP_KEEPIDLE, with TCP_KEEPINTVL between probes.
			if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: idle, Count: 9}); err != nil {
				return fmt.Errorf("SO_KEEPALIVE: %w", err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			if _, err := peer.ReadRequest(r); err != nil {
				return err
			}
			if err := env.Sleep(ctx, keepAliveWait(env.Options), fmt.Sprintf(env.Text("the server's keep-alive timer (idle %v) fires before it answers", "服务端的保活定时器 (空闲 %v) 在它回答之前触发"), idle)); err != nil {
				return err
			}
			if _, err := c.Write([]byte(peer.Response)); err != nil {
				return err
			}
			return peer.Serve(ctx, c, 0, 0)
		},
		Client: peer.Client(peer.GetRequest()),
		Steps: func(opt lab.Options) []expect.Step {
			req := len(peer.GetRequest())
			steps := append(expect.Handshake(),
				sized(expect.C2S(pshAck).SeqNum(1), req, opt).Explain(
					"The client sends the blog post's HTTP request.", "然后客户端发送http协议格式的数据"),
				acking(expect.S2C(ack), 1+req, opt).Length(0).Explain(
					"The server's kernel acknowledges the request; the application is still thinking.", "服务端接收到数据回一个ack"),
				// The server waits 1.5 idle times, so one probe is certain;
				// a busy machine may delay the answer past a second probe.
				expect.OneOf(expect.Seq(
					expect.S2C(ack).SeqNum(0).Length(0).With(capture.KeepAlive).Explain(
						fmt.Sprintf("Nothing has crossed the connection for the keep-alive idle time (%v), so the server's kernel sends a keep-alive probe: an empty segment with seq one below the next byte (relative 0), which forces the peer to answer.", opt.Idle()),
						fmt.Sprintf("由于距离tcp流通道的上一个数据包的时间已经满%v了, 于是服务端给客户端发送keep-alive的tcp包", opt.Idle())),
					expect.C2S(ack).Length(0).With(capture.KeepAliveACK).Explain(
						"The client's kernel answers at once with an ACK of what it expects: the keep-alive ACK. The connection is alive.",
						"客户端接收后马上回一个ack"),
				)).Times(1, 3).Explain("Keep-alive probe and its ACK, after the idle time.", "keep-alive包和它的ack"),
				sized(expect.S2C(pshAck).SeqNum(1), len(peer.Response), opt).Explain(
					"The server answers with the blog post's HTTP response.", "服务端继续发送http格式的响应"),
				// The client closes as soon as it has read the response; its
				// delayed ACK of the response is then merged into its FIN.
				acking(expect.C2S(ack), 1+len(peer.Response), opt).Length(0).Optional().Explain(
					"The client acknowledges the response.", "客户端回ack"),
			)
			return append(steps, expect.ClientCloses()...)
		},
	}
}
