package scenarios

import (
	"bufio"
	"context"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// The window scenario's receiver has a small buffer and reads nothing for
// long enough to see the sender probe its zero window a few times: Linux
// probes after one RTO (at least 200 ms), then backs off exponentially.
const (
	windowRcvBuf = 4096
	windowBody   = 64 * 1024
	windowStall  = 1500 * time.Millisecond
)

// Window shows flow control: the receiver's buffer fills, its window goes
// to zero, the sender probes it, and a window update reopens the flow.
func Window() *lab.Scenario {
	return &lab.Scenario{
		Name:      "window",
		Summary:   "flow control: window-full, zero-window, the sender's zero-window probes, then a window update reopens the flow",
		SummaryZH: "流量控制: 窗口满, 零窗口, 发送方的零窗口探测, 然后窗口更新重新打开数据流",
		Wait:      func(lab.Options) time.Duration { return windowStall },
		Server: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, func(fd int) error {
				return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, windowRcvBuf)
			})
			if err != nil {
				return err
			}
			if err := env.Sleep(ctx, windowStall, env.Text("the receiver does not read; its window is closed and the sender probes it", "接收方不读: 它的窗口关闭了, 发送方探测它")); err != nil {
				c.Close()
				return err
			}
			r := bufio.NewReader(c)
			if _, err := peer.ReadRequest(r); err != nil {
				c.Close()
				return err
			}
			if _, err := c.Write([]byte(peer.Response)); err != nil {
				c.Close()
				return err
			}
			return peer.Serve(ctx, c, 0, 0)
		},
		Client: peer.Client(peer.Request("POST", windowBody, 'a')),
		Steps: func(opt lab.Options) []expect.Step {
			req := len(peer.Request("POST", windowBody, 'a'))
			// Data and ACKs interleave as the kernel schedules them; the
			// steps fix what flow control guarantees: the window fills, it
			// closes, the sender probes, an update reopens it.
			flow := expect.Either(expect.C2S(ack), expect.C2S(pshAck), expect.S2C(ack).Length(0))
			steps := expect.Handshake()
			return append(append(steps,
				expect.OneOf(expect.Seq(
					flow.AnyNumber(),
					expect.Either(expect.C2S(ack), expect.C2S(pshAck)).With(capture.WindowFull),
				)).Explain(
					"The client writes its POST faster than the server reads (it does not read at all): the segment that reaches the right edge of the server's advertised window is labelled window-full.",
					"客户端发送POST, 服务端不读取: 到达服务端通告窗口右边界的包被标记为window-full"),
				expect.S2C(ack).Length(0).With(capture.ZeroWindow).Explain(
					"The server's receive buffer is full: its kernel acknowledges the data with a window of 0. The client must stop sending.",
					"服务端接收缓冲区满了, 内核确认数据时通告窗口为0, 客户端必须停止发送"),
				expect.OneOf(expect.Seq(
					expect.C2S(ack).Length(0).With(capture.ZeroWindowProbe).Explain(
						"After a retransmission timeout the client's kernel probes the closed window. Linux sends an empty segment one byte below the window (seq = snd_una - 1), which Wireshark calls a keep-alive; tcplab calls it a zero-window probe, as it is one.",
						"重传超时后, 客户端内核探测关闭的窗口. Linux发送一个序列号为snd_una-1的空包, Wireshark称之为keep-alive, tcplab称之为零窗口探测"),
					// Linux answers out-of-window segments at most once per
					// net.ipv4.tcp_invalid_ratelimit (500 ms): a probe that
					// follows the previous one sooner gets no answer.
					expect.S2C(ack).Length(0).With(capture.ZeroWindow, capture.ZeroWindowProbeACK).Optional().Explain(
						"The server's kernel answers the probe: the window is still 0. (Linux answers such probes at most once per 500 ms, net.ipv4.tcp_invalid_ratelimit, so a probe may go unanswered.)",
						"服务端回应探测包: 窗口仍然是0 (Linux每500毫秒最多回应一次, 所以有的探测包没有回应)"),
				)).AtLeast(1).Explain(
					"Zero-window probes, each answered by an ACK that repeats the zero window; the intervals double (exponential backoff).",
					"零窗口探测, 每个都被一个窗口仍为0的ack回应; 间隔每次翻倍"),
				expect.S2C(ack).Length(0).With(capture.WindowUpdate).Explain(
					"The server's application finally reads: room in the buffer, and its kernel sends a window update, the same seq and ack with a window above 0.",
					"服务端应用终于读取数据, 缓冲区有了空间, 内核发送window update"),
				expect.OneOf(expect.Seq(flow.AnyNumber())).Explain(
					"The flow resumes: the client sends the rest of its POST as the window allows.",
					"数据流恢复, 客户端在窗口允许的范围内发送剩下的POST"),
				acking(expect.S2C(ack), 1+req, opt).Length(0).Explain(
					"The server acknowledges the whole request.", "服务端确认整个请求"),
				sized(expect.S2C(pshAck).SeqNum(1), len(peer.Response), opt).Explain(
					"The server answers.", "服务端发送http响应"),
				expect.C2S(ack).Length(0).Optional().Explain("The client acknowledges the response.", "客户端回ack"),
			), expect.ClientCloses()...)
		},
	}
}
