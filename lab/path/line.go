package path

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/lab/netns"
)

// DefaultLimit is the number of packets a direction of a [Line] holds at
// most when [LineConfig.Limit] is zero: netem's default limit.
const DefaultLimit = 1000

// DefaultMTU is the MTU of a Line's devices when [LineConfig.MTU] is zero:
// Ethernet's.
const DefaultMTU = 1500

// LineConfig says what a [Line] joins and how.
type LineConfig struct {
	// Path is the conditions of each direction.
	Path Path
	// Seed seeds the generators of both directions; a run with the same
	// seed and the same packets makes the same decisions.
	Seed uint64
	// Client and Server are the two ends: Path.C2S applies to packets
	// read from Client's device and written to Server's, Path.S2C to the
	// others.
	Client, Server Endpoint
	// Limit is the number of packets each direction holds at most,
	// waiting for the rate or the delay; more are dropped and counted
	// (Counters.Dropped). Zero means DefaultLimit.
	Limit int
	// MTU is the MTU of both devices, and the size of each of the line's
	// 2*(Limit+2) packet buffers. Zero means DefaultMTU.
	MTU int
	// Veth joins each end to the line through a veth pair and a packet
	// socket (netns.OpenIPLink) instead of a TUN device, for a user who
	// may not open /dev/net/tun: the far ends are in a namespace the line
	// makes for them, and each end's device is an Ethernet device that
	// resolves no neighbours.
	Veth bool
	// Tap, if not nil, sees every packet the line reads, as a capture at
	// the router would: when it came, from which side, and what the line
	// decided. It runs on the reading goroutine, so it must be quick, and
	// the packet's bytes are valid only during the call.
	Tap func(TapEvent)
}

// TapEvent is a packet as it reaches the line.
type TapEvent struct {
	C2S    bool      // it came from the client's side
	At     time.Time // when the line read it
	Packet []byte    // the IP packet; valid only during Tap
	// Copies is how many copies of it the line will deliver: 1, 2 when
	// duplicated, 0 when lost or dropped at the queue's limit.
	Copies int
}

// Line is a running delay line: two TUN devices and, for each direction,
// a goroutine that reads packets from one device and one that writes them
// to the other when their time comes. See the package documentation for
// what it does to each packet.
type Line struct {
	client, server device
	far            *netns.Host // the far ends' namespace, with Veth
	dirs           [2]*lane
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	done           chan struct{}
	closeOnce      sync.Once
	closeErr       error
	// Priority is nil when the process runs at netns.ForwarderNice, so
	// that CPU load does not lengthen the path's delay; otherwise it says
	// why it could not (the line runs anyway, at the default priority).
	Priority error
}

// lane is one direction of a running Line.
type lane struct {
	mu    sync.Mutex
	d     *direction
	from  device
	to    device
	timer *os.File // a timerfd the writer waits on, armed at the next departure
	armed int64    // when timer fires (0: disarmed), guarded by mu
	err   error    // the reader's error, if it stopped on one
	werr  error    // the writer's
	tap   func(TapEvent)
	c2s   bool // the direction from the client's side
}

// The generators' streams, so that the directions draw different numbers
// from the same seed: "c2s" and "s2c" in ASCII.
const (
	streamC2S = 0x633273
	streamS2C = 0x733263
)

// directions returns the cores of the two directions of a line made with
// cfg (its Limit and MTU already defaulted): client to server first. Both
// draw from cfg.Seed, each on a stream of its own.
func directions(cfg LineConfig) [2]*direction {
	return [2]*direction{
		newDirection(cfg.Path.C2S, cfg.Seed, streamC2S, cfg.Limit, cfg.MTU),
		newDirection(cfg.Path.S2C, cfg.Seed, streamS2C, cfg.Limit, cfg.MTU),
	}
}

// StartLine creates the two devices of cfg, addresses them, brings them
// up and starts forwarding between them. The line runs until ctx is done
// or Close is called; in both cases Close must be called to remove the
// devices. Creating the devices needs CAP_NET_ADMIN in their namespaces.
func StartLine(ctx context.Context, cfg LineConfig) (*Line, error) {
	if cfg.Limit == 0 {
		cfg.Limit = DefaultLimit
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Limit < 1 || cfg.MTU < 68 {
		return nil, fmt.Errorf("delay line: limit %d and MTU %d: want a limit >= 1 and an MTU >= 68", cfg.Limit, cfg.MTU)
	}
	// Within these bounds no sum of times in a direction overflows.
	if err := cfg.Path.Check(); err != nil {
		return nil, fmt.Errorf("delay line: %w", err)
	}
	var far *netns.Host
	open := func(ep Endpoint, side string) (device, error) {
		if far == nil {
			return OpenTUN(ep, cfg.MTU)
		}
		return netns.OpenIPLink(ep.NetNS, ep.Name, ep.Addrs, cfg.MTU, far.File(), side)
	}
	if cfg.Veth {
		var err error
		if far, err = netns.NewQuietHost("delay line"); err != nil {
			return nil, fmt.Errorf("delay line: %w", err)
		}
	}
	closeFar := func() {
		if far != nil {
			far.Close()
		}
	}
	client, err := open(cfg.Client, "client")
	if err != nil {
		closeFar()
		return nil, fmt.Errorf("delay line: client side: %w", err)
	}
	server, err := open(cfg.Server, "server")
	if err != nil {
		client.Close()
		closeFar()
		return nil, fmt.Errorf("delay line: server side: %w", err)
	}
	var timers [2]*os.File
	for i := range timers {
		fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
		if err != nil {
			client.Close()
			server.Close()
			closeFar()
			if i == 1 {
				timers[0].Close()
			}
			return nil, fmt.Errorf("delay line: timerfd: %w", err)
		}
		timers[i] = os.NewFile(uintptr(fd), "timerfd")
	}
	l := &Line{client: client, server: server, far: far, done: make(chan struct{})}
	l.Priority = netns.RaisePriority()
	ctx, l.cancel = context.WithCancel(ctx)
	dirs := directions(cfg)
	l.dirs[0] = &lane{d: dirs[0], from: client, to: server, timer: timers[0], tap: cfg.Tap, c2s: true}
	l.dirs[1] = &lane{d: dirs[1], from: server, to: client, timer: timers[1], tap: cfg.Tap}
	for _, ln := range l.dirs {
		l.wg.Add(2)
		go func() { defer l.wg.Done(); ln.read(ctx) }()
		go func() { defer l.wg.Done(); ln.write(ctx) }()
	}
	// Reads wait in the poller: a deadline in the past wakes them.
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		<-ctx.Done()
		for _, f := range []device{client, server, timers[0], timers[1]} {
			f.SetReadDeadline(time.Unix(1, 0))
		}
	}()
	go func() { l.wg.Wait(); close(l.done) }()
	return l, nil
}

// Done is closed when the line has stopped forwarding: its context is
// done or Close was called.
func (l *Line) Done() <-chan struct{} { return l.done }

// Close stops the line, waits for its goroutines and removes its
// devices. It returns the first error that stopped a direction early, if
// any. It may be called more than once.
func (l *Line) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		<-l.done
		errs := []error{l.dirs[0].err, l.dirs[0].werr, l.dirs[1].err, l.dirs[1].werr, l.client.Close(), l.server.Close(),
			l.dirs[0].timer.Close(), l.dirs[1].timer.Close()}
		if l.far != nil {
			errs = append(errs, l.far.Close())
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// Stats returns the counters of both directions so far.
func (l *Line) Stats() Stats {
	return Stats{C2S: l.dirs[0].counters(), S2C: l.dirs[1].counters()}
}

func (ln *lane) counters() Counters {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return ln.d.stats
}

// now is the line's clock: CLOCK_MONOTONIC in nanoseconds, the clock of
// its timerfds.
func now() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// arm makes the timer fire at (CLOCK_MONOTONIC nanoseconds; at once if
// it is past), or disarms it when at is 0. The caller holds mu.
func (ln *lane) arm(at int64) {
	if at == ln.armed {
		return
	}
	ln.armed = at
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(at)}
	unix.TimerfdSettime(int(ln.timer.Fd()), unix.TFD_TIMER_ABSTIME, &spec, nil)
}

// read reads packets from the sending device and hands each to the
// direction, until ctx is done or the device fails.
func (ln *lane) read(ctx context.Context) {
	ln.mu.Lock()
	buf := ln.d.take()
	ln.mu.Unlock()
	for {
		n, err := ln.from.Read(buf)
		if err != nil {
			if ctx.Err() == nil {
				ln.err = fmt.Errorf("delay line: read %s: %w", ln.from.Name(), err)
			}
			return
		}
		t := now()
		var wall time.Time
		if ln.tap != nil {
			wall = time.Now()
		}
		ln.mu.Lock()
		copies := ln.d.arrive(t, buf[:n])
		if copies > 0 {
			// Wake the writer if this packet leaves before the one
			// it waits for.
			if next, _ := ln.d.next(); ln.armed == 0 || next < ln.armed {
				ln.arm(max(next, 1))
			}
		}
		if ln.tap != nil {
			// Before take: buf holds the packet until then.
			ln.tap(TapEvent{C2S: ln.c2s, At: wall, Packet: buf[:n], Copies: copies})
		}
		buf = ln.d.take()
		ln.mu.Unlock()
	}
}

// write writes each held packet to the receiving device at its departure
// time, until ctx is done. It waits on a timerfd, which the runtime's
// poller wakes within microseconds of its expiry: a Go timer may fire up
// to a millisecond late when the process is idle.
func (ln *lane) write(ctx context.Context) {
	var expirations [8]byte
	for {
		ln.mu.Lock()
		h, due := ln.d.pop(now())
		if !due {
			next, _ := ln.d.next() // 0, which disarms, when nothing is held
			ln.arm(next)
		}
		ln.mu.Unlock()
		if due {
			_, err := ln.to.Write(h.buf)
			ln.mu.Lock()
			if err != nil {
				ln.d.stats.Failed++
			} else {
				ln.d.stats.Out++
			}
			ln.d.release(h.buf)
			ln.mu.Unlock()
			continue
		}
		if _, err := ln.timer.Read(expirations[:]); err != nil {
			if ctx.Err() == nil {
				ln.werr = fmt.Errorf("delay line: wait for timer: %w", err)
			}
			return
		}
		ln.mu.Lock()
		ln.armed = 0 // fired: the next arm must set it again
		ln.mu.Unlock()
	}
}
