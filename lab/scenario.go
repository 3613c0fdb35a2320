package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// Scenario is one TCP conversation between a real server and a real client,
// and the segments it must put on the wire.
type Scenario struct {
	Name    string // short name, used on the command line and for out/NAME
	Summary string // one line
	// Server runs the server side. It must call Env.Listen once; the client
	// starts when it has.
	Server func(ctx context.Context, env *Env) error
	// Client runs the client side; it connects to Env.Addr.
	Client func(ctx context.Context, env *Env) error
	// Steps are the expected segments, in order per connection.
	Steps func(opt Options) []Step
	// Setup, when set, runs in the scenario's namespace before the server
	// starts (to install impairments, say); the function it returns undoes
	// it after the capture.
	Setup func(ctx context.Context, env *Env) (undo func(), err error)
	// NeedsNamespace marks a scenario that changes its network namespace
	// (Setup): it refuses to run with -no-sandbox, on the host.
	NeedsNamespace bool
	// AcceptsServer marks a scenario whose client can face a server of
	// the user's (Options.ServerCommand); its Steps then say what any
	// correct server must do. AcceptsClient is the same for a client of
	// the user's (Options.ClientCommand).
	AcceptsServer, AcceptsClient bool
	// Snaplen is the capture's snap length; zero keeps whole packets. A
	// bulk transfer captures headers only.
	Snaplen int
	// HighRate marks a scenario that puts tens of thousands of packets a
	// second on the wire: its capture is batched, into a ring large enough
	// to hold the whole transfer, and read at the lowest CPU priority, so
	// that capturing takes as little as it can from the traffic.
	HighRate bool
	// Timeout bounds the whole scenario; zero means 15 s.
	Timeout time.Duration
	// Wait is how long the scenario waits on timers by design (a
	// keep-alive idle, say), for reporting how much the lab adds.
	Wait func(opt Options) time.Duration
}

// Options are the knobs a user turns for all scenarios of a run.
type Options struct {
	// KeepAliveIdle is the idle time before the first keep-alive probe;
	// zero means 1 s. The seed's server uses 8 s.
	KeepAliveIdle time.Duration `json:"keepalive_idle,omitempty"`
	// Lang is the language of the walkthrough: "en" (default) or "zh".
	Lang string `json:"lang,omitempty"`
	// ServerCommand, when set, is a shell command that runs the user's own
	// server in the namespace, in place of the scenario's; it must listen
	// on Port.
	ServerCommand string `json:"server_command,omitempty"`
	// ClientCommand, when set, is a shell command that runs the user's own
	// client in the namespace, in place of the scenario's, once the server
	// listens; TCPLAB_SERVER holds the server's address. Its first
	// connection is judged.
	ClientCommand string `json:"client_command,omitempty"`
	// Port is the server's port; zero means 8000 (the seed's).
	Port int `json:"port,omitempty"`
	// Capture chooses what captures: the lab (CaptureTcplab, the
	// default), tcpdump, or nothing, to measure what capturing costs.
	Capture string `json:"capture,omitempty"`
}

// External reports whether the server is the user's command.
func (o Options) External() bool { return o.ServerCommand != "" }

// ExternalClient reports whether the client is the user's command.
func (o Options) ExternalClient() bool { return o.ClientCommand != "" }

// ServerPort returns the server's port, with its default.
func (o Options) ServerPort() int {
	if o.Port <= 0 {
		return Port
	}
	return o.Port
}

// Idle returns the keep-alive idle time, with its default.
func (o Options) Idle() time.Duration {
	if o.KeepAliveIdle <= 0 {
		return time.Second
	}
	return o.KeepAliveIdle
}

func (sc *Scenario) timeout() time.Duration {
	if sc.Timeout <= 0 {
		return 15 * time.Second
	}
	return sc.Timeout
}

// Env is what a scenario's peers get from the runner: where to listen or
// connect, the run's options, and ways to report progress and events.
type Env struct {
	// Addr is the server's address, "127.0.0.1:PORT".
	Addr    string
	Options Options

	ready      chan struct{}
	clientDone chan struct{}
	once       sync.Once
	mu         sync.Mutex
	events     []string
	metrics    map[string]float64
	progress   func(string)
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
	lc := net.ListenConfig{KeepAlive: -1}
	if control != nil {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) { err = control(int(fd)) }); cerr != nil {
				return cerr
			}
			return err
		}
	}
	ln, err := lc.Listen(ctx, "tcp4", e.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen %s: port busy; stop what uses it or choose another port with -port", e.Addr)
		}
		return nil, fmt.Errorf("listen %s: %w", e.Addr, err)
	}
	e.markReady()
	return ln, nil
}

// ClientDone is closed when the client has finished: a server that serves
// any number of connections stops accepting then.
func (e *Env) ClientDone() <-chan struct{} { return e.clientDone }

// markReady lets the client start.
func (e *Env) markReady() { e.once.Do(func() { close(e.ready) }) }

// Dial connects to the server with Go's defaults, keep-alive off so that
// only the scenario decides on probes.
func (e *Env) Dial(ctx context.Context) (*net.TCPConn, error) {
	d := net.Dialer{KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp4", e.Addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

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
// A long wait (the seed's 8 s keep-alive idle, say) is counted down every
// two seconds, so the person watching sees the scenario is alive.
func (e *Env) Sleep(ctx context.Context, d time.Duration, why string) error {
	e.Progress("waiting %v: %s", d, why)
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
				e.Progress("  %v left", left)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
