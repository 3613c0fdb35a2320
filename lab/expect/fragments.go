package expect

import (
	"errors"

	"github.com/tcplab/tcplab/capture"
)

// The flags steps expect, so that a scenario needs no other package to say
// them: S2C(FIN|ACK), C2S(PSH|ACK).
const (
	FIN = capture.FIN
	SYN = capture.SYN
	RST = capture.RST
	PSH = capture.PSH
	ACK = capture.ACK
)

// Handshake is the three-way handshake as the blog post numbers it (steps
// 1-4: SYN, SYN/ACK, ACK, then the remark that the connection is
// established), with the options Linux puts on both SYNs checked (MSS,
// window scale, SACK permitted, timestamps).
func Handshake() []Step {
	return []Step{
		C2S(SYN).SeqNum(0).Checking(LinuxSYNOptions).Explain(
			"The client calls connect(): its kernel sends a SYN carrying the client's initial sequence number (relative 0) and its options: MSS, window scale, SACK permitted, timestamps.",
			"客户端调用connect后, 发送请求与服务端建立连接的syn包, 包含一个客户端维护的序列号"),
		S2C(SYN|ACK).SeqNum(0).AckNum(1).Checking(LinuxSYNOptions).Explain(
			"The server's kernel answers with SYN+ACK: its own initial sequence number, and ack = the client's sequence number + 1, acknowledging the SYN.",
			"服务端收到syn包后, 也回一个混合了syn和ack的数据包, 其中包含服务端维护的序列号, 而ack包是作为对客户端syn包的确认回应, 所以ack号则是客户端的序列号+1"),
		C2S(ACK).SeqNum(1).AckNum(1).Length(0).Explain(
			"The client acknowledges the SYN+ACK: seq is now 1, ack = the server's sequence number + 1.",
			"客户端收到服务端的syn+ack后, 再对该包确认回应而发送ack包, 此时序列号+1, ack号=服务端序列号+1"),
		Note("After the three-way handshake the connection is established: a two-way byte stream between client and server, and accept() returns on the server.",
			"三次握手后, 客户端和服务端之间建立一条流通道"),
	}
}

// LinuxSYNOptions checks the options Linux sends on a SYN by default
// (net.ipv4.tcp_window_scaling, tcp_sack and tcp_timestamps are all 1).
func LinuxSYNOptions(s *capture.Segment) error {
	o := &s.Options
	var errs []error
	if o.MSS == 0 {
		errs = append(errs, errors.New("no MSS option"))
	}
	if o.WindowScale < 0 {
		errs = append(errs, errors.New("no window scale option"))
	}
	if !o.SACKPermitted {
		errs = append(errs, errors.New("no SACK-permitted option"))
	}
	if !o.HasTimestamps {
		errs = append(errs, errors.New("no timestamps option"))
	}
	return errors.Join(errs...)
}

// Request is the client's request: n bytes of data from relative sequence
// number 1, the first thing sent after the handshake.
func Request(n int) Step {
	return C2S(PSH|ACK).SeqNum(1).Length(n).Explain(
		"The client sends its request.", "客户端发送请求")
}

// Response is the server's response: n bytes of data from relative
// sequence number 1.
func Response(n int) Step {
	return S2C(PSH|ACK).SeqNum(1).Length(n).Explain(
		"The server sends its response.", "服务端发送响应")
}

// ClientCloses is the graceful close the blog post shows (its steps
// 12-15): the client closes first, the server acknowledges the FIN, then
// closes too, and the client acknowledges the server's FIN.
func ClientCloses() []Step {
	return []Step{
		// When the client's delayed-ACK timer fires on one CPU while
		// close() sends the FIN on another, the pure ACK built before the
		// FIN can reach the wire after it, with the FIN's sequence number
		// (Wireshark calls it a keep-alive). TCP does not order the two;
		// seen once in 675 runs.
		// The server's kernel may hold its ACK of the FIN for its
		// delayed-ACK time (up to 200 ms) while its application, on a busy
		// machine, has yet to close; past the client's RTO (its round trip
		// plus 200 ms) the client sends its FIN again. TCP allows both.
		OneOf(
			Seq(clientFIN()),
			Seq(clientFIN(), clientFIN().With(capture.Retransmission).Explain(
				"The server's ACK of the FIN is late (its kernel delays it while the application has not closed), and the client's retransmission timer fires first: the client sends its FIN again.",
				"服务端对fin的ack来迟了 (应用还没有关闭, 内核延迟了ack), 客户端的重传定时器先到期: 客户端再发一次fin")),
			Seq(clientFIN(), C2S(ACK).Length(0).Explain(
				"The client's delayed ACK, built just before its FIN but sent just after it: it carries the sequence number the FIN took, so Wireshark calls it a keep-alive. Nothing is wrong.",
				"客户端的延迟ack在fin之前生成, 却在fin之后发出: 它的序号是fin用掉的那个, 所以Wireshark称之为keep-alive. 这没有问题")),
		).Explain(
			"The client calls close(): its kernel sends a FIN (with an ACK of everything received so far). The client is now in FIN_WAIT_1.",
			"最后, 客户端调用close后, 会给服务端发送fin包, 同时也会发送ack"),
		// Linux acknowledges a FIN after a delayed-ACK timer (40 ms or
		// more); when the server's application closes within that time
		// the ACK rides on the server's FIN instead. Both are correct TCP.
		OneOf(
			Seq(
				S2C(ACK).Length(0).Explain("The server's kernel acknowledges the FIN on its own: the application has not closed yet. The server is in CLOSE_WAIT, the client in FIN_WAIT_2.",
					"服务端马上单独回一个ack, 发送fin包的前提是服务端也调用了close, 所以就先单独回一个ack"),
				S2C(FIN|ACK).Length(0).Explain("The server's application sees EOF and shuts its write side down: its FIN, which also carries an ACK. The server is in LAST_ACK.",
					"服务端再发fin包, 而且为了防止客户端没收到前面的ack, 这个包里也包含一个ack"),
			),
			Seq(
				S2C(FIN|ACK).Length(0).Explain("The server's application closed before its delayed ACK fired: one segment carries both the ACK of the client's FIN and the server's own FIN.",
					"服务端的应用在延迟ack之前就关闭了, 所以ack和fin在同一个包里"),
			),
		).Explain("The server acknowledges the client's FIN and sends its own FIN, either as two segments (as in the blog post) or as one.",
			"服务端确认客户端的fin, 然后发送自己的fin"),
		lastACK(C2S(ACK).Length(0), S2C(FIN|ACK), S2C(RST), S2C(ACK)).Explain(
			"The client acknowledges the server's FIN: the client enters TIME_WAIT, the server CLOSED. The connection is fully closed.",
			"最后客户端回一个ack, tcp连接通道完全断开"),
	}
}

// lastACK is the closing ACK of a graceful close, and what follows it
// when it reaches the last FIN's sender after that sender's
// retransmission timer: the FIN again (one or more times, backed off),
// the TIME_WAIT side's answer to each, and, when the late ACK closed the
// socket before an answer came, a RST from a host with no such
// connection. The timer is TCP's to set (its round trip plus 200 ms at
// least) but the path's delay is not: a delay line in user space on a
// busy machine can hold an ACK past it. TCP guarantees the resend and
// the answers (RFC 9293 3.6 and 3.10.7.1), so a run shows them rather
// than fail; seen 5 times in 200 rtt runs beside two busy loops and
// four builds, never on a plain loopback, where the ACK never waits for
// a process.
//
// Last, the FIN's sender's own ACK of the other FIN, built before its FIN
// (its delayed-ACK timer fired on one CPU while close() sent the FIN on
// another) and reaching the wire after the closing ACK, as ClientCloses
// allows of the client's: it carries the sequence number the FIN took
// (Wireshark calls it a keep-alive); the TIME_WAIT side answers it, and
// the closed socket answers that with a RST. Soak round 875 of
// handshake, once in about 17,000 closes. stale is that pure ACK.
func lastACK(ack, fin, rst, stale Step) Step {
	again := OneOf(Seq(
		fin.Length(0).With(capture.Retransmission).Explain(
			"The ACK of the FIN came after the FIN's retransmission timer: its sender sends the FIN again.",
			"fin的ack来得比重传定时器晚: 发送方再发一次fin"),
		ack.Explain(
			"The TIME_WAIT side acknowledges the FIN again.",
			"TIME_WAIT的一方再次确认这个fin"),
	)).Times(1, 3)
	return OneOf(
		Seq(ack),
		Seq(ack, again, rst.Length(0).Optional().Explain(
			"The first ACK had closed the socket in the meantime: the second ACK finds no connection and is answered with a RST.",
			"第一个ack已经让这个socket关闭了: 第二个ack找不到连接, 收到的回答是rst")),
		Seq(ack,
			stale.Length(0).With(capture.KeepAlive).Explain(
				"The FIN's sender's ACK of the other FIN, built before its own FIN and sent just after it: it carries the sequence number its FIN took, so Wireshark calls it a keep-alive. Nothing is wrong.",
				"发送fin的一方对另一个fin的ack在它自己的fin之前生成, 却在之后发出: 它的序号是fin用掉的那个, 所以Wireshark称之为keep-alive. 这没有问题"),
			ack.With(capture.KeepAliveACK).Explain(
				"The TIME_WAIT side answers it with an ACK.", "TIME_WAIT的一方用ack回答它"),
			rst.Length(0).Optional().Explain(
				"The last ACK had closed the socket: that answer finds no connection and is answered with a RST.",
				"最后的ack已经让这个socket关闭了: 这个回答找不到连接, 收到的回答是rst")),
	)
}

// lateDataACK is ServerCloses' optional ACK of the server's last data,
// sent after the server's FIN had left.
func lateDataACK() Step {
	return C2S(ACK).Length(0).Optional().Explain(
		"The client acknowledges the server's last data: the server's FIN had left before the client's stack ran, and it answers each segment in turn.",
		"客户端确认服务端最后的数据: 服务端的fin在客户端协议栈处理之前就已经发出, 它逐个回答")
}

// clientFIN is the client's FIN of ClientCloses; the choice around it
// explains it.
func clientFIN() Step { return C2S(FIN | ACK) }

// ServerCloses is the same graceful close begun by the server: the server
// sends the first FIN, the client acknowledges it and closes too, and the
// server acknowledges the client's FIN. The server, the active closer,
// ends in TIME_WAIT.
func ServerCloses() []Step {
	return []Step{
		S2C(FIN|ACK).Explain(
			"The server calls close(): its kernel sends a FIN (with an ACK of everything received so far). The server is now in FIN_WAIT_1.",
			"服务端调用close后, 给客户端发送fin包, 同时也会发送ack"),
		// As in ClientCloses, the client's ACK of the FIN may ride on its
		// own FIN when its application closes within the delayed-ACK time.
		// A server that closes right after it writes may have sent its FIN
		// before the client's stack ran: the client then acknowledges the
		// data and the FIN each in turn, and the ACK of the data comes
		// after the FIN. TCP does not order the two.
		OneOf(
			Seq(
				lateDataACK(),
				C2S(ACK).Length(0).Explain("The client's kernel acknowledges the FIN on its own: the application has not closed yet. The client is in CLOSE_WAIT, the server in FIN_WAIT_2.",
					"客户端马上单独回一个ack, 它的应用还没有调用close"),
				C2S(FIN|ACK).Length(0).Explain("The client's application sees EOF and closes: its FIN, which also carries an ACK. The client is in LAST_ACK.",
					"客户端再发fin包, 这个包里也包含一个ack"),
			),
			Seq(
				lateDataACK(),
				C2S(FIN|ACK).Length(0).Explain("The client's application closed before its delayed ACK fired: one segment carries both the ACK of the server's FIN and the client's own FIN.",
					"客户端的应用在延迟ack之前就关闭了, 所以ack和fin在同一个包里"),
			),
		).Explain("The client acknowledges the server's FIN and sends its own FIN, either as two segments or as one.",
			"客户端确认服务端的fin, 然后发送自己的fin"),
		lastACK(S2C(ACK).Length(0), C2S(FIN|ACK), C2S(RST), C2S(ACK)).Explain(
			"The server acknowledges the client's FIN: the server enters TIME_WAIT, the client CLOSED. The connection is fully closed.",
			"最后服务端回一个ack, tcp连接通道完全断开"),
	}
}
