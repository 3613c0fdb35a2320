// Package peer holds the HTTP peers of the blog post tcplab reproduces
// ("socket 模拟收发HTTP包", 2020): its client's request, its server's
// response, and the loop with which its server answers every request on a
// kept-alive connection until the client closes. Server and Client are
// those peers as a scenario's; AcceptRequest and Exchange are the
// preambles that scenarios with peers of their own share. A scenario of
// your own can use them, or any program at all.
package peer

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

// Response is the blog post's response: its server answers every request
// with this status, these headers and the body ResponseBody.
const (
	ResponseBody = "great"
	Response     = "HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"X-Frame-Options: SAMEORIGIN\r\n" +
		"Content-Length: 5\r\n" +
		"\r\n" + ResponseBody
)

// Host is the Host header of the blog post's request, kept as it was so
// that the request has the same length whatever port a scenario runs on.
const Host = "192.168.0.101:8000"

// Request builds the blog post's request: GET or POST /blog/ with its
// headers and a body of n copies of fill.
func Request(method string, n int, fill byte) []byte {
	host := Host
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

// GetRequest is the blog post's GET request, with an empty body.
func GetRequest() []byte { return Request("GET", 0, 'a') }

// ReadRequest reads one HTTP request, body included. It returns io.EOF when
// the client closed its side before a new request began.
func ReadRequest(r *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(r)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return req, nil
}

// ReadAnyResponse reads one HTTP response of any status, body included:
// what a client does when the server is the user's own.
func ReadAnyResponse(r *bufio.Reader) error {
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

// ReadResponse reads one HTTP response and checks it is the blog post's.
func ReadResponse(r *bufio.Reader) error {
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read response body: %w", err)
	}
	if resp.StatusCode != 200 || string(body) != ResponseBody {
		return fmt.Errorf("unexpected response %q %q", resp.Status, body)
	}
	return nil
}

// Conn is the connection Serve answers on: a *net.TCPConn, or anything
// that can shut its write side down.
type Conn interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// Serve answers every request on c with Response after waiting think (the
// blog post's server waits on input() before it answers), until the client
// closes its side. Then it waits linger and shuts its write side down, as
// that server does when recv returns nothing, reads until the client's
// end, and closes c.
func Serve(ctx context.Context, c Conn, think, linger time.Duration) error {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		_, err := ReadRequest(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := sleep(ctx, think); err != nil {
			return err
		}
		if _, err := c.Write([]byte(Response)); err != nil {
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

// Exchange sends req on c and reads the blog post's response to it. It
// returns the reader it read with, which may hold what the server sent
// after the response.
func Exchange(c io.ReadWriter, req []byte) (*bufio.Reader, error) {
	if _, err := c.Write(req); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	r := bufio.NewReader(c)
	if err := ReadResponse(r); err != nil {
		return nil, err
	}
	return r, nil
}

// Server is the blog post's server as a scenario's: it accepts one
// connection (control, when not nil, sets socket options before bind, as
// for lab.Env.Accept) and answers every request on it at once until the
// client closes, then closes too.
func Server(control func(fd int) error) func(context.Context, *lab.Env) error {
	return func(ctx context.Context, env *lab.Env) error {
		c, err := env.Accept(ctx, control)
		if err != nil {
			return err
		}
		return Serve(ctx, c, 0, 0)
	}
}

// Client is the blog post's client as a scenario's: it connects, sends
// req, reads the response and closes first.
func Client(req []byte) func(context.Context, *lab.Env) error {
	return func(ctx context.Context, env *lab.Env) error {
		c, err := env.Connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := Exchange(c, req); err != nil {
			return err
		}
		return c.Close()
	}
}

// AcceptRequest accepts one connection as lab.Env.Accept does and reads
// its first request. It returns the connection, which the caller closes,
// and the reader that holds whatever the client sent after the request.
func AcceptRequest(ctx context.Context, env *lab.Env, control func(fd int) error) (*net.TCPConn, *bufio.Reader, error) {
	c, err := env.Accept(ctx, control)
	if err != nil {
		return nil, nil, err
	}
	r := bufio.NewReader(c)
	if _, err := ReadRequest(r); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, r, nil
}
