package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/lab/netns"
	"github.com/tcplab/tcplab/lab/scripted"
)

// Env is what a scenario's peers get from the runner: where to listen or
// connect, the run's options, and ways to report progress and events.
type Env struct {
	// Addr is the server's address, "127.0.0.1:PORT" (or "[::1]:PORT"
	// with Options.IPv6).
	Addr    string
	Options Options

	ready      chan struct{}
	clientDone chan struct{}
	once       sync.Once
	mu         sync.Mutex
	events     []string
	metrics    map[string]float64
	values     map[any]any
	progress   func(string)
	// On a LAN, the client's host and address: the client's sockets are
	// made there.
	client   *netns.Host
	clientIP net.IP
	offload  func(on bool) error
	// clock is the run's time for the conversation, which SetOffload
	// moves later by the time the kernel took.
	clock *conversationClock
	// The scripted peer of a scripted topology, whether it is the
	// server, and what its calls' Fatalf recorded.
	peer       *scripted.Peer
	peerServes bool
	fatals     []string
}

// SetOffload turns the LAN's segmentation and receive offloads (TSO, GSO,
// GRO) on or off at both hosts, for the connections made after it. It
// fails on a scenario that runs on no LAN. The time the kernel takes is
// not the conversation's: the run's timeout moves later by it, and a
// change slower than a second is recorded.
func (e *Env) SetOffload(on bool) error {
	if e.offload == nil {
		return errors.New("offloads: the scenario runs on no LAN")
	}
	start := time.Now()
	err := e.offload(on)
	took := time.Since(start)
	e.clock.extend(took)
	if took > time.Second {
		e.Record(e.Text("offloads %s: the kernel took %.1fs to reconfigure the devices, not counted in the run's time", "卸载%s: 内核用了%.1f秒重新配置设备, 不计入运行时间"),
			map[bool]string{true: e.Text("on", "开启"), false: e.Text("off", "关闭")}[on], took.Seconds())
	}
	return err
}

func newEnv(addr string, opt Options, progress func(string)) *Env {
	return &Env{Addr: addr, Options: opt, ready: make(chan struct{}), clientDone: make(chan struct{}), progress: progress}
}

// Listen opens the server's listening socket on Addr and tells the runner
// that the client may start. control, when not nil, runs on the socket
// before bind, for options that a listener must have before it listens
// (SO_RCVBUF, for one).
func (e *Env) Listen(ctx context.Context, control func(fd int) error) (net.Listener, error) {
	if e.Options.External() {
		return nil, errNoExternal
	}
	lc := net.ListenConfig{KeepAlive: -1, Control: rawControl(control)}
	ln, err := lc.Listen(ctx, e.network(), e.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen %s: port busy; stop what uses it or choose another port with -port", e.Addr)
		}
		return nil, fmt.Errorf("listen %s: %w", e.Addr, err)
	}
	e.markReady()
	return ln, nil
}

// Accept listens on Addr (control, when not nil, sets socket options
// before bind, as Listen's does), accepts one connection and closes the
// listener: most scenarios are about one connection. The connection's
// reads and writes fail once ctx ends, so a server blocked on it returns at
// the scenario's timeout; the caller closes it.
func (e *Env) Accept(ctx context.Context, control func(fd int) error) (*net.TCPConn, error) {
	ln, err := e.Listen(ctx, control)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	c, err := ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	tc := c.(*net.TCPConn)
	closeOnDone(ctx, tc)
	return tc, nil
}

// Connect dials the server as Dial does, and makes the connection's reads
// and writes fail once ctx ends, so a client blocked on it returns at the
// scenario's timeout. The caller closes it.
func (e *Env) Connect(ctx context.Context) (*net.TCPConn, error) {
	return e.connect(ctx, 0, nil)
}

// ConnectFrom is Connect from the client port port, for a scenario that
// must name the client's port in advance (in a rule Setup installs, say).
func (e *Env) ConnectFrom(ctx context.Context, port int) (*net.TCPConn, error) {
	return e.connect(ctx, port, nil)
}

// ConnectWith is Connect with control, when not nil, run on the client's
// socket before it connects, for options a client must set first
// (TCP_DEFER_ACCEPT, TCP_MAXSEG, SO_RCVBUF). On a LAN or a path the socket
// is made in the client's host, as Connect's is.
func (e *Env) ConnectWith(ctx context.Context, control func(fd int) error) (*net.TCPConn, error) {
	return e.connect(ctx, 0, control)
}

// connect is Dial from the client port port (any, when 0), control run on
// the socket first, with the connection's reads and writes failing once
// ctx ends.
func (e *Env) connect(ctx context.Context, port int, control func(fd int) error) (*net.TCPConn, error) {
	c, err := e.dial(ctx, port, control)
	if err != nil {
		return nil, err
	}
	closeOnDone(ctx, c)
	return c, nil
}

// dial connects to the server from the client port port, or from any port
// when it is 0, keep-alive off so that only the scenario decides on probes;
// control, when not nil, runs on the socket before it connects.
func (e *Env) dial(ctx context.Context, port int, control func(fd int) error) (*net.TCPConn, error) {
	d := net.Dialer{KeepAlive: -1, Control: rawControl(control)}
	if port != 0 {
		local := net.IPv4(127, 0, 0, 1)
		if e.Options.IPv6 {
			local = net.IPv6loopback
		}
		if e.clientIP != nil {
			local = e.clientIP
		}
		d.LocalAddr = &net.TCPAddr{IP: local, Port: port}
	}
	var c net.Conn
	// On a LAN the socket is made in the client's host; it stays there.
	err := e.client.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, e.network(), e.Addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// rawControl turns a function of a socket's descriptor into the Control
// hook of net.Dialer and net.ListenConfig; nil stays nil.
func rawControl(control func(fd int) error) func(string, string, syscall.RawConn) error {
	if control == nil {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = control(int(fd)) }); cerr != nil {
			return cerr
		}
		return err
	}
}

// network is "tcp4", or "tcp6" with Options.IPv6: the scenario's one
// address family.
func (e *Env) network() string {
	if e.Options.IPv6 {
		return "tcp6"
	}
	return "tcp4"
}

// closeOnDone makes c's pending and later reads and writes fail when ctx
// ends. It sets a deadline rather than closing c, so that a close at the
// timeout is still the peer's own decision and shows on the wire as such.
func closeOnDone(ctx context.Context, c net.Conn) {
	context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// SetValue keeps a value for the peers, under key, as context.WithValue
// does: Setup uses it to hand the peers what it installed (an impairment,
// say) without a variable shared through a closure.
func (e *Env) SetValue(key, value any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.values == nil {
		e.values = map[any]any{}
	}
	e.values[key] = value
}

// Value returns the value SetValue kept under key, or nil.
func (e *Env) Value(key any) any {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.values[key]
}

// ClientDone is closed when the client has finished: a server that serves
// any number of connections stops accepting then.
func (e *Env) ClientDone() <-chan struct{} { return e.clientDone }

// markReady lets the client start.
func (e *Env) markReady() { e.once.Do(func() { close(e.ready) }) }

// Dial connects to the server with Go's defaults, keep-alive off so that
// only the scenario decides on probes.
func (e *Env) Dial(ctx context.Context) (*net.TCPConn, error) { return e.dial(ctx, 0, nil) }

// Text returns en or zh, whichever is in the run's language: use it for
// what Record, Progress and Sleep say, so that a -lang zh run prints
// Chinese. Either may be a format.
//
//	env.Sleep(ctx, d, env.Text("the server thinks", "服务端在思考"))
func (e *Env) Text(en, zh string) string { return e.Options.Text(en, zh) }

// Progress tells the person watching what the scenario is waiting for.
func (e *Env) Progress(format string, args ...any) {
	if e.progress != nil {
		e.progress(fmt.Sprintf(format, args...))
	}
}

// Record notes an event of the conversation (an error a socket call
// returned, say) for the result and the walkthrough.
func (e *Env) Record(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, fmt.Sprintf(format, args...))
}

// Metric records a measurement of the run (a throughput, say) for
// result.json.
func (e *Env) Metric(name string, value float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.metrics == nil {
		e.metrics = map[string]float64{}
	}
	e.metrics[name] = value
}

// Metrics returns the recorded measurements.
func (e *Env) Metrics() map[string]float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[string]float64, len(e.metrics))
	for k, v := range e.metrics {
		m[k] = v
	}
	return m
}

// Events returns the recorded events.
func (e *Env) Events() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.events...)
}

// Sleep waits d or until ctx is done, telling the watcher why.
//
// A long wait (the blog post's 8 s keep-alive idle, say) is counted down every
// two seconds, so the person watching sees the scenario is alive.
func (e *Env) Sleep(ctx context.Context, d time.Duration, why string) error {
	e.Progress(e.Text("waiting %v: %s", "等待 %v: %s"), d, why)
	end := time.Now().Add(d)
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-t.C:
			return nil
		case <-tick.C:
			if left := time.Until(end).Round(time.Second); left > 0 {
				e.Progress(e.Text("  %v left", "  还剩 %v"), left)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
