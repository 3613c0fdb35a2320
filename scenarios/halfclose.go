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
				expect.C2S(ack).Length(0).Explain(
					"The client acknowledges the FIN: client TIME_WAIT, server CLOSED.",
					"最后客户端回一个ack, tcp连接通道完全断开"),
			)
		},
	}
}

// halfCloseAnyServer is what halfclose asks of any server, the user's own
// included: answer a request on a half-closed connection, then close
// gracefully with a FIN, never a RST. Servers differ in when they answer
// and when their kernel acknowledges, so only those facts are fixed.
func halfCloseAnyServer() []expect.Step {
	// Any segment but a RST or a FIN: the flags are checked exactly. The
	// rest of a request sent in several segments is among them.
	any := expect.Either(expect.S2C(ack), expect.S2C(pshAck), expect.C2S(ack), expect.C2S(pshAck).WithData()).AnyNumber()
	serverData := expect.Either(expect.S2C(pshAck).WithData(), expect.S2C(ack).WithData()).Explain(
		"The server answers on the half-closed connection.", "服务端在半关闭的连接上响应")
	clientFIN := expect.C2S(finAck).Explain(
		"The client shuts its write side down after the request: a FIN.", "客户端发送fin")
	return append(expect.Handshake(),
		expect.C2S(pshAck).SeqNum(1).WithData().Explain(
			"The client sends its HTTP request.", "客户端发送http请求"),
		// A server that answers and closes at once (Python's http.server
		// does: HTTP/1.0) may send its FIN before the client's FIN, sent
		// right after the request, reaches it: TCP does not order the two.
		// That server never saw the half-close, and did nothing wrong.
		expect.OneOf(
			expect.Seq(any, clientFIN, any, serverData, any),
			expect.Seq(any, serverData, any, clientFIN, any),
			expect.Seq(any, serverData, any),
		).Explain("The client half-closes with a FIN, and the server answers: in either order, as the server's speed decides, or the server answers and closes before the FIN reaches it.",
			"客户端半关闭, 服务端响应: 顺序取决于服务端的速度; 服务端也可能在收到fin之前就响应并关闭"),
		expect.Either(expect.S2C(finAck), expect.S2C(capture.FIN|capture.PSH|capture.ACK)).Explain(
			"The server closes gracefully: a FIN, not a RST.", "服务端正常关闭: 发送fin而不是rst"),
		expect.OneOf(
			expect.Seq(expect.C2S(ack).Length(0)),
			expect.Seq(expect.C2S(ack).Length(0).Optional(), clientFIN, expect.S2C(ack).Length(0)),
		).Explain("The client acknowledges the server's FIN; if its own FIN had not left yet, it follows, and the server acknowledges it.",
			"客户端回ack; 如果客户端的fin还没有发出, 就接着发送, 服务端回ack"),
	)
}
