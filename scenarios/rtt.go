package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/path"
	"github.com/tcplab/tcplab/lab/peer"
	"github.com/tcplab/tcplab/lab/sockstat"
)

// The rtt scenario's path and transfer.
const (
	rttPath = "delay=20ms" // one way: a round trip of 40 ms
	// rttBulk is the body of the second response: enough for slow start
	// to double the window six or seven times (10, 20, 40, ... segments
	// of 1448 bytes), and few enough for the delay line, which holds
	// 1000 packets per direction, to carry every flight without a drop.
	rttBulk = 1 << 20
	// rttIW is Linux's initial congestion window (RFC 6928), in
	// segments: all the server may send before an ACK comes back.
	rttIW = 10
	// rttFirstFlight is the most the server can send of the transfer
	// before an ACK of it comes back: the initial window, grown by one
	// for the one data segment (the first response) acknowledged before.
	rttFirstFlight = rttIW + 1
	// rttSamples bounds the sampling of the server's socket: one sample
	// per round trip, for at most this many round trips.
	rttSamples = 50
)

// pathRTT returns the round trip of the path a scenario runs on: its own
// path desc, or the one -path gives in its place; 0 when there is none or
// it cannot be read (the run refuses a bad -path before any step is
// judged).
func pathRTT(opt lab.Options, desc string) time.Duration {
	if opt.Path != "" {
		desc = opt.Path
	}
	p, err := path.Parse(desc)
	if err != nil {
		return 0
	}
	return p.C2S.Delay + p.S2C.Delay
}

// RTT is the blog post's exchange across a path with a round trip of
// 40 ms, as between two hosts some distance apart: the handshake, the
// request and its ACK each take a round trip, the server's keep-alive
// timer runs as on the loopback; then, on the same kept-alive connection,
// a second request is answered with 1 MiB, and slow start doubles the
// server's congestion window every round trip, as the kernel's own view
// of the socket (sampled once per round trip) shows.
func RTT() *lab.Scenario {
	return &lab.Scenario{
		Name:      "rtt",
		Summary:   "the blog post's exchange across a 40 ms round trip (client 192.168.0.2, server 192.168.0.101): every answer a round trip late, the ACK of the request, keep-alive as on the loopback; then 1 MiB on the same connection, slow start doubling the server's cwnd per round trip (sampled from the kernel)",
		SummaryZH: "博客文章的会话, 经过往返时间40毫秒的路径 (客户端192.168.0.2, 服务端192.168.0.101): 每个回应都晚一个往返时间, 请求的ack, keep-alive和回环接口上一样; 然后在同一个连接上传1 MiB, 慢启动使服务端的拥塞窗口每个往返时间翻一倍 (从内核采样)",
		Path:      rttPath,
		// A thousand segments in a third of a second: the capture is
		// batched as bulk's is, so that none is dropped.
		HighRate: true,
		Timeout:  20 * time.Second,
		// By design the story waits for the keep-alive timer, and for
		// about a dozen round trips: the handshake, the request, the
		// response, the probe, seven flights of slow start, the close.
		Wait: func(opt lab.Options) time.Duration { return keepAliveWait(opt) + 12*pathRTT(opt, rttPath) },
		Server: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			idle := env.Options.Idle()
			if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: idle, Count: 9}); err != nil {
				return fmt.Errorf("SO_KEEPALIVE: %w", err)
			}
			r := bufio.NewReader(c)
			if _, err := peer.ReadRequest(r); err != nil {
				return err
			}
			if err := env.Sleep(ctx, keepAliveWait(env.Options), fmt.Sprintf(env.Text("the server's keep-alive timer (idle %v) fires before it answers, a round trip away", "服务端的保活定时器 (空闲 %v) 在它回答之前触发, 隔一个往返"), idle)); err != nil {
				return err
			}
			if _, err := c.Write([]byte(peer.Response)); err != nil {
				return err
			}
			if _, err := peer.ReadRequest(r); err != nil {
				return err
			}
			if err := sendWatchingCwnd(ctx, env, c, rttBulkResponse()); err != nil {
				return err
			}
			return peer.Serve(ctx, c, 0, 0)
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			start := time.Now()
			r, err := peer.Exchange(c, peer.GetRequest())
			if err != nil {
				return err
			}
			env.Record(env.Text("client: the first response came %v after the request", "客户端: 请求 %v 后第一个回应到达"), time.Since(start).Round(time.Millisecond))
			start = time.Now()
			if _, err := c.Write(peer.GetRequest()); err != nil {
				return fmt.Errorf("write the second request: %w", err)
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				return fmt.Errorf("read the bulk response: %w", err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != rttBulk {
				return fmt.Errorf("bulk response: %d bytes of %d, %v", n, rttBulk, err)
			}
			d := time.Since(start)
			env.Metric("bulk_seconds", d.Seconds())
			env.Metric("bulk_mbit_per_s", float64(n)*8/d.Seconds()/1e6)
			env.Record(env.Text("client: %d bytes in %v (%.1f Mbit/s), %.1f round trips of %v", "客户端: %d 字节, 用时 %v (%.1f Mbit/s), %.1f 个 %v 的往返"), n, d.Round(time.Millisecond),
				float64(n)*8/d.Seconds()/1e6, d.Seconds()/pathRTT(env.Options, rttPath).Seconds(), pathRTT(env.Options, rttPath))
			return c.Close()
		},
		Steps: rttSteps,
	}
}

// rttBulkResponse is the blog post's response head announcing rttBulk
// bytes, and the body.
func rttBulkResponse() []byte {
	head, _, _ := strings.Cut(peer.Response, "\r\n\r\n")
	head = strings.Replace(head, "Content-Length: 5", fmt.Sprintf("Content-Length: %d", rttBulk), 1)
	return append([]byte(head+"\r\n\r\n"), strings.Repeat("g", rttBulk)...)
}

// sendWatchingCwnd writes b on c and, while the kernel sends it, samples
// the server's socket once per round trip from the kernel (INET_DIAG, as
// ss -ti does): the congestion window each round trip, as events and
// metrics of the run. Sampling stops when everything is acknowledged, and
// after rttSamples round trips whatever happens.
func sendWatchingCwnd(ctx context.Context, env *lab.Env, c *net.TCPConn, b []byte) error {
	// Slow start as textbooks tell it is cubic's and reno's; BBR, the
	// default of some kernels, sizes its window from a model instead.
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, "cubic")
	}); err != nil || serr != nil {
		env.Record(env.Text("server: cannot use cubic (%v %v): the kernel's default congestion control runs", "服务端: 不能用 cubic (%v %v): 用内核默认的拥塞控制"), err, serr)
	}
	// The server's socket is in this process's namespace: the run's, the
	// server's host.
	s, err := sockstat.New(sockstat.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	local, remote := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
	f := sockstat.Filter{Tuples: []sockstat.Tuple{{A: local, B: remote}}}
	sample := func() (sockstat.Socket, bool) {
		socks, err := s.Sample(f)
		if err != nil {
			return sockstat.Socket{}, false
		}
		for _, so := range socks {
			if so.Local == unmap(local) && so.Info != nil {
				return so, true
			}
		}
		return sockstat.Socket{}, false
	}

	rtt := pathRTT(env.Options, rttPath)
	if rtt <= 0 {
		rtt = 40 * time.Millisecond
	}
	var cwnds []string
	begin := time.Now()
	// report records sample i; it says whether everything is
	// acknowledged.
	report := func(i int) bool {
		so, ok := sample()
		if !ok {
			return false
		}
		in := so.Info
		ss := env.Text("none (initial slow start)", "无 (初始慢启动)")
		if in.SndSsthresh != sockstat.InfiniteSsthresh {
			ss = fmt.Sprint(in.SndSsthresh)
		}
		env.Record(env.Text("server, round trip %d (+%v): cwnd %d segments, ssthresh %s, srtt %v, rttvar %v, rto %v, unacked %d, bytes acked %d, %s",
			"服务端, 第 %d 个往返 (+%v): cwnd %d 个包, ssthresh %s, srtt %v, rttvar %v, rto %v, unacked %d, bytes acked %d, %s"),
			i, time.Since(begin).Round(time.Millisecond), in.SndCwnd, ss, in.RTT, in.RTTVar, in.RTO, in.Unacked, in.BytesAcked, so.Cong)
		env.Metric(fmt.Sprintf("cwnd_rtt_%02d", i), float64(in.SndCwnd))
		cwnds = append(cwnds, fmt.Sprint(in.SndCwnd))
		return in.Unacked == 0 && so.SendQ == 0
	}
	// Sample 0, before the write: the initial window.
	report(0)
	begin = time.Now()
	written := make(chan error, 1)
	go func() {
		_, err := c.Write(b)
		written <- err
	}()
	tick := time.NewTicker(rtt)
	defer tick.Stop()
	done := false
	for i := 1; i <= rttSamples; i++ {
		select {
		case err := <-written:
			if err != nil {
				return fmt.Errorf("write the bulk response: %w", err)
			}
			done = true
			<-tick.C
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if report(i) && done {
			break
		}
	}
	if !done {
		if err := <-written; err != nil {
			return fmt.Errorf("write the bulk response: %w", err)
		}
	}
	env.Record(env.Text("server: cwnd once per round trip: %s", "服务端: 每个往返的 cwnd: %s"), strings.Join(cwnds, " "))
	return nil
}

// unmap returns a with an IPv4-mapped address as plain IPv4, as sockstat
// reports addresses.
func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

// rttSteps are the segments of RTT, as the client's side of the path sees
// them. The times they check are the ones TCP guarantees: an answer
// cannot come back sooner than a round trip (the path never delivers
// early), and the server sends no more than its initial window before an
// ACK of the transfer can have reached it. How many flights the transfer
// takes, and where the ACKs fall between them, the kernel decides
// (delayed ACKs, HyStart, the receiver's window): the steps leave that
// free.
func rttSteps(opt lab.Options) []expect.Step {
	rtt := pathRTT(opt, rttPath)
	req, resp := len(peer.GetRequest()), len(peer.Response)
	// Times of segments that one step each matches, for the checks of
	// later steps.
	var synAt, reqAt, bulkAt time.Time
	var bulkSeq uint32
	bulkLen := 0
	atLeastRTT := func(since *time.Time, what string) func(*capture.Segment) error {
		return func(s *capture.Segment) error {
			if d := s.Time.Sub(*since); d < rtt {
				return fmt.Errorf("%v after %s, sooner than the round trip (%v)", d.Round(time.Microsecond), what, rtt)
			}
			return nil
		}
	}
	firstBulk := func(s *capture.Segment) error {
		bulkAt, bulkSeq, bulkLen = s.Time, s.Seq, s.Len
		return nil
	}
	// A segment past the initial window left the server after an ACK of
	// the transfer reached it: one round trip after the first segment
	// reached the client, at the earliest.
	pastIW := func(s *capture.Segment) error {
		if bulkLen == 0 || int(s.Seq-bulkSeq) < rttFirstFlight*bulkLen {
			return nil
		}
		if d := s.Time.Sub(bulkAt); d < rtt {
			return fmt.Errorf("byte %d of the transfer, past the first flight of %d segments, came %v after its first segment: sooner than the round trip (%v)",
				s.Seq-bulkSeq, rttFirstFlight, d.Round(time.Microsecond), rtt)
		}
		return nil
	}
	bulkData := func(flags capture.Flags) expect.Step {
		return expect.S2C(flags).WithData().Checking(pastIW).Explain(
			"A segment of the transfer. Each ACK that comes back lets the server send as many new segments as it acknowledges, and one more per segment acknowledged: the window doubles every round trip (slow start).",
			"传输的一段数据. 每收到一个ack, 服务端就可以多发它确认的段数再加上同样多的段: 窗口每个往返时间翻一倍 (慢启动)")
	}
	clientACK := expect.C2S(ack).Length(0).Explain(
		"The client's kernel acknowledges the data as it arrives (every second segment, or at once while it is in quick-ACK mode).",
		"客户端边收数据边确认 (每两个段一个ack, 或者在quick ack模式下每段一个)")

	steps := []expect.Step{
		expect.C2S(expect.SYN).SeqNum(0).Checking(func(s *capture.Segment) error {
			synAt = s.Time
			return expect.LinuxSYNOptions(s)
		}).Explain(
			"The client (192.168.0.2) calls connect(): its SYN leaves on its side of the path. The capture is the client's, so every time below is as the client sees it.",
			"客户端(192.168.0.2)调用connect, syn包从客户端这一侧出发. 抓包在客户端, 下面的时间都是客户端看到的"),
		expect.S2C(synAck).SeqNum(0).AckNum(1).Checking(func(s *capture.Segment) error {
			if err := atLeastRTT(&synAt, "the SYN")(s); err != nil {
				return err
			}
			return expect.LinuxSYNOptions(s)
		}).Explain(
			fmt.Sprintf("The SYN/ACK comes back one round trip (%v) after the SYN: %v to reach the server, %v back. On the loopback it took microseconds. The client's kernel takes this first measure of the RTT.", rtt, rtt/2, rtt/2),
			fmt.Sprintf("syn+ack在syn之后一个往返时间(%v)才回来: 去%v, 回%v. 在回环接口上只要几微秒. 客户端内核由此第一次测得RTT", rtt, rtt/2, rtt/2)),
		expect.C2S(ack).SeqNum(1).AckNum(1).Length(0).Explain(
			"The client acknowledges at once: for the client the connection is established now, for the server only when this ACK arrives, half a round trip later.",
			"客户端马上回ack: 对客户端来说连接已经建立, 对服务端来说要等半个往返时间后这个ack到达"),
		expect.Note("The handshake cost the client one round trip before it could send a byte: the price of every new TCP connection, and why HTTP keeps connections alive.",
			"握手让客户端在发送第一个字节之前花了一个往返时间: 这是每个新TCP连接的代价, 也是HTTP要保持连接(keep-alive)的原因"),
		sized(expect.C2S(pshAck).SeqNum(1), req, opt).Checking(func(s *capture.Segment) error {
			reqAt = s.Time
			return nil
		}).Explain(
			"The client sends the blog post's GET request.", "客户端发送博客文章的GET请求"),
		acking(expect.S2C(ack), 1+req, opt).Length(0).Checking(atLeastRTT(&reqAt, "the request")).Explain(
			"The server's kernel acknowledges the request, and the client sees the ACK a round trip after it sent the request at the earliest: the ACK is itself a round trip away. "+
				"Whether the server's kernel sent it at once (quick ACK, early in a connection) or after its delayed-ACK timer (40 ms at least on Linux), the time adds to the round trip; on the loopback the delayed ACK was all there was, here it is as long as the path.",
			"服务端内核确认请求. 客户端最早在发出请求一个往返时间之后才看到这个ack. 不管服务端是马上确认 (连接初期的quick ack) 还是等延迟确认定时器 (Linux至少40毫秒), 这个时间都要加在往返时间上; 在回环接口上只有延迟确认的时间, 这里它和路径一样长"),
		// The server waits 1.5 idle times, so one probe is certain; a
		// busy machine may delay the answer past a second probe.
		expect.OneOf(expect.Seq(
			expect.S2C(ack).SeqNum(0).Length(0).With(capture.KeepAlive).Explain(
				fmt.Sprintf("Nothing has reached the server for its keep-alive idle time (%v): its kernel sends a keep-alive probe, one below the next byte. The timer counts from the last segment the server received, whatever the round trip: keep-alive works as on the loopback.", opt.Idle()),
				fmt.Sprintf("服务端已经%v没有收到任何数据, 于是发送keep-alive探测包 (序列号比下一个字节小一). 这个定时器从服务端最后收到的包算起, 与往返时间无关: keep-alive和在回环接口上一样", opt.Idle())),
			expect.C2S(ack).Length(0).With(capture.KeepAliveACK).Explain(
				"The client's kernel answers the probe at once; the answer reaches the server half a round trip later.",
				"客户端马上回应探测包, 回应在半个往返时间后到达服务端"),
		)).Times(1, 3).Explain("Keep-alive probe and its ACK, after the idle time.", "keep-alive包和它的ack"),
		sized(expect.S2C(pshAck).SeqNum(1), resp, opt).Explain(
			"The server answers with the blog post's response.", "服务端发送博客文章的响应"),
		// The client reads the response and at once sends its second
		// request, on which its ACK of the response may ride.
		acking(expect.C2S(ack), 1+resp, opt).Length(0).Optional().Explain(
			"The client's kernel acknowledges the response.", "客户端确认响应"),
		at(sized(expect.C2S(pshAck), req, opt), 1+req, opt).Explain(
			"The connection is kept alive: the client sends a second GET on it, with no new handshake, and the server will answer it with 1 MiB.",
			"连接保持着(keep-alive): 客户端在同一个连接上发送第二个GET请求, 不需要新的握手, 服务端将用1 MiB来响应"),
		// The server's kernel acknowledges the request at once (quick
		// ACK) and the application may take longer to start writing.
		acking(expect.S2C(ack), 1+2*req, opt).Length(0).Optional().Explain(
			"The server's kernel acknowledges the second request before its application has begun to answer.",
			"服务端内核在应用开始响应之前先确认第二个请求"),
		// The server answers the second request at once, but a busy
		// machine can hold its application past the keep-alive idle time
		// (soak round 481: 1.17 s, load 15-20), and then its kernel
		// probes, as it must on any connection idle that long (RFC 1122
		// 4.2.3.6 leaves the interval to the host; Linux's is the
		// socket's). The probe is one below the server's next byte.
		expect.OneOf(expect.Seq(
			at(expect.S2C(ack), resp, opt).Length(0).With(capture.KeepAlive).Explain(
				fmt.Sprintf("The server's application has not begun to answer for its keep-alive idle time (%v), which a busy machine can make it take: its kernel probes the idle connection again.", opt.Idle()),
				fmt.Sprintf("服务端的应用在keep-alive空闲时间 (%v) 内还没开始响应 (繁忙的机器会让它这么慢): 内核再次探测这个空闲的连接", opt.Idle())),
			expect.C2S(ack).Length(0).With(capture.KeepAliveACK).Explain(
				"The client's kernel answers the probe.", "客户端回应探测包"),
		)).Times(0, 2).Explain("Keep-alive probes while the server is slow to answer the second request, if it is.", "如果服务端迟迟不响应第二个请求, 会有keep-alive探测"),
		expect.Either(
			at(expect.S2C(ack), 1+resp, opt).WithData().Checking(firstBulk),
			at(expect.S2C(pshAck), 1+resp, opt).WithData().Checking(firstBulk),
		).Explain(
			fmt.Sprintf("The first segment of the 1 MiB answer, a round trip after the request. The server's congestion window starts at %d segments (Linux's initial window, one more for the first response acknowledged): that much it may send before any ACK of it comes back.", rttIW),
			fmt.Sprintf("1 MiB响应的第一个段, 在请求之后一个往返时间到达. 服务端的拥塞窗口从%d个段开始 (Linux的初始窗口, 第一个响应被确认后再加一): 在收到ack之前最多发这么多", rttIW)),
		expect.Either(bulkData(ack), bulkData(pshAck), clientACK).AtLeast(1).Explain(
			fmt.Sprintf("Slow start. The first flight (%d segments) crosses the path; the client's ACKs take half a round trip back; each lets the server send twice what it acknowledges, so each round trip brings a flight twice the last: 10, 20, 40, 80 segments... "+
				"The capture shows the flights as bursts a round trip apart, and the kernel's own view of the server's socket, sampled once per round trip (the run's events and metrics cwnd_rtt_NN), shows cwnd doubling until the transfer ends or HyStart sees the round trip grow and leaves slow start. "+
				"No segment past the initial window arrives sooner than a round trip after the first.", rttIW),
			fmt.Sprintf("慢启动. 第一批(%d个段)穿过路径, 客户端的ack用半个往返时间回到服务端, 每个ack让服务端发出两倍于它确认的数据, 所以每个往返时间的一批是上一批的两倍: 10, 20, 40, 80个段... "+
				"抓包里各批数据之间相隔一个往返时间; 每个往返时间从内核采样一次服务端的socket (运行的事件和指标cwnd_rtt_NN), 可以看到cwnd翻倍, 直到传输结束或者HyStart发现往返时间变长而退出慢启动. "+
				"初始窗口之后的段不会早于第一个段之后一个往返时间到达", rttIW)),
	}
	return append(steps, expect.ClientCloses()...)
}
