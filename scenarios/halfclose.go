package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// halfCloseThink is how long the server waits after the client's FIN before
// it answers: longer than Linux's largest delayed-ACK timeout (200 ms), so
// the kernel's ACK of the FIN goes out alone, as in the blog post.
const halfCloseThink = 300 * time.Millisecond

// HalfClose shows a half-closed connection: the client sends its request
// and shuts down its write side; the server still answers, then closes.
func HalfClose() *lab.Scenario {
	return &lab.Scenario{
		Name:          "halfclose",
		Summary:       "shutdown(SHUT_WR) after the request: the server ACKs the FIN alone, still answers, then closes",
		SummaryZH:     "请求之后shutdown(SHUT_WR): 服务端单独ack这个fin, 仍然响应, 然后关闭",
		AcceptsServer: true,
		Server: func(ctx context.Context, env *lab.Env) error {
			// Read the request, then EOF: the client's FIN.
			c, r, err := peer.AcceptRequest(ctx, env, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if n, err := io.Copy(io.Discard, r); err != nil || n != 0 {
				return fmt.Errorf("expected EOF after the request, got %d bytes, %v", n, err)
			}
			if err := env.Sleep(ctx, halfCloseThink, env.Text("the server thinks before answering a half-closed connection", "服务端在回答半关闭的连接之前想一想")); err != nil {
				return err
			}
			if _, err := c.Write([]byte(peer.Response)); err != nil {
				return fmt.Errorf("write response after the client's FIN: %w", err)
			}
			return c.Close()
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write(peer.GetRequest()); err != nil {
				return err
			}
			if err := c.CloseWrite(); err != nil {
				return fmt.Errorf("shutdown(SHUT_WR): %w", err)
			}
			r := bufio.NewReader(c)
			read := peer.ReadResponse
			if env.Options.External() {
				read = peer.ReadAnyResponse
			}
			if err := read(r); err != nil {
				return err
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != 0 {
				return fmt.Errorf("expected the server's FIN after the response, got %d bytes, %v", n, err)
			}
			return nil
		},
		Steps: func(opt lab.Options) []expect.Step {
			req := len(peer.GetRequest())
			if opt.AnyServer() {
				return halfCloseAnyServer()
			}
			return append(expect.Handshake(),
				expect.C2S(pshAck).SeqNum(1).Length(req).Explain(
					"The client sends the blog post's HTTP request (GET /blog/ with its headers).",
					"客户端发送http协议格式的数据"),
				// The server's kernel may acknowledge the request before the
				// FIN arrives, or acknowledge both with one ACK: the FIN
				// follows the request within microseconds on loopback, so
				// usually the delayed ACK covers both.
				expect.S2C(ack).AckNum(1+req).Length(0).Optional().Explain(
					"The server's kernel acknowledges the request.", "服务端接收到数据回一个ack"),
				expect.C2S(finAck).SeqNum(1+req).Length(0).Explain(
					"The client calls shutdown(SHUT_WR): a FIN. It will send nothing more but can still receive: the connection is half-closed (client FIN_WAIT_1).",
					"客户端调用shutdown(SHUT_WR), 发送fin包, 但仍然可以接收数据"),
				expect.S2C(ack).AckNum(2+req).Length(0).Explain(
					"The server's kernel acknowledges the FIN alone: its application is still thinking. Server CLOSE_WAIT, client FIN_WAIT_2.",
					"服务端马上单独回一个ack, 应用还没有响应"),
				// Linux sends the response at once (nothing is in flight, so
				// neither Nagle nor autocorking holds it) and the FIN after
				// it; a kernel may also put the FIN on the data segment.
				expect.OneOf(
					expect.Seq(
						expect.S2C(pshAck).SeqNum(1).Length(len(peer.Response)).Explain(
							"The server still answers on the half-closed connection: the blog post's HTTP response.", "服务端继续发送http格式的响应"),
						// The client's ACK of the response is delayed, and
						// often merged into its ACK of the FIN that follows.
						expect.C2S(ack).Length(0).Optional().Explain("The client acknowledges the response.", "客户端回ack"),
						expect.S2C(finAck).SeqNum(1+len(peer.Response)).Length(0).Explain(
							"The server closes: its FIN. Server LAST_ACK, client TIME_WAIT after it.", "服务端再发fin包"),
					),
					expect.Seq(
						expect.S2C(capture.FIN|capture.PSH|capture.ACK).SeqNum(1).Length(len(peer.Response)).Explain(
							"The response and the server's FIN travel in one segment.", "响应和fin在同一个包里"),
					),
				).Explain("The server answers on the half-closed connection, then closes its side with a FIN.",
					"服务端在半关闭的连接上继续响应, 然后发送fin"),
				// The client's kernel may acknowledge the response only
				// after the server's FIN has left: the server closes
				// microseconds after it writes, and when the client's
				// stack runs later it answers each segment in turn (quick
				// ACKs early in a connection). TCP does not order the two,
				// so that ACK may come just before the ACK of the FIN; one
				// step still, so that the half-close stays step 11.
				expect.OneOf(expect.Seq(
					expect.C2S(ack).AckNum(1+len(peer.Response)).Length(0).Optional().Explain(
						"The client acknowledges the response, after the server's FIN had left.", "客户端回ack, 确认响应"),
					expect.C2S(ack).AckNum(2+len(peer.Response)).Length(0).Explain(
						"The client acknowledges the FIN: client TIME_WAIT, server CLOSED.",
						"最后客户端回一个ack, tcp连接通道完全断开"),
				)).Explain("The client acknowledges the FIN: client TIME_WAIT, server CLOSED.",
					"最后客户端回一个ack, tcp连接通道完全断开"),
				halfClosed(),
			)
		},
	}
}

// halfCloseAnyServer is what halfclose asks of any server, the user's own
// included: answer a request on a half-closed connection, then close
// gracefully with a FIN, never a RST. Servers differ in when they answer
// and when their kernel acknowledges, so only those facts are fixed. Its
// steps have the numbers of the scenario's own (5 the request, 7 the
// client's FIN, 9 the server's answer and FIN, 11 the half-close), so that
// run and check tell a capture of a run with the same numbers.
func halfCloseAnyServer() []expect.Step {
	// Any segment but a RST or a FIN: the flags are checked exactly. The
	// rest of a request sent in several segments is among them.
	any := expect.Either(expect.S2C(ack), expect.S2C(pshAck), expect.C2S(ack), expect.C2S(pshAck).WithData()).AnyNumber()
	serverData := expect.Either(expect.S2C(pshAck).WithData(), expect.S2C(ack).WithData())
	serverFIN := expect.Either(expect.S2C(finAck), expect.S2C(capture.FIN|capture.PSH|capture.ACK))
	clientFIN := expect.C2S(finAck).Explain(
		"The client shuts its write side down after the request: a FIN.", "客户端发送fin")
	return append(expect.Handshake(),
		expect.C2S(pshAck).SeqNum(1).WithData().Explain( // 5
			"The client sends its HTTP request.", "客户端发送http请求"),
		any.Explain( // 6
			"The rest of the request and the acknowledgements; a fast server may answer here already.",
			"请求的其余部分和ack; 快的服务端可能在这里就已经响应"),
		// A server that answers and closes at once (Python's http.server
		// does: HTTP/1.0) may send its FIN before the client's FIN, sent
		// right after the request, reaches it: TCP does not order the two,
		// and the client's FIN then comes in step 10.
		clientFIN.Optional(), // 7
		// Only acknowledgements here, so that the server's answer is step 9
		// as in the scenario's own steps.
		expect.Either(expect.S2C(ack).Length(0), expect.C2S(ack).Length(0)).AnyNumber().Explain( // 8
			"The server's kernel acknowledges the FIN (and the request, if it had not).",
			"服务端内核确认fin (如果还没确认请求, 也一起确认)"),
		expect.OneOf( // 9
			expect.Seq(serverData, any, serverFIN),
			expect.Seq(serverFIN),
		).Explain("The server answers on the half-closed connection, then closes gracefully: a FIN, not a RST.",
			"服务端在半关闭的连接上响应, 然后正常关闭: 发送fin而不是rst"),
		expect.OneOf( // 10
			// The client may acknowledge the answer only after the
			// server's FIN has left, then the FIN: two ACKs (see the
			// scenario's own step 10).
			expect.Seq(expect.C2S(ack).Length(0).Optional(), expect.C2S(ack).Length(0)),
			expect.Seq(expect.C2S(ack).Length(0).Optional(), clientFIN, expect.S2C(ack).Length(0)),
		).Explain("The client acknowledges the server's FIN; if its own FIN had not left yet, it follows, and the server acknowledges it.",
			"客户端回ack; 如果客户端的fin还没有发出, 就接着发送, 服务端回ack"),
		halfClosed(), // 11
	)
}

// halfClosed is halfclose's last step, the same in every form: the
// connection ended in a half-close, as capture.Ending tells it for every
// command. The server went on sending after it received the client's FIN;
// or its answer was already on its way when that FIN left (the answer
// crossed the FIN), so the server never saw the half-close, and did
// nothing wrong. A client that closes after the last answer has made a
// full close, however the segments look.
func halfClosed() expect.Step {
	return expect.Ends(func(e *capture.Ending) error {
		c, s := capture.ClientToServer, capture.ServerToClient
		switch {
		case e.FIN[c].Frame == 0:
			return fmt.Errorf("the client sent no FIN")
		case e.HalfClose[s].Frame != 0, e.Unread[s].Frame != 0:
			return nil
		}
		return fmt.Errorf("no half-close: the server sent no data after the client's FIN (frame %d), which acknowledged all it had sent: a full close", e.FIN[c].Frame)
	}).Explain("The connection was half-closed: the server's answer came after the client's FIN, which had acknowledged none of it.",
		"连接是半关闭的: 服务端的响应在客户端的fin之后到达, 而这个fin没有确认任何响应数据")
}
