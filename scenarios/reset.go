package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// closedPort is a port nothing listens on in the scenario's namespace.
func closedAddr(env *lab.Env) (string, error) {
	host, port, err := net.SplitHostPort(env.Addr)
	if err != nil {
		return "", err
	}
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+1)), nil
}

// Reset shows the two ways a connection meets a reset: a connect() to a
// port where nothing listens, and an abortive close (SO_LINGER 0).
func Reset() *lab.Scenario {
	return &lab.Scenario{
		Name:      "reset",
		Summary:   "RST: connection refused (SYN answered by RST,ACK), then an abortive close with SO_LINGER 0 (RST instead of FIN)",
		SummaryZH: "RST: 连接被拒绝 (SYN被RST,ACK回应), 然后是SO_LINGER为0的异常关闭 (用RST代替FIN)",
		// The refused connection needs a port that nothing listens on,
		// which only a private namespace guarantees.
		NeedsNamespace: true,
		Server: func(ctx context.Context, env *lab.Env) error {
			c, _, err := peer.AcceptRequest(ctx, env, nil)
			if err != nil {
				return err
			}
			if _, err := c.Write([]byte(peer.Response)); err != nil {
				c.Close()
				return err
			}
			// SO_LINGER with a zero timeout: close() discards the socket
			// at once and the kernel sends RST instead of FIN.
			if err := c.SetLinger(0); err != nil {
				c.Close()
				return fmt.Errorf("SO_LINGER 0: %w", err)
			}
			closeErr := c.Close()
			returned := errString(closeErr)
			if closeErr == nil {
				returned = env.Text(returned, "0")
			}
			env.Record(env.Text("server: close() with SO_LINGER {on, 0} returns %v and sends RST", "服务端: 设了 SO_LINGER {on, 0} 的 close() 返回 %v, 并发送 RST"), returned)
			return nil
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			closed, err := closedAddr(env)
			if err != nil {
				return err
			}
			var d net.Dialer
			_, err = d.DialContext(ctx, "tcp", closed)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("connect to %s: want ECONNREFUSED, got %v", closed, err)
			}
			env.Record(env.Text("client: connect(%s) returns ECONNREFUSED ("+syscall.ECONNREFUSED.Error()+")", "客户端: connect(%s) 返回 ECONNREFUSED"), closed)

			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := peer.Exchange(c, peer.GetRequest())
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, r)
			if !errors.Is(err, syscall.ECONNRESET) {
				return fmt.Errorf("read after the server's abortive close: want ECONNRESET, got %v", err)
			}
			env.Record("%s", env.Text("client: recv() after the server's abortive close returns ECONNRESET ("+syscall.ECONNRESET.Error()+")", "客户端: 服务端异常关闭之后 recv() 返回 ECONNRESET"))
			return nil
		},
		Steps: func(opt lab.Options) []expect.Step {
			req := len(peer.GetRequest())
			steps := []expect.Step{
				expect.C2S(capture.SYN).On(0).SeqNum(0).Explain(
					"The client calls connect() to a port where nothing listens: its kernel sends a SYN.",
					"客户端对一个没有监听的端口调用connect, 发送syn包"),
				expect.S2C(capture.RST|capture.ACK).On(0).AckNum(1).Explain(
					"No socket listens on that port, so the server's kernel answers the SYN with RST,ACK (ack = the SYN's seq + 1). connect() fails with ECONNREFUSED, \"connection refused\".",
					"该端口没有监听, 服务端内核用RST,ACK回应syn包, connect返回ECONNREFUSED (connection refused)"),
			}
			for _, st := range expect.Handshake() {
				steps = append(steps, st.On(1))
			}
			return append(steps,
				sized(expect.C2S(pshAck).On(1).SeqNum(1), req, opt).Explain(
					"On a second connection, to the listening port, the client sends the blog post's request.",
					"在第二个连接上, 客户端发送http请求"),
				// The server's kernel acknowledges the request after its
				// delayed-ACK timer unless the response, sent at once,
				// carries the ACK first.
				expect.S2C(ack).On(1).Length(0).Optional().Explain("The server's kernel acknowledges the request.", "服务端回ack"),
				sized(expect.S2C(pshAck).On(1).SeqNum(1), len(peer.Response), opt).Explain(
					"The server sends its response.", "服务端发送http响应"),
				// The client's delayed ACK of the response may or may not
				// leave before the reset arrives.
				expect.C2S(ack).On(1).Length(0).Optional().Explain("The client acknowledges the response.", "客户端回ack"),
				at(expect.S2C(capture.RST|capture.ACK).On(1), 1+len(peer.Response), opt).Explain(
					"The server closes with SO_LINGER {on, 0}: an abortive close. Its kernel discards the connection and sends RST instead of FIN; there is no TIME_WAIT. The client's next recv() fails with ECONNRESET, \"connection reset by peer\".",
					"服务端设置SO_LINGER为0后调用close: 异常关闭, 内核发送RST而不是FIN, 没有TIME_WAIT. 客户端下一次recv返回ECONNRESET (connection reset by peer)"),
			)
		},
	}
}

// errString formats an error for an event, "nil" included.
func errString(err error) string {
	if err == nil {
		return "0 (no error)"
	}
	return err.Error()
}
