package lab

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/capture/live"
	"github.com/tcplab/tcplab/internal/safefile"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/netns"
)

// recording is what the capture of one scenario produced.
type recording struct {
	link layers.LinkType
	// packets are every frame captured, decoded and annotated as they
	// came: the one data path from capture to report.
	packets []capture.Packet
	// others are what the other capture points saw (network.others),
	// each annotated on its own, by point; their Info.InterfaceIndex is
	// 1 + the point's index.
	others [][]capture.Packet
	links  []layers.LinkType // of the other points
	drops  int
	events []string
	err    error // a peer failed or the scenario timed out
	// interrupted is set when the run was stopped (SIGINT, SIGTERM)
	// before the conversation ended.
	interrupted bool
	// noConversation is set when the conversation was interrupted or
	// never began: err says why, and no step is worth reporting.
	noConversation bool
	metrics        map[string]float64
	elapsed        time.Duration
	// kernel is what tells what the kernel did with the sockets, beside
	// the capture: its own events, or samples after segments (openKernel).
	kernel kernelSource
}

// quiet is how long the wire must stay silent after the peers are done
// before the capture stops: on loopback the last ACK follows the last FIN
// within microseconds, but a delayed ACK can take 40 ms (Linux's
// TCP_DELACK_MIN) and more when the CPU is busy.
const quiet = 250 * time.Millisecond

// settle is how long the wire must stay silent before the segments are
// matched: once they match, the capture stops then, without waiting out
// quiet. A delayed ACK (40 ms) comes well within it; whatever comes later
// was not needed for the match.
const settle = 100 * time.Millisecond

// giveUp is how long a quiet wire is awaited when the segments seen so far
// do not yet match: time for a retransmission timer (200 ms minimum on
// Linux) to fire twice.
const giveUp = time.Second

// highRateBuffer is the capture ring of a HighRate scenario: 1 GiB in
// 64 KiB segments is about 25,000 frames, under 10 MiB at a 128-byte snap
// length with libpcap's per-frame overhead, so the ring can hold all of it
// while the reader waits for CPU.
const highRateBuffer = 64 << 20

// highRateTimeout is the block timeout of a HighRate scenario's capture:
// a block is handed over at most this long after its first frame, so
// the ring holds its blocks' count times this much of a slow transfer.
// It stays well under quiet, so the last block is read before the lab
// calls the wire quiet.
const highRateTimeout = 100 * time.Millisecond

// record runs the scenario's peers on addr while it captures iface with
// filter, and returns the frames once the conversation is over: the peers
// returned, the expected segments are all there and the wire is quiet, or
// the timeout passed.
func record(parent context.Context, sc *Scenario, opt Options, dir *safefile.Dir, nw *network, progress func(string)) (*recording, error) {
	steps := sc.Steps(opt)
	start := time.Now()
	addr := nw.serverAddr
	cfg := live.Config{Interface: nw.iface, Filter: nw.filter, Snaplen: sc.Snaplen}
	if sc.HighRate {
		// The ring is not read during the transfer (see drain below), and
		// the kernel hands over a block of it, full or not, each time the
		// block timeout passes: at libpcap's 20 ms a transfer slowed to
		// 13 s by a busy machine retired a block every 20 ms and filled
		// the ring with half-empty blocks (160 frames dropped, seen twice
		// in 150 soak runs at a load of 20). highRateTimeout lets each
		// block hold five times as much time. The lab reads on for 250 ms
		// of quiet, well past it, so batching holds nothing back at the end.
		cfg.Batch, cfg.BufferSize, cfg.Timeout = true, highRateBuffer, highRateTimeout
	}
	lc, err := openAt(nw.captureHost, cfg)
	if err != nil {
		return nil, err
	}
	rec := &recording{link: lc.LinkType()}
	var (
		mu   sync.Mutex
		last = time.Now()
	)
	// The other capture points are read as they come, each with its own
	// annotator: a segment seen at two points is one segment twice, not
	// a retransmission.
	others := make([]*live.Capture, len(nw.others))
	for i, pt := range nw.others {
		others[i], err = openAt(pt.host, live.Config{Interface: pt.iface, Filter: nw.filter, Snaplen: sc.Snaplen})
		if err != nil {
			for _, o := range others[:i] {
				o.Close()
			}
			lc.Close()
			return nil, fmt.Errorf("capture at %s: %w", pt.name, err)
		}
	}
	rec.others = make([][]capture.Packet, len(others))
	var othersDone sync.WaitGroup
	for i, oc := range others {
		rec.links = append(rec.links, oc.LinkType())
		othersDone.Add(1)
		go func() {
			defer othersDone.Done()
			_, err := capture.Walk(oc, capture.NewAnnotator(), func(p *capture.Packet) error {
				q := p.Keep()
				q.Info.InterfaceIndex = 1 + i
				mu.Lock()
				rec.others[i] = append(rec.others[i], q)
				mu.Unlock()
				return nil
			})
			if err != nil {
				mu.Lock()
				rec.err = errors.Join(rec.err, fmt.Errorf("capture at %s: %w", nw.others[i].name, err))
				mu.Unlock()
			}
		}()
	}

	rec.kernel = openKernel(nw, sc, opt)
	defer rec.kernel.close()
	readerDone := make(chan struct{})
	// A HighRate scenario's capture is read once the peers are done: the
	// ring holds the whole transfer meanwhile, and reading it during the
	// transfer would cost the transfer a quarter of its speed on two CPUs
	// (measured), even at the lowest priority.
	drain := make(chan struct{})
	var drainOnce sync.Once
	startDraining := func() { drainOnce.Do(func() { close(drain) }) }
	defer startDraining()
	if !sc.HighRate {
		startDraining()
	}
	go func() {
		defer close(readerDone)
		// The reader runs at the default priority: a HighRate transfer is
		// over when it starts, and at nice 19 beside two busy loops it
		// waited past giveUp between two frames, and the lab stopped
		// reading with most of the transfer still in the ring (seen 3
		// times in 40 soak runs).
		<-drain
		// One annotator follows the whole capture as it comes in, so the
		// end-of-conversation check below only matches what is there.
		_, err := capture.Walk(lc, capture.NewAnnotator(), func(p *capture.Packet) error {
			q := p.Keep()
			mu.Lock()
			rec.packets = append(rec.packets, q)
			index := len(rec.packets) - 1
			last = time.Now()
			mu.Unlock()
			if p.TCP {
				rec.kernel.seen(index, p)
			}
			return nil
		})
		if err != nil {
			mu.Lock()
			rec.err = errors.Join(rec.err, fmt.Errorf("capture: %w", err))
			mu.Unlock()
		}
	}()

	timeout := sc.timeout()
	if sc.Wait != nil {
		timeout += sc.Wait(opt)
	}
	ctx, cancel, clock := withConversationTimeout(parent, timeout)
	defer cancel()
	env := newEnv(addr, opt, progress)
	env.client, env.clientIP, env.offload, env.clock = nw.client, nw.clientIP, nw.setOffload, clock
	env.peer, env.peerServes = nw.peer, sc.Topology == ScriptedServer
	var peersErr error
	// peers is the scenario whose Server and Client run: sc's own, or a
	// copy with the user's command in place of one (-server, -client).
	// sc itself stays as it is: the readers above use it meanwhile.
	peers := sc
	if sc.Setup != nil {
		undo, err := sc.Setup(ctx, env)
		if err != nil {
			peersErr = notStarted{fmt.Errorf("setup: %w", err)}
		} else if undo != nil {
			defer undo()
		}
	}
	if peersErr == nil && opt.External() {
		ext, err := startExternal(ctx, dir, opt.ServerCommand, portOf(addr), opt.IPv6, progress)
		if err != nil {
			peersErr = notStarted{err}
		} else {
			// The user's server runs until the capture is over: it may
			// still be closing when the client is done. A server that
			// ended by itself before then is reported, and what it printed
			// is kept in server.log either way.
			defer func() {
				early := ext.exitedEarly()
				if err := ext.finish(); err != nil {
					rec.err = errors.Join(rec.err, fmt.Errorf("%s: %w", ServerLog, err))
				}
				if early != nil && !rec.interrupted {
					rec.err = errors.Join(rec.err, early)
				}
			}()
			own := *peers
			own.Server = func(context.Context, *Env) error { env.markReady(); return nil }
			peers = &own
		}
	}
	if peersErr == nil && opt.ClientCommand != "" {
		own := *peers
		own.Client = func(ctx context.Context, env *Env) error { return runClientCommand(ctx, env, opt.ClientCommand, dir) }
		peers = &own
	}
	if peersErr == nil {
		peersErr = runPeers(ctx, peers, env, timeout)
	}
	mu.Lock()
	last = time.Now()
	mu.Unlock()
	startDraining()
	if env.peer != nil {
		// How each timed step of the script was met: the run's spread, in
		// result.json's metrics (make soak's runs show it across runs).
		for _, t := range env.peer.Timings() {
			env.Metric(fmt.Sprintf("scripted_step_%02d_offset_ms", t.Step), float64(t.Offset.Microseconds())/1000)
			env.Metric(fmt.Sprintf("scripted_step_%02d_tolerance_ms", t.Step), float64(t.Tolerance.Microseconds())/1000)
		}
	}
	rec.events, rec.metrics = env.Events(), env.Metrics()

	// Wait for the end of the conversation on the wire.
	judged := -1 // packets there were at the last match
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
		mu.Lock()
		silent := time.Since(last)
		pkts := rec.packets
		mu.Unlock()
		if silent < settle {
			continue
		}
		if silent >= giveUp || peersErr != nil && silent >= quiet {
			break
		}
		if len(pkts) != judged {
			judged = len(pkts)
			if expect.Match(sc.Name, steps, pkts, matchOptions(opt)).Pass {
				break
			}
		}
	}
	// Whether the conversation ran out of time is decided here, when the
	// wire says it is over or the time is up: closing the captures below
	// waits for RCU grace periods in the kernel (a packet socket's ring is
	// torn down with synchronize_net), which on a loaded machine took
	// longer than the whole timeout and blamed the conversation for it
	// (every scenario of a soak round failed at once, their captures
	// complete).
	timedOut := ctx.Err() != nil
	if opt.afterConversation != nil {
		opt.afterConversation()
	}
	if sc.HighRate || timedOut {
		// Stopped early (a timeout, an interrupt), the ring may still hold
		// what the reader has not read yet (the last segment sent just
		// before a SIGINT, say): give it a quiet moment, bounded.
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(25 * time.Millisecond) {
			mu.Lock()
			silent := time.Since(last)
			mu.Unlock()
			if silent >= quiet {
				break
			}
		}
	}
	if st, err := lc.Stats(); err == nil {
		rec.drops = st.Dropped
	}
	// Closed at once: each close waits for RCU grace periods (the packet
	// socket's ring), which concurrent closes share.
	var closing sync.WaitGroup
	for _, c := range append([]*live.Capture{lc}, others...) {
		closing.Add(1)
		go func() { defer closing.Done(); c.Close() }()
	}
	closing.Wait()
	<-readerDone
	othersDone.Wait()
	switch {
	case parent.Err() != nil:
		rec.interrupted = true
		peersErr = errors.New("interrupted: the capture so far is kept")
	case timedOut:
		// The peers' own errors (a read that timed out, say) follow.
		peersErr = errors.Join(fmt.Errorf("timed out after %v waiting for the conversation to end", timeout), peersErr)
	}
	rec.noConversation = rec.interrupted || errors.As(peersErr, new(notStarted))
	rec.err = errors.Join(peersErr, rec.err)
	rec.elapsed = time.Since(start)
	return rec, nil
}

// openAt opens a live capture in host's namespace (nil: the run's own);
// the capture stays there, whatever thread reads it.
func openAt(host *netns.Host, cfg live.Config) (*live.Capture, error) {
	var lc *live.Capture
	err := host.Do(func() error {
		var err error
		lc, err = live.Open(cfg)
		return err
	})
	return lc, err
}

// runPeers starts the server, then the client once the server listens, and
// waits for both.
func runPeers(ctx context.Context, sc *Scenario, env *Env, timeout time.Duration) error {
	serverErr := make(chan error, 1)
	go func() { serverErr <- wrap("server", runSide(ctx, sc.Server, env)) }()
	alone := newListensAlone(env.Addr)
	tick := time.NewTicker(graceAlone / 4)
	defer tick.Stop()
wait:
	for {
		select {
		case <-env.ready:
			break wait
		case err := <-serverErr:
			// A server may be done as soon as it is ready (the user's own
			// runs apart): both cases can be ready at once.
			select {
			case <-env.ready:
				serverErr <- err
				break wait
			default:
				if err == nil {
					err = errors.New("server: returned without listening")
				}
				return notStarted{err}
			}
		case now := <-tick.C:
			if err := alone.check(now, listening); err != nil {
				return notStarted{err}
			}
		case <-ctx.Done():
			return notStarted{fmt.Errorf("server: did not listen within %v; a scenario's server listens with env.Listen or env.Accept, which tell the lab it is ready", timeout)}
		}
	}
	clientErr := wrap("client", runSide(ctx, sc.Client, env))
	close(env.clientDone)
	select {
	case err := <-serverErr:
		return errors.Join(clientErr, err)
	case <-ctx.Done():
		return errors.Join(clientErr, fmt.Errorf("server: still running after %v", timeout))
	}
}

// notStarted is the error of a conversation that never began: a Setup
// that failed, a server that never listened. Its cause says all there is
// to say, and the steps the capture then lacks would only repeat it.
type notStarted struct{ error }

func (e notStarted) Unwrap() error { return e.error }

func wrap(who string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", who, err)
}
