package teardown

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
)

// Scenario is a conversation with srv: the client sends "hello", reads the
// echo, says BYE and waits for the server to close. On the wire it must
// show the handshake, the two exchanges, and a graceful close begun by the
// server.
func Scenario(srv *Server) *lab.Scenario {
	return &lab.Scenario{
		Name:    "echo-teardown",
		Summary: "the echo server closes first after BYE: FIN from the server, then the client's",
		Server: func(ctx context.Context, env *lab.Env) error {
			ln, err := env.Listen(ctx, nil)
			if err != nil {
				return err
			}
			// Serve until the client is done, as a real server would run.
			ctx, cancel := context.WithCancel(ctx)
			go func() { <-env.ClientDone(); cancel() }()
			return srv.Serve(ctx, ln)
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for _, say := range []string{"hello\n", "BYE\n"} {
				if _, err := io.WriteString(c, say); err != nil {
					return err
				}
				if _, err := r.ReadString('\n'); err != nil {
					return fmt.Errorf("after %q: %w", say, err)
				}
			}
			// The server closes: read to its FIN, then close our side.
			if _, err := io.Copy(io.Discard, r); err != nil {
				return fmt.Errorf("waiting for the server's FIN: %w", err)
			}
			return c.Close()
		},
		Steps: func(lab.Options) []expect.Step {
			// After the handshake, each line and its answer. Either side's
			// kernel may acknowledge a line at once (Linux's quick ACKs at
			// the start of a connection) or let the ACK ride on its next
			// segment: those bare ACKs are optional.
			serverACK := expect.S2C(expect.ACK).Length(0).Optional()
			clientACK := expect.C2S(expect.ACK).Length(0).Optional()
			steps := expect.Handshake()
			steps = append(steps,
				expect.C2S(expect.PSH|expect.ACK).SeqNum(1).Length(6).Explain("The client sends hello."),
				serverACK,
				expect.S2C(expect.PSH|expect.ACK).SeqNum(1).Length(6).Explain("The server echoes HELLO."),
				clientACK,
				expect.C2S(expect.PSH|expect.ACK).SeqNum(7).Length(4).Explain("The client says BYE."),
				serverACK,
				expect.S2C(expect.PSH|expect.ACK).SeqNum(7).Length(4).Explain("The server says bye."),
				clientACK,
			)
			// The point of the test: the server closes first, gracefully.
			return append(steps, expect.ServerCloses()...)
		},
	}
}
