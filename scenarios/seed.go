package scenarios

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tcplab/tcplab/lab"
)

// The seed's response: the server answers every request with this status,
// these headers and the body "great".
const (
	responseBody = "great"
	response     = "HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"X-Frame-Options: SAMEORIGIN\r\n" +
		"Content-Length: 5\r\n" +
		"\r\n" + responseBody
)

// seedHost is the Host header of the seed's request, kept as it was so that
// the request has the same length whatever port a scenario runs on.
const seedHost = "192.168.0.101:8000"

// request builds the seed client's request: GET or POST /blog/ with the
// seed's headers and a body of n copies of fill.
func request(method string, n int, fill byte) []byte {
	host := seedHost
	body := strings.Repeat(string(fill), n)
	return []byte(method + " /blog/ HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n", len(body)) +
		"Connection: keep-alive\r\n" +
		"Cache-Control: max-age=0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8\r\n" +
		"User-Agent: Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/45.0.2454.101 Safari/537.36\r\n" +
		"Accept-Language: zh-CN,zh;q=0.8\r\n" +
		"Cookie: Idea-38dabdcb=1a3e1891-7313-4a6c-8141-c158de42e97\r\n" +
		"\r\n" + body)
}

// getRequest is the seed's GET request, with an empty body.
func getRequest() []byte { return request("GET", 0, 'a') }

// readRequest reads one HTTP request, body included. It returns io.EOF when
// the client closed its side before a new request began.
func readRequest(r *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(r)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return req, nil
}

// readAnyResponse reads one HTTP response of any status, body included:
// what the client does when the server is the user's own.
func readAnyResponse(r *bufio.Reader) error {
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("read response body: %w", err)
	}
	return nil
}

// readResponse reads one HTTP response and checks it is the seed's.
func readResponse(r *bufio.Reader) error {
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read response body: %w", err)
	}
	if resp.StatusCode != 200 || string(body) != responseBody {
		return fmt.Errorf("unexpected response %q %q", resp.Status, body)
	}
	return nil
}

// accept listens on the scenario's address (control, when not nil, sets
// socket options before bind) and accepts one connection.
func accept(ctx context.Context, env *lab.Env, control func(fd int) error) (*net.TCPConn, error) {
	ln, err := env.Listen(ctx, control)
	if err != nil {
		return nil, err
	}
	return acceptOne(ctx, ln)
}

// acceptOne accepts one connection and closes the listener: each scenario
// is about one connection.
func acceptOne(ctx context.Context, ln net.Listener) (*net.TCPConn, error) {
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	c, err := ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	return c.(*net.TCPConn), nil
}

// dial connects to the scenario's server; done closes the connection and
// stops the timeout watch closeOnDone sets.
func dial(ctx context.Context, env *lab.Env) (c *net.TCPConn, done func(), err error) {
	c, err = env.Dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	stop := closeOnDone(ctx, c)
	return c, func() { stop(); c.Close() }, nil
}

// closeOnDone closes c when ctx ends, so that a peer blocked on c returns
// at the scenario's timeout. The returned function stops it.
func closeOnDone(ctx context.Context, c net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// serveUntilEOF answers every request on c with the seed's response after
// waiting think (the seed's server waits on input() before it answers),
// until the client closes its side. Then it waits linger and shuts its
// write side down, as the seed's server does when recv returns nothing.
func serveUntilEOF(ctx context.Context, c *net.TCPConn, think, linger time.Duration) error {
	defer c.Close()
	defer closeOnDone(ctx, c)()
	r := bufio.NewReader(c)
	for {
		_, err := readRequest(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := sleep(ctx, think); err != nil {
			return err
		}
		if _, err := c.Write([]byte(response)); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
	}
	if err := sleep(ctx, linger); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("shutdown(SHUT_WR): %w", err)
	}
	// Wait for the client's last ACK to be sent before the socket goes.
	_, err := io.Copy(io.Discard, r)
	return err
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
