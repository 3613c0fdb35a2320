package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
	"github.com/tcplab/tcplab/lab/sockstat"
)

// The backlog scenario's listener and clients.
const (
	// backlogLen is the backlog the server gives listen(): Linux queues
	// up to backlogLen+1 connections for accept().
	backlogLen = 2
	// backlogClients are the clients: two that fill the queue at once,
	// two whose handshakes are half done together, and one more.
	backlogClients = 5
	// backlogDeferred is how long a client that sets TCP_DEFER_ACCEPT
	// holds its final ACK of the handshake (TCP_DELACK_MAX).
	backlogDeferred = 200 * time.Millisecond
	// backlogStagger separates clients 3 and 4, and so their held ACKs.
	backlogStagger = 50 * time.Millisecond
	// backlogSynAckRTO is the listener's first SYN/ACK retransmission
	// timeout, and the client's first SYN retransmission timeout
	// (TCP_TIMEOUT_INIT).
	backlogSynAckRTO = time.Second
	// backlogPoll is how often the lab samples the listener while it
	// waits for the kernel, and backlogPollFor how long at most.
	backlogPoll    = 10 * time.Millisecond
	backlogPollFor = 5 * time.Second
)

// backlogGo is the key of the channel that the client side closes when the
// held-back handshakes have been retried: the server then accepts.
type backlogGo struct{}

// Backlog shows the listener's two queues, which the blog post draws: the
// SYN (half-open) queue of handshakes in progress and the accept (full)
// queue of connections that wait for accept(). The server listens with a
// backlog of 2 and does not accept. Two clients complete their
// handshakes: the accept queue holds 2. Two more connect with
// TCP_DEFER_ACCEPT, which makes Linux hold a client's final ACK for
// 200 ms: for that time both handshakes are half done, in the SYN queue.
// Then their ACKs arrive: the first makes the accept queue 3 (backlog+1,
// the most Linux queues), the second finds it full, and the listener
// drops it and keeps the handshake, retransmitting its SYN/ACK a second
// later; the client, which thinks it is connected, answers each one again.
// A fifth client's SYN finds the queue full and is dropped: it sends it
// again after its initial RTO (1 s). The kernel's view of the listener,
// sampled at each stage, shows the queue lengths. Then the server accepts
// everything and each client has its exchange.
func Backlog() *lab.Scenario {
	return &lab.Scenario{
		Name:      "backlog",
		Summary:   "a listener with backlog 2 that does not accept: 3 connections queued (backlog+1), the next handshake's final ACK dropped and its SYN/ACK retransmitted, the next SYN dropped and retransmitted; queue lengths from the kernel; then all are accepted",
		SummaryZH: "backlog为2且不调用accept的监听socket: 3个连接排队 (backlog+1), 下一个握手的最后一个ack被丢弃, syn+ack被重传, 再下一个syn被丢弃后重传; 队列长度从内核采样; 然后全部被accept",
		// By design: the deferred ACKs, the listener's first SYN/ACK
		// retransmission, and the fifth client's SYN retransmission.
		Wait: func(lab.Options) time.Duration {
			return backlogStagger + backlogDeferred + backlogSynAckRTO + backlogDeferred
		},
		Server: func(ctx context.Context, env *lab.Env) error {
			start := make(chan struct{})
			env.SetValue(backlogGo{}, start)
			ln, err := env.Listen(ctx, nil)
			if err != nil {
				return err
			}
			defer ln.Close()
			stop := context.AfterFunc(ctx, func() { ln.Close() })
			defer stop()
			// Go listens with the system's largest backlog; listen() on a
			// listening socket sets a new one.
			if err := setBacklog(ln, backlogLen); err != nil {
				return err
			}
			select {
			case <-start:
			case <-ctx.Done():
				return ctx.Err()
			}
			var wg sync.WaitGroup
			errs := make([]error, backlogClients)
			for i := range backlogClients {
				c, err := ln.Accept()
				if err != nil {
					wg.Wait()
					return fmt.Errorf("accept connection %d: %w", i+1, err)
				}
				tc := c.(*net.TCPConn)
				context.AfterFunc(ctx, func() { tc.SetDeadline(time.Unix(1, 0)) })
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = peer.Serve(ctx, tc, 0, 0)
				}()
			}
			wg.Wait()
			return errors.Join(errs...)
		},
		Client: backlogClient,
		Steps:  backlogSteps,
	}
}

// setBacklog calls listen() again on ln's socket with backlog n.
func setBacklog(ln net.Listener, n int) error {
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := raw.Control(func(fd uintptr) { lerr = unix.Listen(int(fd), n) }); err != nil {
		return err
	}
	if lerr != nil {
		return fmt.Errorf("listen(%d): %w", n, lerr)
	}
	return nil
}

// listenerView is what a sample says of the listener and its clients.
type listenerView struct {
	listener sockstat.Socket
	// pending are the handshakes in the SYN queue (request sockets in
	// SYN_RECEIVED), by client port; synSent the clients still waiting
	// for a SYN/ACK, by port.
	pending, synSent map[uint16]sockstat.Socket
}

func (v listenerView) String() string { return v.text(lab.Options{}) }

// text is String in the run's language.
func (v listenerView) text(o lab.Options) string {
	s := fmt.Sprintf(o.Text("accept queue %d (backlog %d, Linux queues up to %d), SYN queue %d", "accept 队列 %d (backlog %d, Linux 最多排 %d 个), SYN 队列 %d"),
		v.listener.AcceptQ, v.listener.Backlog, v.listener.Backlog+1, len(v.pending))
	for port, r := range v.pending {
		s += fmt.Sprintf(o.Text("; the handshake of port %d waits with %d SYN/ACK retransmissions", "; 端口 %d 的握手在等待, 已重传 %d 次 SYN/ACK"), port, r.TimerRetrans)
	}
	for port, c := range v.synSent {
		s += fmt.Sprintf(o.Text("; the client on port %d waits in SYN_SENT after %d SYN retransmissions", "; 端口 %d 的客户端在 SYN_SENT 中等待, 已重传 %d 次 SYN"), port, c.TimerRetrans)
	}
	return s
}

// backlogClient connects the clients stage by stage, waiting on the
// kernel's view of the listener between stages rather than on sleeps, and
// records the queue lengths at each; then it lets the server accept, and
// each client sends the blog post's request and reads the answer.
func backlogClient(ctx context.Context, env *lab.Env) error {
	start, ok := env.Value(backlogGo{}).(chan struct{})
	if !ok {
		return errors.New("backlog: the server's signal is missing")
	}
	var once sync.Once
	letAccept := func() { once.Do(func() { close(start) }) }
	defer letAccept()
	server, err := netip.ParseAddrPort(env.Addr)
	if err != nil {
		return err
	}
	// On the loopback the listener and the clients are in this process's
	// namespace.
	s, err := sockstat.New(sockstat.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	maxQueue := uint32(0)
	view := func() (listenerView, error) {
		socks, err := s.Sample(sockstat.Filter{Port: server.Port()})
		if err != nil {
			return listenerView{}, err
		}
		v := listenerView{pending: map[uint16]sockstat.Socket{}, synSent: map[uint16]sockstat.Socket{}}
		for _, so := range socks {
			switch {
			case so.State == sockstat.Listen:
				v.listener = so
			case so.State == sockstat.SynRecv && so.Local.Port() == server.Port():
				v.pending[so.Remote.Port()] = so
			case so.State == sockstat.SynSent:
				v.synSent[so.Local.Port()] = so
			}
		}
		maxQueue = max(maxQueue, v.listener.AcceptQ)
		return v, nil
	}
	// until samples until ok holds, every backlogPoll, for
	// backlogPollFor at most.
	until := func(what string, ok func(listenerView) bool) (listenerView, error) {
		deadline := time.Now().Add(backlogPollFor)
		for {
			v, err := view()
			if err != nil {
				return v, err
			}
			if ok(v) {
				return v, nil
			}
			if time.Now().After(deadline) {
				return v, fmt.Errorf("waited %v for %s; the listener: %v", backlogPollFor, what, v)
			}
			select {
			case <-ctx.Done():
				return v, ctx.Err()
			case <-time.After(backlogPoll):
			}
		}
	}
	record := func(stage string, v listenerView) {
		env.Record("%s: %s", stage, v.text(env.Options))
		env.Metric(fmt.Sprintf("accept_queue_%d", len(env.Events())), float64(v.listener.AcceptQ))
	}

	v, err := until("the listener's backlog to be 2", func(v listenerView) bool { return v.listener.Backlog == backlogLen })
	if err != nil {
		return err
	}
	record(env.Text("the server listens with backlog 2 and does not accept", "服务端以 backlog 2 监听, 不调用 accept"), v)

	conns := make([]*net.TCPConn, backlogClients)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	dial := func(i int, deferACK bool) error {
		var control func(fd int) error
		if deferACK {
			control = func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1) }
		}
		// ConnectWith makes the socket in the client's host, whatever the
		// topology, and fails its reads and writes once ctx ends.
		c, err := env.ConnectWith(ctx, control)
		if err != nil {
			return fmt.Errorf("client %d: %w", i+1, err)
		}
		conns[i] = c
		return nil
	}

	// Clients 1 and 2 complete their handshakes: the accept queue holds
	// them.
	for i := range backlogLen {
		if err := dial(i, false); err != nil {
			return err
		}
	}
	if v, err = until("2 connections in the accept queue", func(v listenerView) bool { return v.listener.AcceptQ == backlogLen }); err != nil {
		return err
	}
	record(env.Text("clients 1 and 2 are connected, not accepted", "客户端 1 和 2 已连接, 还没被 accept"), v)

	// Clients 3 and 4 hold their final ACKs: both handshakes are half
	// done, in the SYN queue, while the accept queue still has room.
	for i := backlogLen; i < backlogLen+2; i++ {
		if err := dial(i, true); err != nil {
			return err
		}
		if i == backlogLen {
			// Their ACKs must not arrive together: Linux checks the
			// accept queue without a lock, and two handshakes completing
			// at once on two CPUs can both take the last place (the
			// queue reached 4 in one run of 50 in a soak).
			if err := env.Sleep(ctx, backlogStagger, env.Text("client 4 connects a little after client 3, so their held ACKs come one after the other", "客户端 4 比客户端 3 稍晚连接, 它们扣住的 ACK 先后到达")); err != nil {
				return err
			}
		}
	}
	if v, err = view(); err != nil {
		return err
	}
	record(env.Text("clients 3 and 4 got their SYN/ACKs and hold their final ACKs (TCP_DEFER_ACCEPT)", "客户端 3 和 4 收到了 SYN/ACK, 扣住最后的 ACK (TCP_DEFER_ACCEPT)"), v)
	// Their ACKs come: the first fills the accept queue to backlog+1,
	// the second finds it full and its handshake stays half done.
	if v, err = until("the accept queue to be full", func(v listenerView) bool { return v.listener.AcceptQ == backlogLen+1 }); err != nil {
		return err
	}
	record(env.Text("their final ACKs arrived: the accept queue is full", "它们最后的 ACK 到达: accept 队列满了"), v)

	// Client 5's SYN finds the accept queue full.
	dialed := make(chan error, 1)
	go func() { dialed <- dial(backlogClients-1, false) }()
	if v, err = until("the held-back handshake's SYN/ACK to be retransmitted and client 5's SYN to be dropped", func(v listenerView) bool {
		retried := false
		for _, r := range v.pending {
			retried = retried || r.TimerRetrans >= 1
		}
		return retried && len(v.synSent) == 1
	}); err != nil {
		return err
	}
	record(env.Text("a second later: the listener has retransmitted the held-back handshake's SYN/ACK; client 5 is still in SYN_SENT", "一秒之后: 监听端重传了被挡住的握手的 SYN/ACK; 客户端 5 还在 SYN_SENT"), v)
	if maxQueue > backlogLen+1 {
		return fmt.Errorf("the accept queue held %d connections, more than backlog+1 = %d", maxQueue, backlogLen+1)
	}
	env.Metric("accept_queue_max", float64(maxQueue))

	// The server accepts everything; each client has its exchange, the
	// fifth once its SYN has been retransmitted.
	letAccept()
	// The held-back client completes its handshake with its request,
	// which would be dropped like its ACK if it came before the server
	// had made room: the clients send once the queue is empty.
	if v, err = until("the server to accept the queued connections", func(v listenerView) bool { return v.listener.AcceptQ == 0 }); err != nil {
		return err
	}
	record(env.Text("the server calls accept(): the accept queue empties", "服务端调用 accept(): accept 队列清空"), v)
	errs := make([]error, backlogClients)
	var wg sync.WaitGroup
	for i := range backlogClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == backlogClients-1 {
				t := time.Now()
				if errs[i] = <-dialed; errs[i] != nil {
					return
				}
				env.Record(env.Text("client 5: connect() returned %v after the server began to accept", "客户端 5: 服务端开始 accept 之后 %v, connect() 返回"), time.Since(t).Round(time.Millisecond))
			}
			c := conns[i]
			if _, err := peer.Exchange(c, peer.GetRequest()); err != nil {
				errs[i] = fmt.Errorf("client %d: %w", i+1, err)
				return
			}
			errs[i] = c.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// backlogSteps are the segments of Backlog, connection by connection (in
// the order of their SYNs). Which of clients 3 and 4 is held back the
// kernel decides (whichever final ACK it takes second), so both take the
// same steps, with the two stories as alternatives; what Linux guarantees
// is strict: the fifth client's SYN is dropped and sent again, and a
// held-back handshake's SYN/ACK is retransmitted.
func backlogSteps(opt lab.Options) []expect.Step {
	var steps []expect.Step
	exchange := func(n int) []expect.Step {
		req, resp := len(peer.GetRequest()), len(peer.Response)
		return append([]expect.Step{
			sized(expect.C2S(pshAck).SeqNum(1), req, opt).On(n).Explain(
				"The server has accepted the connection: the client sends the blog post's request.",
				"服务端accept了这个连接, 客户端发送博客文章的请求"),
			// The server answers at once: its ACK of the request rides
			// on the response, or goes alone first on a busy machine.
			acking(expect.S2C(ack), 1+req, opt).Length(0).Optional().On(n).Explain(
				"The server's kernel acknowledges the request.", "服务端确认请求"),
			sized(expect.S2C(pshAck).SeqNum(1), resp, opt).On(n).Explain(
				"The server answers.", "服务端回应"),
			acking(expect.C2S(ack), 1+resp, opt).Length(0).Optional().On(n).Explain(
				"The client acknowledges the response.", "客户端确认响应"),
		}, on(expect.ClientCloses(), n)...)
	}
	syn := func(n int) expect.Step {
		return expect.C2S(expect.SYN).SeqNum(0).Without(capture.Retransmission).On(n).Checking(expect.LinuxSYNOptions)
	}
	firstSynAck := func(n int) expect.Step {
		return expect.S2C(synAck).SeqNum(0).AckNum(1).Without(capture.Retransmission).On(n)
	}
	finalACK := func(n int) expect.Step { return expect.C2S(ack).SeqNum(1).AckNum(1).Length(0).On(n) }

	for n := range backlogLen {
		steps = append(steps,
			syn(n).Explain(fmt.Sprintf("Client %d calls connect(): its SYN.", n+1), fmt.Sprintf("客户端%d调用connect: syn包", n+1)),
			firstSynAck(n).Explain("The listener's kernel answers with a SYN/ACK: the handshake waits in the SYN queue.",
				"监听socket的内核回syn+ack: 这个握手在SYN队列(半连接队列)里等待"),
			finalACK(n).Explain(
				fmt.Sprintf("The client's final ACK: the handshake is complete and the kernel moves the connection to the accept queue, which now holds %d. accept() is not called: the connection waits there.", n+1),
				fmt.Sprintf("客户端最后的ack: 握手完成, 内核把连接移到accept队列(全连接队列), 队列里现在有%d个. 服务端没有调用accept, 连接就在那里等", n+1)),
		)
	}
	for n := backlogLen; n < backlogLen+2; n++ {
		steps = append(steps,
			syn(n).Explain(
				fmt.Sprintf("Client %d calls connect() with TCP_DEFER_ACCEPT set, which makes Linux hold a connecting client's final ACK for up to 200 ms, in the hope of sending it with data.", n+1),
				fmt.Sprintf("客户端%d设置了TCP_DEFER_ACCEPT后调用connect, Linux会把客户端握手的最后一个ack最多推迟200毫秒, 希望能和数据一起发", n+1)),
			firstSynAck(n).Explain(
				"The accept queue has room (2 of backlog+1 = 3), so the listener answers with a SYN/ACK; connect() returns on the client, while for the server the handshake is half done, in the SYN queue.",
				"accept队列还有空位 (2个, 最多backlog+1 = 3个), 所以监听socket回syn+ack; 客户端的connect返回了, 但在服务端这个握手只完成了一半, 在SYN队列里"),
			expect.OneOf(
				expect.Seq(finalACK(n).Explain(
					"200 ms later the client's final ACK: it arrives first, and the connection takes the last place in the accept queue: 3, backlog+1, the most Linux queues.",
					"200毫秒后客户端最后的ack先到, 连接占了accept队列的最后一个位置: 3个, 即backlog+1, Linux最多排这么多")),
				expect.Seq(
					finalACK(n).Kernel(expect.Dropped("TCP_LISTEN_OVERFLOW")).Explain(
						"200 ms later the client's final ACK, but the other held ACK came first and the accept queue is full: the listener drops this one (net.ipv4.tcp_abort_on_overflow is 0; the kernel's reason: TCP_LISTEN_OVERFLOW) and keeps the handshake in the SYN queue. The client believes it is connected.",
						"200毫秒后客户端最后的ack到了, 但是另一个ack先到, accept队列已经满了: 监听socket丢弃这个ack (net.ipv4.tcp_abort_on_overflow为0; 内核的丢包原因: TCP_LISTEN_OVERFLOW), 握手留在SYN队列里. 客户端以为已经连上了"),
					expect.OneOf(expect.Seq(
						expect.S2C(synAck).SeqNum(0).AckNum(1).With(capture.Retransmission).On(n).Explain(
							"The listener's SYN/ACK timer (1 s, then doubling) fires: it sends the SYN/ACK again, a retransmission, to have the handshake completed once there is room.",
							"监听socket的syn+ack定时器 (1秒, 之后加倍) 到期: 重发syn+ack (重传), 等有空位时再完成握手"),
						finalACK(n).Kernel(expect.Dropped("TCP_LISTEN_OVERFLOW")).Explain(
							"The client, already ESTABLISHED, answers the old SYN/ACK with an ACK again; while the queue is full the listener drops it too (TCP_LISTEN_OVERFLOW).",
							"客户端已经是ESTABLISHED, 对旧的syn+ack再回一个ack; 队列满的时候监听socket同样丢弃它"),
					)).Times(1, 3).Explain(
						"The held-back handshake: SYN/ACK retransmitted, answered, dropped while the accept queue is full.",
						"被挡住的握手: syn+ack重传, 客户端回应, 队列满时被丢弃"),
				),
			).On(n).Explain(
				"The two held ACKs arrive 200 ms after their SYN/ACKs, one after the other: which comes first the kernel decides.",
				"两个推迟的ack在syn+ack之后200毫秒先后到达, 哪一个先到由内核决定"),
		)
	}
	last := backlogClients - 1
	steps = append(steps,
		syn(last).Explain(
			"Client 5 calls connect(): its SYN finds the accept queue full (3, backlog+1), and the listener drops it without an answer. (The kernel counts it in ListenOverflows, yet frees the SYN as consumed, not dropped: its account shows no drop here.)",
			"客户端5调用connect: 它的syn包遇到accept队列已满 (3个, backlog+1), 监听socket直接丢弃, 不回应. (内核把它记在ListenOverflows里, 但释放这个syn时算作已处理, 不算丢包: 内核的记录里这里没有丢包)"),
		expect.C2S(expect.SYN).SeqNum(0).With(capture.Retransmission).On(last).Times(1, 3).Checking(expect.LinuxSYNOptions).Explain(
			"The client's initial RTO (1 s, doubling) expires: it sends the same SYN again. It is dropped as long as the queue is full.",
			"客户端的初始RTO (1秒, 之后加倍) 到期, 再发同样的syn包. 队列满的时候它同样被丢弃"),
		expect.Note("The server calls accept() at last: the accept queue empties, and each handshake still waiting completes with the next segment its client sends: the held-back client's request, which carries its ACK too, and client 5's next SYN.",
			"服务端终于调用accept: accept队列清空, 还在等待的握手在客户端发出下一个包时完成: 被挡住的客户端的请求(它也带着ack), 以及客户端5的下一个syn"),
		expect.S2C(synAck).SeqNum(0).AckNum(1).Without(capture.Retransmission).On(last).Explain(
			"The listener has room again: it answers client 5's SYN with a SYN/ACK.", "监听socket又有空位了, 回客户端5的syn一个syn+ack"),
		finalACK(last).Explain("Client 5's final ACK completes its handshake.", "客户端5最后的ack完成握手"),
	)
	for n := range backlogClients {
		steps = append(steps, exchange(n)...)
	}
	return steps
}

// on puts steps on connection n.
func on(steps []expect.Step, n int) []expect.Step {
	out := make([]expect.Step, len(steps))
	for i, st := range steps {
		out[i] = st.On(n)
	}
	return out
}
