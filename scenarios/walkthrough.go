package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// The walkthrough's server has a receive buffer far smaller than the
// client's POST body, and lets the body fill it before it reads.
const (
	walkRcvBuf   = 4096                   // SO_RCVBUF; Linux doubles it
	walkBody     = 16 * 1024              // bytes of 'a' in the POST body
	walkFillWait = 100 * time.Millisecond // the buffer fills in microseconds; a zero-window probe waits >= 200 ms (TCP_RTO_MIN)
	walkLinger   = 300 * time.Millisecond // longer than Linux's largest delayed-ACK timeout (200 ms)
)

// Walkthrough reproduces the blog post's whole Wireshark walkthrough on one
// connection, in its 15 numbered steps.
func Walkthrough() *lab.Scenario {
	return &lab.Scenario{
		Name:      "walkthrough",
		Summary:   "the blog post's session end to end: handshake, window update, HTTP request, keep-alive probe, response, FIN teardown (15 steps)",
		SummaryZH: "博客文章的完整会话: 握手, 窗口更新, HTTP请求, keep-alive探测, 响应, FIN挥手 (15步)",
		Wait:      func(opt lab.Options) time.Duration { return walkFillWait + keepAliveWait(opt) + walkLinger },
		Server: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, func(fd int) error {
				// Set before listen(), so the accepted socket inherits it
				// and the window it announces is small from the SYN/ACK on.
				return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, walkRcvBuf)
			})
			if err != nil {
				return err
			}
			defer c.Close()
			idle := env.Options.Idle()
			if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: idle, Count: 9}); err != nil {
				return fmt.Errorf("SO_KEEPALIVE: %w", err)
			}
			if err := env.Sleep(ctx, walkFillWait, env.Text("the client's POST fills the server's receive buffer", "客户端的 POST 填满服务端的接收缓冲区")); err != nil {
				return err
			}
			r := bufio.NewReader(c)
			if _, err := peer.ReadRequest(r); err != nil {
				return err
			}
			if err := env.Sleep(ctx, keepAliveWait(env.Options), fmt.Sprintf(env.Text("the server waits on input() past its keep-alive idle time (%v)", "服务端在 input() 上等待, 超过它的保活空闲时间 (%v)"), idle)); err != nil {
				return err
			}
			if _, err := c.Write([]byte(peer.Response)); err != nil {
				return err
			}
			// recv returns nothing once the client has closed: the blog post's
			// server then shuts its write side down, after a linger longer
			// than any delayed ACK, so the kernel's ACK of the client's FIN
			// goes out alone first.
			if n, err := io.Copy(io.Discard, r); err != nil || n != 0 {
				return fmt.Errorf("expected EOF after the response, got %d bytes, %v", n, err)
			}
			if err := env.Sleep(ctx, walkLinger, env.Text("the server takes its time to close, as in the blog post", "服务端过一会儿才关闭, 和博客文章里一样")); err != nil {
				return err
			}
			if err := c.CloseWrite(); err != nil {
				return fmt.Errorf("shutdown(SHUT_WR): %w", err)
			}
			return nil
		},
		Client: peer.Client(peer.Request("POST", walkBody, 'a')),
		Steps:  walkthroughSteps,
	}
}

func walkthroughSteps(opt lab.Options) []expect.Step { return walkthroughFlow(opt, false) }

// walkthroughFlow returns the walkthrough's steps; with resends, the POST's
// segments may be sent again. On a LAN the server's kernel may drop a
// segment that overflows the 4 KiB buffer's memory (it counts the
// Ethernet frame's whole buffer, not the payload), and the client resends
// it: TCP allows either, so the LAN's steps accept both.
func walkthroughFlow(opt lab.Options, resends bool) []expect.Step {
	req := len(peer.Request("POST", walkBody, 'a'))
	// While the POST fills the buffer and drains, the client's data and the
	// server's ACKs interleave as the kernel schedules them; only their
	// kinds are fixed.
	data := expect.C2S(ack).Without(capture.Retransmission)
	dataPush := expect.C2S(pshAck).Without(capture.Retransmission)
	if resends {
		data, dataPush = expect.C2S(ack), expect.C2S(pshAck)
	}
	serverAck := expect.S2C(ack).Length(0)
	flow := expect.Either(data, dataPush, serverAck)
	if !resends {
		// The server's ACK may come later than the client's loss probe
		// timer (2 RTTs, at least 10 ms) when the machine is busy: the
		// client then resends its last segment's tail, which the server
		// drops as old data. When a receiver acknowledges is the
		// scheduler's to say, not TCP's (1 soak round in about 400 beside
		// a full test run).
		probe := expect.Either(expect.C2S(ack), expect.C2S(pshAck)).With(capture.Retransmission).Explain(
			"A tail-loss probe: the server's ACK came later than the client's probe timer, so the client's kernel sent the end of its last segment again, and the server's dropped it as data it had.",
			"尾部丢失探测: 服务端的ACK来得比客户端的探测定时器晚, 客户端内核重发了最后一段的末尾, 服务端把它当作已收到的数据丢弃")
		flow = expect.Either(data, dataPush, probe, serverAck)
	}
	window := [][]expect.Step{expect.Seq(
		flow.AnyNumber(),
		expect.S2C(ack).Length(0).With(capture.ZeroWindow).Explain(
			"The client's POST has filled the server's small receive buffer: the server's kernel announces a zero window and the client must stop.",
			"客户端的POST填满了服务端很小的接收缓冲区, 服务端通告零窗口, 客户端必须停止发送"),
		serverAck.With(capture.ZeroWindow).AnyNumber(),
		expect.S2C(ack).Length(0).With(capture.WindowUpdate).Explain(
			"The server's application reads: its receive buffer empties and the kernel sends a TCP window update, the same sequence and acknowledgement numbers with a larger window.",
			"服务端的应用读取数据后, 接收缓冲区空出来, 于是给客户端发送一个 Wireshark 称为“TCP Window Update”的包"),
	)}
	{
		// The server's kernel may hold its ACKs until the application
		// reads (its window would shrink, which it does not announce
		// early), and acknowledge with a window that never went to zero:
		// TCP announces a zero window only when an ACK is due while the
		// buffer is full. On the LAN the client's tail-loss probe comes
		// meanwhile and is dropped as old data (once in 300 runs); on
		// loopback it happens when the client's POST comes late, past
		// the server's 100 ms before it reads (a busy machine: 4 soak
		// rounds in 750 with two soaks and a test run at once).
		window = append(window, expect.Seq(expect.Either(data, dataPush, serverAck.Without(capture.ZeroWindow)).AnyNumber().Explain(
			"Not this time: the server's kernel held its ACKs until the application read, so its window never went to zero and no window update was needed (TCP announces a zero window only when an ACK is due while the buffer is full).",
			"这一次没有: 服务端内核等到应用读取后才回ACK, 窗口从未变为零, 也就不需要window update(只有在缓冲区满时需要回ACK, TCP才通告零窗口)")))
	}
	steps := expect.Handshake()
	steps = append(steps,
		expect.OneOf(window...).Explain(
			"Window update. The server's TCP receive buffer was full, so it sent the client a window update once there was room again. "+
				"In the blog post's capture (macOS) the update came right after the handshake; Linux announces a larger window only when the application has read from its buffer, "+
				"so here the client's POST fills a deliberately small buffer (SO_RCVBUF 4 KiB) before the server reads.",
			"服务端的tcp接收缓冲区满了, 所以给客户端发送一个 Wireshark 称为“TCP Window Update”的包. 博客文章的抓包(macOS)在握手后马上出现window update; Linux只有在应用读取了接收缓冲区后才会通告更大的窗口, 所以这里客户端的POST先填满一个故意设小的接收缓冲区"),
		expect.OneOf(expect.Seq(flow.AnyNumber())).Explain(
			"The client sends the rest of its HTTP request (the blog post's POST /blog/ with its headers and a body of 16384 'a') into the reopened window.",
			"然后客户端发送http协议格式的数据"),
		acking(expect.S2C(ack), 1+req, opt).Length(0).Explain(
			"The server's kernel acknowledges the whole request; the application is still thinking, as the blog post's server waits on input().",
			"服务端接收到数据回一个ack的包"),
		expect.S2C(ack).Length(0).With(capture.KeepAlive).Explain(
			fmt.Sprintf("Nothing has crossed the connection for the keep-alive idle time (%v), so the server's kernel sends a keep-alive probe: an empty segment whose seq is one below the next byte, which the client must answer.", opt.Idle()),
			fmt.Sprintf("由于距离tcp流通道的上一个数据包的时间已经满%v了, 于是服务端给客户端发送keep-alive的tcp包", opt.Idle())),
		// The server answers half an idle time after the probe; a machine
		// busy enough to hold its goroutine past another idle interval sees
		// the kernel probe again, as it does every interval while the
		// connection is idle: when the application writes is the
		// scheduler's, not TCP's, to say.
		expect.OneOf(
			expect.Seq(walkthroughProbeACK()),
			expect.Seq(walkthroughProbeACK(), expect.S2C(ack).Length(0).With(capture.KeepAlive), walkthroughProbeACK()),
			expect.Seq(walkthroughProbeACK(), expect.S2C(ack).Length(0).With(capture.KeepAlive), walkthroughProbeACK(),
				expect.S2C(ack).Length(0).With(capture.KeepAlive), walkthroughProbeACK()),
		).Explain(
			"The client's kernel answers the probe at once with an ACK: the keep-alive ACK.",
			"客户端接收后马上回一个ack"),
		sized(expect.S2C(pshAck).SeqNum(1), len(peer.Response), opt).Explain(
			"The server sends its HTTP response: HTTP/1.1 200 OK, text/plain, X-Frame-Options: SAMEORIGIN, Content-Length: 5, \"great\".",
			"服务端继续发送http格式的响应"),
		// The client closes right after reading the response; its delayed
		// ACK of the response then rides on its FIN.
		acking(expect.C2S(ack), 1+len(peer.Response), opt).Length(0).Optional().Explain(
			"The client acknowledges the response.", "客户端回ack"),
		expect.C2S(finAck).Length(0).Explain(
			"The client calls close(): its kernel sends a FIN, which also acknowledges everything the server sent.",
			"最后, 客户端调用close后, 会给服务端发送fin包, 同时也会发送ack"),
		acking(expect.S2C(ack), 2+req, opt).Length(0).Explain(
			"The server's kernel acknowledges the FIN on its own (after its delayed-ACK timer): the server's application has not closed yet (its recv has just returned nothing). Server CLOSE_WAIT, client FIN_WAIT_2.",
			"服务端内核单独回一个ack (在延迟ack定时器到期之后, 抓包里约40毫秒): 服务端的应用还没有关闭 (它的recv刚刚返回0). 服务端CLOSE_WAIT, 客户端FIN_WAIT_2. (博客文章说这是因为close要释放资源, 耗时较长; 其实是延迟ack定时器先到期)"),
		expect.S2C(finAck).Length(0).Explain(
			"The server shuts its write side down (shutdown(SHUT_WR)): its FIN, which carries an ACK too in case the previous one was lost. Server LAST_ACK.",
			"服务端再发fin包, 而且为了防止客户端没收到前面的ack, 这个包里也包含一个ack"),
		expect.C2S(ack).Length(0).Explain(
			"The client acknowledges the server's FIN: client TIME_WAIT, server CLOSED. The connection is completely closed.",
			"最后客户端回一个ack, tcp连接通道完全断开"),
	)
	return steps
}

// walkthroughProbeACK is the client's answer to a keep-alive probe.
func walkthroughProbeACK() expect.Step {
	return expect.C2S(ack).Length(0).With(capture.KeepAliveACK)
}
