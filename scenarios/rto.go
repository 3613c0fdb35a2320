package scenarios

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/impair"
	"github.com/tcplab/tcplab/lab/peer"
	"github.com/tcplab/tcplab/lab/sockstat"
)

// The rto scenario: two requests on one connection across a path with a
// round trip of 40 ms; the server's input hook drops the second request
// and its first retransmission.
const (
	rtoPath = "delay=20ms"
	// rtoLost are the data segments to the server's port that the rule
	// drops, counted from 1 as they arrive: the second request (the
	// first request is segment 1) and the first retransmission of it.
	rtoLost1, rtoLost2 = 2, 3
	// rtoMin is Linux's floor under the retransmission timeout
	// (TCP_RTO_MIN): rto = srtt + max(4 rttvar, 200 ms).
	rtoMin = 200 * time.Millisecond
	// rtoPoll is how often the client samples its socket while it waits
	// for the answer, and rtoPolls how many times at most.
	rtoPoll  = 10 * time.Millisecond
	rtoPolls = 300
	// sackSysctl turns SACK off in the server's namespace: see RTO.
	sackSysctl = "/proc/sys/net/ipv4/tcp_sack"
)

// rtoRules is the key under which Setup hands the installed rule to the
// client, which reports what it dropped.
type rtoRules struct{}

// RTO shows the retransmission timeout. The first request and its answer
// give the client's kernel a measure of the round trip; the second request
// is then dropped on the server's input hook (after the capture, which is
// the client's), and so is its retransmission. Nothing but the client's
// retransmission timer can tell it the request was lost: the timer fires
// after rto = srtt + max(4 rttvar, 200 ms), about 240 ms here, and after
// that loss again after twice as long (exponential backoff), when the
// request gets through.
//
// Setup turns SACK off in the server's namespace (net.ipv4.tcp_sack = 0),
// so that the server's SYN/ACK does not offer it: Linux's tail loss probe,
// which would otherwise send the last segment again before the RTO, needs
// SACK, and this scenario is about the timer alone.
func RTO() *lab.Scenario {
	return &lab.Scenario{
		Name:           "rto",
		Summary:        "a request lost twice across a 40 ms round trip: the client retransmits after its RTO (srtt + 200 ms, about 240 ms), then after twice that (backoff), as the kernel's view of its socket shows",
		SummaryZH:      "一个请求在往返时间40毫秒的路径上丢了两次: 客户端在RTO (srtt + 200毫秒, 约240毫秒) 后重传, 然后等两倍的时间再重传 (退避), 内核对socket的采样也显示了这些",
		NeedsNamespace: true,
		Path:           rtoPath,
		// By design the client waits for two retransmission timeouts, the
		// second twice the first, and about five round trips.
		Wait: func(opt lab.Options) time.Duration {
			rtt := pathRTT(opt, rtoPath)
			return 3*(rtt+rtoMin) + 5*rtt
		},
		Setup: func(ctx context.Context, env *lab.Env) (func(), error) {
			server, err := netip.ParseAddrPort(env.Addr)
			if err != nil {
				return nil, err
			}
			old, err := os.ReadFile(sackSysctl)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", sackSysctl, err)
			}
			if err := os.WriteFile(sackSysctl, []byte("0\n"), 0o644); err != nil {
				return nil, fmt.Errorf("turn SACK off in the server's namespace: %w", err)
			}
			in, err := impair.Install(impair.DropNth(server.Port(), rtoLost1, rtoLost2))
			if err != nil {
				os.WriteFile(sackSysctl, old, 0o644)
				return nil, err
			}
			env.SetValue(rtoRules{}, in)
			return func() {
				in.Remove()
				os.WriteFile(sackSysctl, old, 0o644)
			}, nil
		},
		Server: peer.Server(nil),
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			s, err := socketSampler(c)
			if err != nil {
				return err
			}
			defer s.Close()
			r, err := peer.Exchange(c, peer.GetRequest())
			if err != nil {
				return err
			}
			// The ACK of the response goes now, on its own: were it
			// delayed, it would ride on the request that is lost, and the
			// server would retransmit its response too.
			if err := quickACK(c); err != nil {
				return err
			}
			before, ok := s.sample()
			if !ok {
				return fmt.Errorf("no sample of the client's socket %v", s.local)
			}
			env.Record(env.Text("client before the loss: %s", "丢包之前的客户端: %s"), rtoText(env, before))
			env.Metric("srtt_ms", ms(before.Info.RTT))
			env.Metric("rttvar_ms", ms(before.Info.RTTVar))
			env.Metric("rto_ms", ms(before.Info.RTO))
			env.Progress(env.Text("the second request will be lost twice: retransmissions after about %v and twice that", "第二个请求会丢两次: 大约 %v 后重传, 然后再过两倍的时间"), before.Info.RTO)
			start := time.Now()
			if _, err := c.Write(peer.GetRequest()); err != nil {
				return fmt.Errorf("write the second request: %w", err)
			}
			stop := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				s.watch(env, start, before, stop)
			}()
			err = peer.ReadResponse(r)
			close(stop)
			<-watched
			if err != nil {
				return err
			}
			env.Record(env.Text("client: the answer to the second request came %v after it was written", "客户端: 第二个请求写出 %v 后回答到达"), time.Since(start).Round(time.Millisecond))
			recordDrops(env, rtoRules{})
			return c.Close()
		},
		Steps: rtoSteps,
	}
}

// clientSocket samples one connection's client end in the client's
// namespace.
type clientSocket struct {
	*sockstat.Sampler
	filter sockstat.Filter
	local  netip.AddrPort
}

// socketSampler returns a sampler of c's own end, in the namespace c's
// socket lives in (the client's host on a routed path), which the kernel
// names for a socket's owner (SIOCGSKNS).
func socketSampler(c *net.TCPConn) (*clientSocket, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	nsfd, ierr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { nsfd, ierr = unix.IoctlRetInt(int(fd), unix.SIOCGSKNS) }); err != nil {
		return nil, err
	}
	if ierr != nil {
		return nil, fmt.Errorf("SIOCGSKNS: the client socket's namespace: %w", ierr)
	}
	ns := os.NewFile(uintptr(nsfd), "client netns")
	defer ns.Close()
	s, err := sockstat.New(sockstat.Config{NetNS: ns})
	if err != nil {
		return nil, err
	}
	local, remote := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
	return &clientSocket{Sampler: s, local: unmap(local), filter: sockstat.Filter{Tuples: []sockstat.Tuple{{A: local, B: remote}}}}, nil
}

// sample returns the client's end of the connection, with its tcp_info.
func (s *clientSocket) sample() (sockstat.Socket, bool) {
	socks, err := s.Sample(s.filter)
	if err != nil {
		return sockstat.Socket{}, false
	}
	for _, so := range socks {
		if so.Local == s.local && so.Info != nil {
			return so, true
		}
	}
	return sockstat.Socket{}, false
}

// watch samples the client's socket every rtoPoll until stop is closed
// (rtoPolls times at most), and records each change of its retransmission
// state: the backoff, the RTO, the retransmissions so far.
func (s *clientSocket) watch(env *lab.Env, start time.Time, last sockstat.Socket, stop <-chan struct{}) {
	tick := time.NewTicker(rtoPoll)
	defer tick.Stop()
	for range rtoPolls {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		so, ok := s.sample()
		if !ok || last.Info == nil {
			continue
		}
		if so.Info.Backoff != last.Info.Backoff || so.Info.TotalRetrans != last.Info.TotalRetrans {
			env.Record(env.Text("client +%v: %s", "客户端 +%v: %s"), time.Since(start).Round(time.Millisecond), rtoText(env, so))
			env.Metric(fmt.Sprintf("rto_ms_backoff_%d", so.Info.Backoff), ms(so.Info.RTO))
		}
		last = so
	}
}

// rtoText says what a sample of the client tells of its retransmissions.
func rtoText(env *lab.Env, so sockstat.Socket) string {
	in := so.Info
	var b strings.Builder
	fmt.Fprintf(&b, env.Text("srtt %v, rttvar %v, rto %v, backoff %d, retransmits %d (total %d), unacked %d",
		"srtt %v, rttvar %v, rto %v, backoff %d, retransmits %d (共 %d), unacked %d"),
		in.RTT, in.RTTVar, in.RTO, in.Backoff, in.Retransmits, in.TotalRetrans, in.Unacked)
	if so.Timer == sockstat.TimerOn {
		fmt.Fprintf(&b, env.Text(", retransmission timer fires in %v", ", 重传定时器 %v 后触发"), so.TimerExpires.Round(time.Millisecond))
	}
	return b.String()
}

// ms returns d in milliseconds, for a metric.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// quickACK sends c's pending ACK now (TCP_QUICKACK), if one is waiting for
// the delayed-ACK timer.
func quickACK(c *net.TCPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("TCP_QUICKACK: %w", serr)
	}
	return nil
}

// noSACKPermitted checks the SYN/ACK of a server whose namespace has SACK
// off: the other options as Linux sends them, SACK-permitted absent.
func noSACKPermitted(s *capture.Segment) error {
	o := &s.Options
	if o.SACKPermitted {
		return fmt.Errorf("SACK-permitted offered, though the server's namespace has net.ipv4.tcp_sack = 0")
	}
	if o.MSS == 0 || o.WindowScale < 0 || !o.HasTimestamps {
		return fmt.Errorf("options MSS %d, window scale %d, timestamps %v: want all three", o.MSS, o.WindowScale, o.HasTimestamps)
	}
	return nil
}

// rtoSteps are the segments of RTO, as the client's side of the path sees
// them. The gaps they check are what TCP guarantees: a retransmission
// timer never fires before its RTO, Linux's is never under 200 ms, and
// each expiry doubles it. How much later than that a timer fires depends
// on the machine, so the second gap is held to at least 1.5 times the
// first, not to exactly twice.
func rtoSteps(opt lab.Options) []expect.Step {
	rtt := pathRTT(opt, rtoPath)
	req, resp := len(peer.GetRequest()), len(peer.Response)
	lost := 1 + req // relative seq of the second request
	// Times of the three transmissions of the second request, each
	// matched by one step, for the checks of the next.
	var sent, again time.Time
	first := func(s *capture.Segment) error {
		sent = s.Time
		return nil
	}
	firstRetrans := func(s *capture.Segment) error {
		again = s.Time
		if gap := s.Time.Sub(sent); gap < rtoMin {
			return fmt.Errorf("retransmitted %v after the original, under Linux's minimum RTO (%v)", gap.Round(time.Millisecond), rtoMin)
		}
		return nil
	}
	secondRetrans := func(s *capture.Segment) error {
		gap, prev := s.Time.Sub(again), again.Sub(sent)
		if gap < 2*rtoMin || gap < prev*3/2 {
			return fmt.Errorf("retransmitted again %v after the first retransmission, which came %v after the original: want at least %v and about twice as long",
				gap.Round(time.Millisecond), prev.Round(time.Millisecond), 2*rtoMin)
		}
		return nil
	}
	request := at(sized(expect.C2S(pshAck), req, opt), lost, opt)

	steps := []expect.Step{
		expect.C2S(expect.SYN).SeqNum(0).Checking(expect.LinuxSYNOptions).Explain(
			"The client (192.168.0.2) calls connect(): its SYN, with MSS, window scale, SACK-permitted and timestamps. The capture is the client's.",
			"客户端(192.168.0.2)调用connect, 发送syn包, 带MSS, 窗口扩大, SACK-permitted和时间戳选项. 抓包在客户端"),
		expect.S2C(synAck).SeqNum(0).AckNum(1).Checking(noSACKPermitted).Explain(
			fmt.Sprintf("The server's SYN/ACK, one round trip (%v) later. Its namespace has SACK turned off (net.ipv4.tcp_sack = 0), so it does not offer SACK: without SACK Linux sends no tail loss probe, and only the retransmission timer is left to find a loss at the end of what was sent. The round trip this handshake took is the kernel's first RTT sample.", rtt),
			fmt.Sprintf("服务端的syn+ack, 一个往返时间(%v)之后到达. 服务端的命名空间关掉了SACK (net.ipv4.tcp_sack = 0), 所以它不提供SACK: 没有SACK, Linux就不发尾部丢失探测(TLP), 发送末尾的丢包只能靠重传定时器发现. 握手的往返时间是内核的第一个RTT样本", rtt)),
		expect.C2S(ack).SeqNum(1).AckNum(1).Length(0).Explain(
			"The client acknowledges: established.", "客户端回ack: 连接建立"),
		sized(expect.C2S(pshAck).SeqNum(1), req, opt).Explain(
			"The client sends the blog post's GET request.", "客户端发送博客文章的GET请求"),
		// The server answers at once, so its ACK of the request rides on
		// the response; a busy machine may send it alone first.
		acking(expect.S2C(ack), 1+req, opt).Length(0).Optional().Explain(
			"The server's kernel acknowledges the request.", "服务端确认请求"),
		sized(expect.S2C(pshAck).SeqNum(1), resp, opt).Explain(
			"The server answers, a round trip after the request: the response acknowledges the request, and the client's kernel measures the round trip again (srtt, and rttvar its variation).",
			"服务端回应, 在请求之后一个往返时间到达: 响应确认了请求, 客户端内核再测一次往返时间 (srtt, 以及它的波动rttvar)"),
		acking(expect.C2S(ack), 1+resp, opt).Length(0).Explain(
			"The client acknowledges the response at once (TCP_QUICKACK), so that nothing the server sent is left unacknowledged when the next request is lost.",
			"客户端马上确认响应 (TCP_QUICKACK), 这样下一个请求丢失时, 服务端发的数据都已经被确认了"),
		request.Without(capture.Retransmission).Checking(first).Explain(
			fmt.Sprintf("The client sends a second GET on the kept-alive connection. The capture on the client's side records it; an nftables rule on the server's input hook drops it: the server never gets it. The client's kernel arms its retransmission timer with its RTO: srtt + max(4 rttvar, 200 ms), about %v on this path (the run's events show the kernel's own figures).", rtt+rtoMin),
			fmt.Sprintf("客户端在保持着的连接上发送第二个GET请求. 客户端这一侧的抓包记录了它, 服务端入口的nftables规则把它丢掉了: 服务端没有收到. 客户端内核用RTO启动重传定时器: srtt + max(4 rttvar, 200毫秒), 在这条路径上约%v (运行的事件里有内核自己的数值)", rtt+rtoMin)),
		expect.Note("Nothing comes back: no ACK, and no later segment that could make the server send a duplicate ACK. Only the client's retransmission timer can tell that the request was lost.",
			"什么都没有回来: 没有ack, 也没有后续的数据能让服务端发重复ack. 只有客户端的重传定时器能发现请求丢了"),
		request.With(capture.Retransmission).Checking(firstRetrans).Explain(
			fmt.Sprintf("The retransmission timer fires, at least %v after the request (Linux's minimum RTO, plus the smoothed RTT): the client sends the request again, the same bytes at the same sequence number, and Wireshark labels it a retransmission. The kernel doubles its RTO (backoff 1) and arms the timer again. The rule drops this copy too.", rtoMin),
			fmt.Sprintf("重传定时器到期, 至少在请求之后%v (Linux的最小RTO, 加上平滑后的RTT): 客户端重发请求, 同样的字节, 同样的序列号, Wireshark标记为重传. 内核把RTO加倍 (backoff 1), 重新启动定时器. 这一份也被规则丢掉了", rtoMin)),
		request.With(capture.Retransmission).Checking(secondRetrans).Explain(
			"The timer fires again, after twice the first timeout (exponential backoff: each expiry doubles the RTO, up to 120 s, so that a sender backs off from a path that is losing everything): the second retransmission. This one gets through.",
			"定时器再次到期, 等待时间是第一次的两倍 (指数退避: 每次超时RTO加倍, 最多120秒, 让发送方在一条什么都丢的路径上退让): 第二次重传. 这一次到达了服务端"),
		// The server answers at once: its ACK of the request rides on the
		// response, or goes alone first on a busy machine.
		acking(expect.S2C(ack), 1+2*req, opt).Length(0).Optional().Explain(
			"The server's kernel acknowledges the request.", "服务端确认请求"),
		at(sized(expect.S2C(pshAck), resp, opt), 1+resp, opt).Explain(
			"The server answers, a round trip after the retransmission that got through. Its ACK resets the client's backoff: the next RTO is computed from srtt and rttvar again.",
			"服务端回应, 在成功的那次重传之后一个往返时间到达. 这个ack让客户端的退避清零: 下一个RTO又由srtt和rttvar计算"),
		// The client closes as soon as it has read the response; its
		// delayed ACK of the response then rides on its FIN.
		acking(expect.C2S(ack), 1+2*resp, opt).Length(0).Optional().Explain(
			"The client acknowledges the response.", "客户端确认响应"),
	}
	return append(steps, expect.ClientCloses()...)
}
