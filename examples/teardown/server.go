// Package teardown is an example of a project that tests what its own
// server does on the wire with tcplab. Its server is a line echo service
// that closes first when the client says BYE; teardown_test.go asserts, in
// a plain go test, that the close is a graceful FIN exchange begun by the
// server, and never a RST.
package teardown

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Server answers each line a client sends with the line in upper case.
// When the client sends BYE, the server says so and closes the connection
// itself: it is the active closer.
type Server struct {
	// Abort makes the server close with SO_LINGER 0, which sends a RST
	// instead of a FIN: the bug the test is there to catch.
	Abort bool
}

// Serve accepts connections on ln and serves each until ctx ends or ln is
// closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go s.serveConn(c.(*net.TCPConn))
	}
}

func (s *Server) serveConn(c *net.TCPConn) error {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) == "BYE" {
			break
		}
		if _, err := io.WriteString(c, strings.ToUpper(line)); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(c, "bye\n"); err != nil {
		return err
	}
	if s.Abort {
		c.SetLinger(0)
		return c.Close()
	}
	// Close our side, then wait for the client's FIN, so that the last
	// ACK is the kernel's business and not cut short.
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("shutdown(SHUT_WR): %w", err)
	}
	_, err := io.Copy(io.Discard, r)
	return err
}
