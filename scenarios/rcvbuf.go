package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// The rcvbuf scenario's receiver: it listens with a receive buffer that
// lets it offer a window of 64 KB, then shrinks the accepted socket's
// buffer to rcvbufSmall (Linux doubles it: 8 KB) and reads nothing for
// rcvbufStall.
const (
	rcvbufBig   = 64 << 10
	rcvbufSmall = 4096
	rcvbufBody  = 64 << 10
	rcvbufStall = 1500 * time.Millisecond
)

// rcvbufShrunk is the key of the channel the server closes once it has
// shrunk its receive buffer: the client writes only then, so that every
// byte meets the small buffer.
type rcvbufShrunk struct{}

// RcvBuf shows a receive buffer that cannot hold what its window
// promised. Linux never shrinks a window it has offered (RFC 9293 3.8.6
// strongly discourages it), so after the first segment fills the shrunk
// buffer the server still offers the rest of its window; the client
// fills it, and the segment that does not fit in the buffer is dropped
// (PROTO_MEM: the socket is over its memory). Then, short of memory,
// the kernel does withdraw its window: it advertises zero, and drops the
// client's retransmissions, which now end beyond the window, until the
// application reads.
func RcvBuf() *lab.Scenario {
	return &lab.Scenario{
		Name:      "rcvbuf",
		Summary:   "a receiver that stops reading and shrinks its buffer below the window it offered: the segment that does not fit is dropped (PROTO_MEM), the window goes to zero, and the retransmissions are dropped beyond it until the application reads",
		SummaryZH: "接收方不读, 并把接收缓冲区缩小到已通告的窗口以下: 放不下的包被丢弃 (PROTO_MEM), 窗口变为零, 重传的包超出窗口也被丢弃, 直到应用读取",
		Wait:      func(lab.Options) time.Duration { return rcvbufStall },
		Setup: func(ctx context.Context, env *lab.Env) (func(), error) {
			env.SetValue(rcvbufShrunk{}, make(chan struct{}))
			return func() {}, nil
		},
		Server: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, func(fd int) error {
				return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbufBig)
			})
			if err != nil {
				return err
			}
			if err := setRcvBuf(c, rcvbufSmall); err != nil {
				c.Close()
				return err
			}
			if ch, ok := env.Value(rcvbufShrunk{}).(chan struct{}); ok {
				close(ch)
			}
			if err := env.Sleep(ctx, rcvbufStall, env.Text("the receiver does not read; its buffer is smaller than the window it offered", "接收方不读; 它的缓冲区比已通告的窗口小")); err != nil {
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
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if ch, ok := env.Value(rcvbufShrunk{}).(chan struct{}); ok {
				select {
				case <-ch:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if _, err := peer.Exchange(c, peer.Request("POST", rcvbufBody, 'a')); err != nil {
				return err
			}
			return c.Close()
		},
		Steps: rcvbufSteps,
	}
}

// setRcvBuf sets c's SO_RCVBUF to n.
func setRcvBuf(c *net.TCPConn, n int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_RCVBUF: %w", serr)
	}
	return nil
}

// rcvbufSteps are the segments of RcvBuf.
func rcvbufSteps(opt lab.Options) []expect.Step {
	req := len(peer.Request("POST", rcvbufBody, 'a'))
	data := expect.Either(expect.C2S(ack).WithData(), expect.C2S(pshAck).WithData())
	first := data.Without(retransmitted()...).Kernel(expect.NoDrop()).Explain(
		"The client sends the first part of its POST. The server's buffer is empty, and Linux always takes a segment into an empty queue, though this one is four times the buffer.",
		"客户端发送POST的第一部分. 服务端缓冲区是空的, Linux总会把一个包放进空队列, 虽然它是缓冲区的四倍大")
	firstACK := expect.S2C(ack).Length(0).Without(capture.ZeroWindow).Explain(
		"The server acknowledges it. Its buffer is full, but its window is not zero: Linux never shrinks a window it has offered (RFC 9293 discourages it), so it offers what is left of it.",
		"服务端确认. 它的缓冲区已经满了, 但窗口不是零: Linux从不缩小已经通告的窗口 (RFC 9293不建议这样做), 所以它通告剩下的窗口")
	second := data.Without(retransmitted()...).Kernel(expect.Dropped("PROTO_MEM")).Explain(
		"The client sends the rest of the window: it fits the window, but not the buffer. The server's kernel cannot charge it to the socket, whose queue already holds data, and drops it: PROTO_MEM, counted as TCPRcvQDrop.",
		"客户端把窗口剩下的部分发出去: 窗口放得下, 缓冲区放不下. 服务端内核无法给socket分配内存 (队列里已经有数据), 丢弃了它: PROTO_MEM, 计入TCPRcvQDrop")
	steps := append(expect.Handshake(),
		expect.Note(fmt.Sprintf("The server listened with a receive buffer for a 64 KB window; on the accepted socket it sets SO_RCVBUF to %d bytes (Linux doubles it) and reads nothing for %v. Only then does the client write its POST (%d bytes).", rcvbufSmall, rcvbufStall, req),
			fmt.Sprintf("服务端监听时的接收缓冲区能通告64 KB的窗口; 接受连接后它把SO_RCVBUF设为%d字节 (Linux会翻倍), %v内不读. 然后客户端才写POST (%d字节)", rcvbufSmall, rcvbufStall, req)),
		first,
		// The client's second segment may leave before the server's ACK
		// of the first is captured.
		expect.OneOf(expect.Seq(firstACK, second), expect.Seq(second, firstACK)).Explain(
			"The window promised more than the buffer holds.", "窗口承诺的比缓冲区能放的多"),
		expect.S2C(ack).Length(0).With(capture.ZeroWindow).Explain(
			"Short of memory, the server's kernel does withdraw its window now: it acknowledges nothing new and advertises a window of 0 (Linux does so when it had to drop for lack of memory).",
			"内存不足, 服务端内核这时收回了窗口: 不确认新数据, 通告窗口为0 (Linux因内存不足丢包后会这样做)"),
		data.With(capture.Retransmission).Explain(
			"About 200 ms later the client's kernel sends the dropped segment again, by its tail loss probe: the server's kernel drops it again, for it ends beyond the zero window.",
			"大约200毫秒后, 客户端内核用尾部丢失探测重传被丢的包: 服务端内核又丢弃它, 因为它超出了零窗口"),
		expect.S2C(ack).Length(0).With(capture.ZeroWindow).Optional().Explain(
			"The server answers: still a zero window.", "服务端回应: 窗口仍然是0"),
		// In one run of twenty the kernel's account held neither the
		// probe nor its drop, though it lost no event: the kernel's
		// checks are on the RTOs that follow, which every run has.
		expect.OneOf(expect.Seq(
			data.With(capture.Retransmission).Kernel(expect.Resent(expect.RTO), expect.Dropped("TCP_INVALID_END_SEQUENCE", "TCP_ZEROWINDOW")).Explain(
				"Then by its RTO, doubling each time; each is dropped for the same reason (TCP_INVALID_END_SEQUENCE here: it ends beyond the window; TCP_ZEROWINDOW on kernels before 6.18).",
				"然后是RTO, 间隔每次翻倍; 每次都因同样的原因被丢弃 (这里是TCP_INVALID_END_SEQUENCE: 超出了窗口; 6.18之前的内核是TCP_ZEROWINDOW)"),
			expect.S2C(ack).Length(0).With(capture.ZeroWindow).Optional().Explain(
				"The server answers: still a zero window.", "服务端回应: 窗口仍然是0"),
		)).AtLeast(1).Explain(
			"Retransmissions by timer into a window of zero, each dropped.", "定时器重传到零窗口, 每次都被丢弃"),
		expect.S2C(ack).Length(0).With(capture.WindowUpdate).Explain(
			"The server's application reads at last: room in the buffer, and its kernel sends a window update.",
			"服务端应用终于读取, 缓冲区有了空间, 内核发送window update"),
		expect.Either(expect.C2S(ack), expect.C2S(pshAck), expect.S2C(ack).Length(0)).AnyNumber().Explain(
			"The flow resumes, a buffer at a time: the client sends what the window allows (the first piece by the retransmission timer that was pending), the server's window closes and opens as the application reads.",
			"数据流恢复, 每次一个缓冲区: 客户端发送窗口允许的数据 (第一段由还在等待的重传定时器发出), 服务端的窗口随着应用读取关闭又打开"),
		acking(expect.S2C(ack), 1+req, opt).Length(0).Explain(
			"The server acknowledges the whole request.", "服务端确认整个请求"),
		sized(expect.S2C(pshAck).SeqNum(1), len(peer.Response), opt).Explain(
			"The server answers.", "服务端发送http响应"),
		expect.C2S(ack).Length(0).Optional().Explain("The client acknowledges the response.", "客户端回ack"),
	)
	return append(steps, expect.ClientCloses()...)
}
