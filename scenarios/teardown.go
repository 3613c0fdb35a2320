package scenarios

import (
	"errors"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
)

// Flag sets used by the steps.
const (
	synAck = capture.SYN | capture.ACK
	ack    = capture.ACK
	pshAck = capture.PSH | capture.ACK
	finAck = capture.FIN | capture.ACK
)

// handshake is the three-way handshake, numbered as the seed numbers it
// (steps 1-4), with the options Linux puts on both SYNs checked.
func handshake() []lab.Step {
	return []lab.Step{
		lab.C2S(capture.SYN).SeqNum(0).Checking(synOptions).Explain(
			"The client calls connect(): its kernel sends a SYN carrying the client's initial sequence number (relative 0) and its options: MSS, window scale, SACK permitted, timestamps.",
			"客户端调用connect后, 发送请求与服务端建立连接的syn包, 包含一个客户端维护的序列号"),
		lab.S2C(synAck).SeqNum(0).AckNum(1).Checking(synOptions).Explain(
			"The server's kernel answers with SYN+ACK: its own initial sequence number, and ack = the client's sequence number + 1, acknowledging the SYN.",
			"服务端收到syn包后, 也回一个混合了syn和ack的数据包, 其中包含服务端维护的序列号, 而ack包是作为对客户端syn包的确认回应, 所以ack号则是客户端的序列号+1"),
		lab.C2S(ack).SeqNum(1).AckNum(1).Length(0).Explain(
			"The client acknowledges the SYN+ACK: seq is now 1, ack = the server's sequence number + 1.",
			"客户端收到服务端的syn+ack后, 再对该包确认回应而发送ack包, 此时序列号+1, ack号=服务端序列号+1"),
		lab.Note("After the three-way handshake the connection is established: a two-way byte stream between client and server, and accept() returns on the server.",
			"三次握手后, 客户端和服务端之间建立一条流通道"),
	}
}

// synOptions checks the options Linux sends on a SYN by default
// (net.ipv4.tcp_window_scaling, tcp_sack and tcp_timestamps are all 1).
func synOptions(s *capture.Segment) error {
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

// clientCloses is the teardown the seed shows (its steps 12-15): the client
// closes first, the server acknowledges the FIN, then closes too.
func clientCloses() []lab.Step {
	return []lab.Step{
		lab.C2S(finAck).Explain(
			"The client calls close(): its kernel sends a FIN (with an ACK of everything received so far). The client is now in FIN_WAIT_1.",
			"最后, 客户端调用close后, 会给服务端发送fin包, 同时也会发送ack"),
		// Linux acknowledges a FIN after a delayed-ACK timer (40 ms or
		// more); when the server's application closes within that time
		// the ACK rides on the server's FIN instead. Both are correct TCP.
		lab.OneOf(
			lab.Seq(
				lab.S2C(ack).Length(0).Explain("The server's kernel acknowledges the FIN on its own: the application has not closed yet. The server is in CLOSE_WAIT, the client in FIN_WAIT_2.",
					"服务端马上单独回一个ack, 发送fin包的前提是服务端也调用了close, 所以就先单独回一个ack"),
				lab.S2C(finAck).Length(0).Explain("The server's application sees EOF and shuts its write side down: its FIN, which also carries an ACK. The server is in LAST_ACK.",
					"服务端再发fin包, 而且为了防止客户端没收到前面的ack, 这个包里也包含一个ack"),
			),
			lab.Seq(
				lab.S2C(finAck).Length(0).Explain("The server's application closed before its delayed ACK fired: one segment carries both the ACK of the client's FIN and the server's own FIN.",
					"服务端的应用在延迟ack之前就关闭了, 所以ack和fin在同一个包里"),
			),
		).Explain("The server acknowledges the client's FIN and sends its own FIN, either as two segments (as in the seed) or as one.",
			"服务端确认客户端的fin, 然后发送自己的fin"),
		lab.C2S(ack).Length(0).Explain(
			"The client acknowledges the server's FIN: the client enters TIME_WAIT, the server CLOSED. The connection is fully closed.",
			"最后客户端回一个ack, tcp连接通道完全断开"),
	}
}
