package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"strings"
	"sync"

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// httpRequests is how many requests each real client sends on its one
// kept-alive connection.
const httpRequests = 2

// curlPath returns curl's path, or "" when it is not installed.
func curlPath() string {
	p, err := exec.LookPath("curl")
	if err != nil {
		return ""
	}
	return p
}

// HTTPRealClient shows the blog post's hand-written server answering real HTTP
// clients: Go's net/http client, then curl when it is installed. Both
// reuse one kept-alive connection for two requests, then close it.
func HTTPRealClient() *lab.Scenario {
	return &lab.Scenario{
		Name:            "http-real-client",
		Summary:         "the blog post's server answers real HTTP clients (Go's net/http, then curl): two requests on one kept-alive connection each, then the client closes",
		SummaryZH:       "博客文章的服务端回应真实的HTTP客户端 (Go的net/http, 然后curl): 每个都在一个保持的连接上发两个请求, 然后客户端关闭",
		AcceptsClient:   true,
		ClientSummary:   "the blog post's server answers your client (%s): its first connection is judged, requests answered on a kept-alive connection, then the client closes",
		ClientSummaryZH: "博客文章的服务端回应你的客户端 (%s): 评判它的第一个连接, 在一个保持的连接上回应请求, 然后客户端关闭",
		// The blog post's server, with a thread per connection as the blog post's
		// has, until the client is done.
		Server: func(ctx context.Context, env *lab.Env) error {
			ln, err := env.Listen(ctx, nil)
			if err != nil {
				return err
			}
			stop := context.AfterFunc(ctx, func() { ln.Close() })
			defer stop()
			go func() { <-env.ClientDone(); ln.Close() }()
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for {
				c, err := ln.Accept()
				if err != nil {
					break // the listener closed: the client is done
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := peer.Serve(ctx, c.(*net.TCPConn), 0, 0); err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			return <-errs
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			if err := goClient(ctx, env); err != nil {
				return fmt.Errorf("net/http: %w", err)
			}
			curl := curlPath()
			if curl == "" {
				env.Record("%s", env.Text("curl is not installed: only Go's client ran", "没有安装 curl: 只运行了 Go 的客户端"))
				return nil
			}
			url := "http://" + env.Addr + "/blog/"
			out, err := exec.CommandContext(ctx, curl, "-sS", "--max-time", "10", url, url).CombinedOutput()
			if err != nil {
				return fmt.Errorf("curl: %v: %s", err, out)
			}
			if string(out) != strings.Repeat(peer.ResponseBody, httpRequests) {
				return fmt.Errorf("curl printed %q", out)
			}
			env.Record(env.Text("curl %s %s: printed %q, both requests on one connection", "curl %s %s: 输出 %q, 两个请求在同一个连接上"), url, url, out)
			return nil
		},
		Steps: func(opt lab.Options) []expect.Step {
			if opt.AnyClient() {
				return anyHTTPClient()
			}
			var steps []expect.Step
			for stream, who := range []string{"Go's net/http client", "curl"} {
				if stream == 1 && curlPath() == "" {
					break
				}
				for _, st := range expect.Handshake() {
					steps = append(steps, st.On(stream))
				}
				exchange := expect.OneOf(expect.Seq(
					expect.C2S(pshAck).On(stream).WithData().Explain(
						"The client sends an HTTP request.", "客户端发送http请求"),
					// The server answers at once, so its ACK usually
					// rides on the response; the delayed ACK may win.
					expect.S2C(ack).On(stream).Length(0).Optional().Explain(
						"The server's kernel acknowledges the request.", "服务端回ack"),
					expect.S2C(pshAck).On(stream).Length(len(peer.Response)).Explain(
						"The server sends the blog post's response, which the client parses as HTTP/1.1 with Content-Length: 5: the connection stays open.",
						"服务端发送博客文章里的响应, 客户端把它当作HTTP/1.1解析, 连接保持打开"),
					// The client sends its next request (or its FIN) at
					// once; its delayed ACK of the response rides on it.
					expect.C2S(ack).On(stream).Length(0).Optional().Explain(
						"The client acknowledges the response.", "客户端回ack"),
				)).Times(httpRequests, httpRequests).Explain(
					fmt.Sprintf("%s sends %d requests on the same connection (keep-alive) and reads each response.", who, httpRequests),
					fmt.Sprintf("%s在同一个连接上发送%d个请求(keep-alive)并读取每个响应", who, httpRequests))
				steps = append(steps, exchange)
				for _, st := range expect.ClientCloses() {
					steps = append(steps, st.On(stream))
				}
			}
			return steps
		},
	}
}

// goClient sends the requests with Go's net/http client on one
// connection, checks that the second reused the first's connection, and
// closes it.
func goClient(ctx context.Context, env *lab.Env) error {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return env.Dial(ctx) },
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "http://" + env.Addr + "/blog/"
	for i := 0; i < httpRequests; i++ {
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "GET", url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(bufio.NewReader(resp.Body))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || string(body) != peer.ResponseBody {
			return fmt.Errorf("got %s %q", resp.Status, body)
		}
		if i > 0 && !reused {
			return fmt.Errorf("request %d opened a new connection instead of reusing the kept-alive one", i+1)
		}
		env.Record(env.Text("net/http: GET %s: %s %q (connection reused: %v)", "net/http: GET %s: %s %q (连接复用: %v)"), url, resp.Status, body, reused)
	}
	return nil
}

// anyHTTPClient is what http-real-client asks of any HTTP client, the
// user's own included, on its first connection: requests answered on a
// kept-alive connection, then a graceful close, a FIN and not a RST.
func anyHTTPClient() []expect.Step {
	return append(append(expect.Handshake(),
		expect.OneOf(expect.Seq(
			expect.C2S(pshAck).WithData().Explain("The client sends an HTTP request.", "客户端发送http请求"),
			// How the client's requests and ACKs interleave with the
			// server's ACKs is the client's business.
			expect.Either(expect.C2S(pshAck).WithData(), expect.C2S(ack), expect.S2C(ack).Length(0)).AnyNumber(),
			expect.S2C(pshAck).WithData().Explain("The server sends its response.", "服务端发送响应"),
			expect.C2S(ack).Length(0).Optional(),
		// Two requests at least: one request proves nothing of keep-alive
		// (a keep-alive probe's ACK is not a second request).
		)).AtLeast(httpRequests).Explain("The client's requests, at least two, each answered with the blog post's response on the same connection.",
			"客户端的请求 (至少两个), 每个都在同一个连接上得到博客文章里的响应"),
	), expect.ClientCloses()...)
}
