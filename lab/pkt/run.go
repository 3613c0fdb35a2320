package pkt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/netns"
	"github.com/tcplab/tcplab/lab/scripted"
)

// Config is how Run plays a script.
type Config struct {
	// Pcap, when not nil, receives every frame of the script as pcapng,
	// each commented with its script line ("step N" is line N).
	Pcap io.Writer
	// Dir is the working directory of backtick commands; empty is the
	// script's folder, as packetdrill runs them.
	Dir string
	// Floor is the least absolute tolerance, whatever the script says:
	// zero is scripted.DefaultAbs, the project's floor for a loaded
	// machine; negative is none (packetdrill's rule exactly).
	Floor time.Duration
	// Auto, when set, measures the scheduling noise of the machine in
	// the script's namespace before it plays (timer wake-ups, see
	// MeasureNoise) and widens the script's tolerance by the worst of
	// them instead of applying Floor: packetdrill's rule on a quiet
	// machine, as wide as the machine's noise on a busy one, and a
	// real timing change (a timer the script did not expect) still
	// fails.
	Auto bool
	// Tick is the kernel's tick: each script starts 250 µs after one,
	// as packetdrill's do, so that the kernel's timers land at the same
	// point of it each run, and Auto also widens by it (see
	// scripted.Tolerance's Tick). Zero has Run measure it
	// (scripted.MeasureTick) for each script.
	Tick time.Duration
	// Timeout bounds how long an event at "*" waits (default 10 s).
	Timeout time.Duration
}

// Device is the name of the script's TUN device, packetdrill's: its
// scripts name it in their commands (tc qdisc ... dev tun0). Each script
// has a namespace of its own, so the name is free in it.
const Device = "tun0"

// Status is how a script ended.
type Status uint8

// The statuses.
const (
	Passed Status = iota
	Failed
	Skipped
)

// String names the status.
func (s Status) String() string {
	switch s {
	case Passed:
		return "pass"
	case Failed:
		return "FAIL"
	case Skipped:
		return "skip"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Result is what Run did with a script.
type Result struct {
	Path   string
	Status Status
	// Line and Event are the failing or unsupported event's (Line 0 for
	// a failure of the lab itself).
	Line  int
	Event string
	// Reason says why the script failed or was skipped: for a failure,
	// packetdrill's "expected ... actual ..." in package scripted's words.
	Reason string
	// Tolerance is the absolute tolerance applied and Why where it came
	// from.
	Tolerance time.Duration
	Why       string
	// Noise is the worst timer wake-up lateness measured before the
	// script played, with Config.Auto; zero otherwise.
	Noise time.Duration
	// Widened is, with Config.Auto, the most that the noise measured
	// while the script played added to an event's tolerance: an event
	// that came later than Tolerance allows, while the machine kept a
	// thread at nice 0 waiting at least that long.
	Widened time.Duration
	// Tick is, with Config.Auto, the kernel's tick the tolerance took
	// into account (see Config.Tick); zero otherwise.
	Tick time.Duration
	// AfterTick is how long after one of the kernel's ticks the script
	// started: packetdrill's 250 µs, unless this process came late to
	// it; zero when the tick was not known.
	AfterTick time.Duration
	// Steps are the events played, in order.
	Steps    []Step
	Duration time.Duration
}

// Step is one event played: its line, its time in the script and when
// it happened, both from the script's start, and what it did.
type Step struct {
	Line      int
	Event     string
	Scheduled time.Duration
	Actual    time.Duration
	Note      string
}

// Error reads as packetdrill's report: "file:line: reason".
func (r *Result) Error() string {
	if r.Status == Passed {
		return ""
	}
	return fmt.Sprintf("%s:%d: %s", r.Path, r.Line, r.Reason)
}

// Run plays s in a network namespace of its own against the real kernel
// and returns how it went. A script with a construct Run cannot play is
// skipped before anything runs.
func Run(ctx context.Context, s *Script, cfg Config) *Result {
	res := &Result{Path: s.Path}
	set, u := settings(s)
	if u == nil {
		s = defined(s, set.Defines)
		u = check(s)
	}
	if u != nil {
		// A value that is wrong (an IPv4 --local_ip in a script run as
		// IPv6) fails the script, as it fails under packetdrill: no
		// runner could play it. A feature tcplab lacks skips it.
		res.Status, res.Line, res.Reason = Skipped, u.Line, u.Reason
		if u.Bad {
			res.Status = Failed
		}
		res.Event = eventAt(s, u.Line)
		return res
	}
	res.Tolerance, res.Why = tolerance(s, set, cfg.Floor)
	python := ""
	for _, e := range s.Events {
		if py, ok := e.(*Python); ok && python == "" {
			p, err := exec.LookPath("python3")
			if err != nil {
				res.Status, res.Line, res.Reason = Skipped, py.Line, "%{ }% blocks need python3, which is not installed"
				res.Event = Format(py)
				return res
			}
			python = p
		}
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Dir(s.Path)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	host, err := netns.NewHost("pkt")
	if err != nil {
		res.Status, res.Reason = Failed, err.Error()
		return res
	}
	defer host.Close()
	// As packetdrill's tun0: the kernel's TSO/GSO segments whole
	// (Offload), an expected packet matched by segments that add up to
	// it (Aggregate), and the kernel's packets that no outbound line
	// took left for the next one, not failing an inbound line (Queue).
	pcfg := scripted.Config{NetNS: host.File(), Name: Device, MTU: set.MTU, Pcap: cfg.Pcap,
		Offload: true, Aggregate: !set.StrictSegments, Queue: true, GSOSize: uint16(set.MSS),
		Tolerance: scripted.Tolerance{Abs: res.Tolerance, Rel: max(set.TolerancePercent/100, 1e-9)}}
	if set.IPv6 {
		pcfg.Kernel, pcfg.Addr = addrs6()
	}
	// packetdrill's --local_ip and --remote_ip over the defaults.
	if set.Local.IsValid() {
		pcfg.Kernel = netip.PrefixFrom(set.Local, set.LocalBits)
	}
	if set.Remote.IsValid() {
		pcfg.Addr = set.Remote
	}
	thread, err := host.Thread()
	if err != nil {
		res.Status, res.Reason = Failed, err.Error()
		return res
	}
	defer thread.Close()
	var meter *scripted.NoiseMeter
	if cfg.Auto {
		meter = scripted.StartNoiseMeter()
		defer meter.Stop()
		pcfg.Noise = meter.Noise()
	}
	peer, err := scripted.Open(pcfg)
	if err != nil {
		res.Status, res.Reason = Failed, err.Error()
		return res
	}
	tick := cfg.Tick
	if tick == 0 {
		if tick, err = scripted.MeasureTick(tickSamples); err != nil {
			peer.Close()
			res.Status, res.Reason = Failed, err.Error()
			return res
		}
	}
	if cfg.Auto {
		// Measured with the peer open: its threads run at the priority
		// the script will.
		noise, err := MeasureNoise(host, noiseSamples)
		if err != nil {
			peer.Close()
			res.Status, res.Reason = Failed, err.Error()
			return res
		}
		res.Noise, res.Tick = noise, tick
		res.Tolerance, res.Why = autoTolerance(s, set, noise, tick)
	}
	r := &runner{
		ctx: ctx, s: s, cfg: cfg, res: res, peer: peer, set: set,
		tol: scripted.Tolerance{Abs: res.Tolerance, Rel: max(set.TolerancePercent/100, 1e-9), Tick: res.Tick},
		call: &caller{dir: cfg.Dir, mapped: set.Mapped, v6: set.IPv6, kernel: peer.KernelAddr(), peer: peer.Addr(),
			bindPort: set.BindPort, connectPort: set.ConnectPort, files: &fdTable{byScript: map[int]int{}}},
		host: host, thread: thread, python: python, meter: meter, tick: tick,
		ts: tsClock{tick: set.TSTick, tol: res.Tolerance, scaled: set.TSEcrScaled},
	}
	if err := r.initScripts(set.InitScripts); err != nil {
		res.Status, res.Reason = Failed, err.Error()
		var f *failure
		if errors.As(err, &f) {
			res.Line = f.line
		}
	} else {
		r.play()
	}
	r.cleanup()
	// The thread's last function closes its file.
	_ = thread.Go(r.threadDelay.close)
	// The script's cleanup command runs whatever happened, as it
	// restores what the script changed.
	if s.Cleanup != nil {
		if err := r.shell(s.Cleanup); err != nil && res.Status == Passed {
			res.Status, res.Line, res.Reason = Failed, s.Cleanup.Line, err.Error()
		}
	}
	for _, t := range peer.Timings() {
		res.Widened = max(res.Widened, t.Noise)
	}
	if err := peer.Close(); err != nil && res.Status == Passed {
		res.Status, res.Reason = Failed, err.Error()
	}
	return res
}

// tolerance is the absolute tolerance Run applies, and why: the
// script's or packetdrill's default, unless the floor (zero is
// scripted.DefaultAbs, negative none) is wider.
func tolerance(s *Script, set Settings, floor time.Duration) (time.Duration, string) {
	tol, why := set.Tolerance, "packetdrill's default --tolerance_usecs"
	switch l, ok := optionLine(s, "tolerance_usecs"); {
	case ok && l == 0:
		why = "--tolerance_usecs on the command line"
	case ok:
		why = "the script's --tolerance_usecs"
	}
	if floor == 0 {
		floor = scripted.DefaultAbs
	}
	if floor > tol {
		return floor, fmt.Sprintf("tcplab's floor, wider than %s (%v)", why, set.Tolerance)
	}
	return tol, why
}

// noiseSamples is how many timer wake-ups MeasureNoise takes for
// Config.Auto: about a tenth of a second.
const noiseSamples = 100

// startAfterTick is how long after one of the kernel's ticks a script
// starts: packetdrill's 250 µs (its schedule_start_time_usecs).
const startAfterTick = 250 * time.Microsecond

// tickSamples is how many waits scripted.MeasureTick takes when Run
// measures the tick: 64 ms at 250 Hz.
const tickSamples = 8

// autoTolerance is the script's tolerance widened by the measured
// noise, and why; a kernel tick longer than a millisecond adds to each
// event what scripted.TickLate says, which the reason tells.
func autoTolerance(s *Script, set Settings, noise, tick time.Duration) (time.Duration, string) {
	why := "packetdrill's default --tolerance_usecs"
	switch l, ok := optionLine(s, "tolerance_usecs"); {
	case ok && l == 0:
		why = "--tolerance_usecs on the command line"
	case ok:
		why = "the script's --tolerance_usecs"
	}
	why = fmt.Sprintf("-tolerance auto: %s (%v) widened by %v, the latest of %d timer wake-ups at tcplab's priority and %d at nice 0 measured in the script's namespace",
		why, set.Tolerance, noise, noiseSamples, noiseSamples)
	if tick > time.Millisecond {
		why += fmt.Sprintf("; and by %v more for an event due 40 ms after the one before (%v for 300 ms), as this kernel's tick is %v (%d Hz) where packetdrill's timings are a 1000 Hz kernel's (its timer wheel fires that much later)",
			scripted.TickLate(40*time.Millisecond, tick), scripted.TickLate(300*time.Millisecond, tick), tick, time.Second/tick)
	}
	return set.Tolerance + noise, why
}

// MeasureNoise sleeps n times for a millisecond on a thread in host's
// namespace and returns the worst lateness of its wake-ups, to the
// microsecond: the kernel's timer and scheduling noise that a packet or
// a call of a script may show. It measures at the process's priority
// and, when that is raised (netns.RaisePriority), n times more at nice 0:
// the priority of ksoftirqd, the kernel's thread that runs its timers
// (a delayed ACK, a retransmission) when a busy machine defers them, so
// that the kernel's own lateness is measured too. Beside two busy loops
// the kernel's delayed ACK came 4 to 5 ms late while a thread at nice
// -10 woke within 0.2 ms.
func MeasureNoise(host *netns.Host, n int) (time.Duration, error) {
	var worst time.Duration
	sample := func() error {
		ts := unix.NsecToTimespec(int64(time.Millisecond))
		for range n {
			t0 := time.Now()
			if err := unix.Nanosleep(&ts, nil); err != nil && err != unix.EINTR {
				return fmt.Errorf("measure the timer noise: %w", err)
			}
			worst = max(worst, time.Since(t0)-time.Millisecond)
		}
		return nil
	}
	err := host.Do(func() error {
		if err := sample(); err != nil {
			return err
		}
		// The raw getpriority returns 20 - nice.
		tid := unix.Gettid()
		prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
		if err != nil || 20-prio >= 0 {
			return nil
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, 0); err != nil {
			return nil
		}
		defer unix.Setpriority(unix.PRIO_PROCESS, tid, 20-prio)
		return sample()
	})
	return worst.Round(time.Microsecond), err
}

// optionLine returns the line of the last option name of s (0: the
// command line's) and whether there is one.
func optionLine(s *Script, name string) (int, bool) {
	line, ok := 0, false
	for _, o := range s.Options {
		if o.Name == name {
			line, ok = o.Line, true
		}
	}
	return line, ok
}

// eventAt formats the event on line.
func eventAt(s *Script, line int) string {
	for _, e := range s.Events {
		if l, _ := e.Pos(); l == line {
			return Format(e)
		}
	}
	return ""
}

// runner is one script being played.
type runner struct {
	ctx   context.Context
	s     *Script
	cfg   Config
	res   *Result
	peer  *scripted.Peer
	conn  *scripted.Conn
	call  *caller
	host  *netns.Host
	meter *scripted.NoiseMeter // nil without Config.Auto
	// thread, in host's namespace, makes the calls that do not block;
	// threadDelay is its run delay.
	thread      *netns.Thread
	threadDelay threadDelay
	// tick is the kernel's tick (Config.Tick): the script starts
	// startAfterTick after one.
	tick  time.Duration
	tol   scripted.Tolerance
	set   Settings
	start time.Time
	// origin is start as the script began, and shifts each move of it
	// since (actedAt): together they place any script time on the wall
	// clock as it was when the script reached that time (wallAt).
	origin time.Time
	shifts []shift
	// reached is, for each script time an event was due at, how many
	// shifts there were once the first such event had played: a later
	// event at the same time (a call right after the packet whose
	// stamp it reads) may move the clock again, after the first.
	reached map[time.Duration]int
	// lastOut is when the last kernel's packet matched came, from start.
	lastOut time.Duration
	// isn is the sequence number of the script's last SYN: packetdrill
	// counts the script's other sequence numbers, and the kernel's
	// acknowledgements of them, from it.
	isn uint32
	// fresh is set when the script's next SYN starts a new connection
	// (opens); connecting are the script's sockets that connected.
	fresh      bool
	connecting map[int64]bool
	// blocked are the calls written with "..." still running.
	blocked []*blockedCall
	// snippets are the %{ }% blocks, run when the script has passed.
	snippets []*snippet
	python   string
	// ts checks the kernel's TS values under --tcp_ts_tick_usecs.
	ts tsClock
}

// blockedCall is a call that blocks until its end time.
type blockedCall struct {
	sc    *Syscall
	begin time.Duration // script time it started
	end   time.Duration // script time it must return
	done  chan callDone
}

type callDone struct {
	out outcome
	err error
	// began and at are when the call was made and when it returned;
	// waited is how long its thread waited for a CPU meanwhile (its
	// scheduler's run delay), which is the lab's delay: the kernel had
	// the call's result ready at at less waited.
	began, at time.Time
	waited    time.Duration
}

// ready is when the kernel had the call's result ready.
func (d callDone) ready() time.Time { return d.at.Add(-d.waited) }

// failure ends the script at line.
type failure struct {
	line int
	msg  string
}

func (f *failure) Error() string { return f.msg }

func (r *runner) fail(line int, format string, args ...any) error {
	return &failure{line: line, msg: fmt.Sprintf(format, args...)}
}

// shift is a move of the script's clock: by over, when it reached at.
type shift struct{ at, over time.Duration }

// wallAt is the wall-clock time at which the script's clock read st:
// when the first event due then played, if one did.
func (r *runner) wallAt(st time.Duration) time.Time {
	shifts := r.shifts
	if n, ok := r.reached[st]; ok {
		shifts = shifts[:n]
	}
	t := r.origin.Add(st)
	for _, s := range shifts {
		if s.at <= st {
			t = t.Add(s.over)
		}
	}
	return t
}

func (r *runner) play() {
	// The script's thread opens its schedstat file before the script
	// starts, not at its first call.
	_ = r.thread.Go(func() { r.threadDelay.read() })
	// As packetdrill, a little after one of the kernel's ticks.
	if err := scripted.AwaitTick(r.tick, startAfterTick); err != nil {
		r.res.Status, r.res.Reason = Failed, err.Error()
		return
	}
	r.start = time.Now()
	if r.tick > 0 {
		if now, err := scripted.Monotonic(); err == nil {
			r.res.AfterTick = now % r.tick
		}
	}
	r.origin = r.start
	r.reached = map[time.Duration]int{}
	r.call.stamps = stampCheck{at: r.wallAt, tol: r.tol.Abs}
	prev := time.Duration(0)
	afterOut := false // the previous event was the kernel's packet
	var err error
	for _, e := range r.s.Events {
		if err = r.ctx.Err(); err != nil {
			break
		}
		line, t := e.Pos()
		st := due(e, prev, r.lastOut, afterOut)
		pk, isPkt := e.(*Packet)
		afterOut = isPkt && pk.Dir == Outbound
		// A call waits for the calls still blocked that are due by its
		// time, as packetdrill's one thread of system calls does; other
		// events at a call's end time come first: they make it return.
		_, isCall := e.(*Syscall)
		if err = r.settle(st, isCall); err != nil {
			break
		}
		r.peer.StepTo(line)
		var next time.Duration
		next, err = r.event(e, t, prev, st)
		if err != nil {
			break
		}
		if _, ok := r.reached[st]; !ok {
			r.reached[st] = len(r.shifts)
		}
		prev = next
	}
	if err == nil {
		err = r.settle(1<<62-1, true)
	}
	// The %{ }% blocks run at the end, as packetdrill runs them.
	for _, sn := range r.snippets {
		if err != nil {
			break
		}
		if perr := sn.run(r.python); perr != nil {
			err = r.fail(sn.py.Line, "%v", perr)
		}
	}
	if err != nil {
		r.res.Status, r.res.Reason = Failed, err.Error()
		var f *failure
		if errors.As(err, &f) {
			r.res.Line, r.res.Reason = f.line, f.msg
			r.res.Event = eventAt(r.s, f.line)
		}
	}
}

// due is the script time of event e, prev being the previous event's
// and lastOut when the last kernel's packet came (afterOut: the previous
// event was that packet). A kernel's packet right after another counts
// from when the other came, as the kernel's timers run (a resend's
// backoff starts at the resend) and as packetdrill times a relative
// event (from when it saw the one before): the first one's lateness
// within the tolerance is not charged to the second again.
func due(e Event, prev, lastOut time.Duration, afterOut bool) time.Duration {
	_, t := e.Pos()
	switch t.Kind {
	case Absolute:
		return t.At
	case Relative:
		if pk, ok := e.(*Packet); ok && pk.Dir == Outbound && afterOut {
			return lastOut + t.At
		}
		return prev + t.At
	}
	return prev
}

// spanEnd is the script time at which the span of t, an event due at
// script time st, ends. As packetdrill adjusts an event's times, a
// relative event's end counts from the same time as its start (the
// event before), written with "+" or not: "+.1...0.2" ends 0.2 after
// the event before, 0.1 after its own start. An absolute end is itself;
// a relative end after an absolute start counts from the start.
func spanEnd(t Time, st time.Duration) time.Duration {
	switch {
	case t.Kind == Relative:
		return st - t.At + t.End
	case t.EndKind == Absolute:
		return t.End
	}
	return st + t.End
}

// wait sleeps until script time st, when the script acts. When this
// process comes late to it (a CPU shared with other work), the script's
// clock waits for it: later events, and the kernel's answers, are timed
// from when the script really acted, so the lab's own delay is never
// charged to the kernel.
func (r *runner) wait(st time.Duration) {
	if d := time.Until(r.start.Add(st)); d > 0 {
		select {
		case <-time.After(d):
		case <-r.ctx.Done():
		}
	}
	r.actedAt(st, time.Now())
}

// actedAt moves the script's clock when the event due at st reached the
// kernel at at, later than due: a goroutine kept from the CPU between
// waking and acting is the lab's delay, not the kernel's.
func (r *runner) actedAt(st time.Duration, at time.Time) {
	if over := at.Sub(r.start.Add(st)); over > time.Millisecond {
		r.start = r.start.Add(over)
		r.shifts = append(r.shifts, shift{st, over})
	}
}

func (r *runner) step(line int, e Event, st time.Duration, at time.Time, note string) {
	r.res.Steps = append(r.res.Steps, Step{Line: line, Event: Format(e), Scheduled: st, Actual: at.Sub(r.start), Note: note})
}

// event plays one event due at script time st (prev is the previous
// event's) and returns the script time the next relative event counts
// from.
func (r *runner) event(e Event, t Time, prev, st time.Duration) (time.Duration, error) {
	line := 0
	line, _ = e.Pos()
	switch e := e.(type) {
	case *Packet:
		if e.ICMP != nil {
			r.wait(st)
			m, err := icmpOf(e.ICMP, r.call.v6)
			if err != nil {
				return 0, r.fail(line, "inbound ICMP message: %v", err)
			}
			if r.conn == nil {
				return 0, r.fail(line, "inbound ICMP message: it quotes a segment of a connection, and there is none yet")
			}
			at, err := r.conn.TrySendICMP(m)
			if err != nil {
				return 0, r.fail(line, "inbound ICMP message: %v", err)
			}
			r.actedAt(st, at)
			r.step(line, e, st, at, "sent")
			return st, nil
		}
		if e.Dir == Inbound {
			r.wait(st)
			if r.conn == nil || r.fresh && e.Flags.Has(capture.SYN) && !e.Flags.Has(capture.ACK) {
				r.conn, r.fresh = r.peer.Dial(r.set.BindPort), false
			}
			seg := sendTemplate(e, namedCookie(e, r.peer.Addr(), r.peer.KernelAddr()))
			// A TS ecr that sendTemplate leaves to the peer (all but a
			// SYN's) on the kernel's clock, as packetdrill maps it.
			if _, ecr, ok := lineTS(e); ok && seg.Options.TSEcr == nil {
				if v, ok := r.ts.ecr(r.conn, ecr); ok {
					seg.Options.TSEcr = &v
				}
			}
			// packetdrill's sequence numbers: a SYN's is the script's
			// initial one, the others count from it.
			if e.Flags.Has(capture.SYN) {
				r.isn = e.Seq
			} else {
				*seg.Seq += r.isn
			}
			at, err := r.conn.TrySend(seg)
			if err != nil {
				return 0, r.fail(line, "inbound packet: %v", err)
			}
			// The kernel's answer is timed from when it took the
			// segment in.
			r.actedAt(st, at)
			r.step(line, e, st, at, "sent")
			return st, nil
		}
		if r.conn == nil || r.fresh && e.Flags.Has(capture.SYN) && !e.Flags.Has(capture.ACK) {
			r.conn, r.fresh = r.peer.Listen(r.set.ConnectPort), false
		}
		want := expectTemplate(e)
		if e.Flags.Has(capture.SYN) && e.Seq != 0 {
			// packetdrill takes the kernel's SYN's sequence number
			// in the script as the script's name of its initial one
			// ("> S. 1234:1234(0)"): any will do.
			want.Seq = nil
		}
		if !e.Flags.Has(capture.SYN) {
			if want.Ack != nil {
				want.Ack = scripted.Uint32(*want.Ack + r.isn)
			}
			for i := range want.Options.SACK {
				want.Options.SACK[i].Left += r.isn
				want.Options.SACK[i].Right += r.isn
			}
		}
		var got scripted.Segment
		var err error
		switch {
		case t.Kind == AnyTime:
			got, err = r.conn.TryExpect(want, r.cfg.Timeout)
		case t.Span == Range:
			end := spanEnd(t, st)
			mid := (st + end) / 2
			// A range's tolerance is the absolute one, as packetdrill's,
			// and what the kernel's tick adds to a timer that long.
			got, err = r.conn.TryExpectDue(want, r.start.Add(mid), mid-prev, (end-st)/2+r.tol.Of(0)-r.tol.Late(0)+r.tol.Late(mid-prev))
		default:
			got, err = r.conn.TryExpectDue(want, r.start.Add(st), st-prev, r.tol.Of(st-prev))
		}
		if err != nil {
			return 0, r.fail(line, "outbound packet: expected %s\n%v", e.text(), err)
		}
		if unnamedAccECN(e, got) {
			return 0, r.fail(line, "outbound packet: expected %s\nAccECN option <%v>, want none", e.text(), got.AccECN)
		}
		if c := namedCookie(e, r.peer.Addr(), r.peer.KernelAddr()); c != nil && !bytes.Equal(got.FastOpenCookie, c) {
			return 0, r.fail(line, "outbound packet: expected %s\nFast Open cookie %x, want %x", e.text(), got.FastOpenCookie, c)
		}
		if msg := r.ts.check(r.conn, e, got); msg != "" {
			return 0, r.fail(line, "outbound packet: expected %s\n%s", e.text(), msg)
		}
		r.step(line, e, st, got.At, "matched")
		r.lastOut = got.At.Sub(r.start)
		if t.Kind == AnyTime {
			return got.At.Sub(r.start), nil
		}
		return st, nil
	case *Python:
		due := r.start.Add(st)
		r.wait(st)
		fd := r.call.files.underTest()
		if fd < 0 {
			return 0, r.fail(line, "no socket for the block's tcpi_* values: open one first")
		}
		vars, at, err := tcpInfoAt(fd)
		if err != nil {
			return 0, r.fail(line, "%v", err)
		}
		asOf(vars, at.Sub(due))
		r.snippets = append(r.snippets, &snippet{py: e, vars: vars})
		r.step(line, e, st, time.Now(), "read tcpi_*")
		return st, nil
	case *Shell:
		r.wait(st)
		if err := r.shell(e); err != nil {
			return 0, r.fail(line, "%v", err)
		}
		now := time.Now()
		r.step(line, e, st, now, "ran")
		// A command's own time (a fork and exec on a busy machine) does
		// not count against the events after it: the script's clock
		// waits for it.
		r.wait(st)
		return st, nil
	case *Syscall:
		r.wait(st)
		r.opens(e)
		at := time.Now()
		done := make(chan callDone, 1)
		began := make(chan time.Time, 1)
		// The call runs on a thread in the script's namespace (where
		// socket makes its sockets) that tells how long it waited for
		// a CPU (delay), so that its run delay is the call's.
		call := func(delay func() time.Duration) {
			w0 := delay()
			d := callDone{began: time.Now()}
			began <- d.began
			d.out, d.err = r.call.call(e)
			d.at = time.Now()
			d.waited = delay() - w0
			done <- d
		}
		failed := func(err error) { done <- callDone{err: err, began: at, at: time.Now()} }
		if t.Span == Blocking {
			// A call that blocks has a thread of its own, as in
			// packetdrill.
			go func() {
				if err := r.host.Do(func() error { call(runDelay); return nil }); err != nil {
					failed(err)
				}
			}()
		} else if err := r.thread.Go(func() { call(r.threadDelay.read) }); err != nil {
			// The others are made from the script's thread, in a few
			// microseconds each.
			failed(err)
		}
		if t.Span == Blocking {
			// What the call does while it blocks (a connect's SYN) is
			// timed from when its thread made it: a thread that got a
			// CPU late is the lab's delay, which the script's clock
			// waits for.
			select {
			case b := <-began:
				r.actedAt(st, b)
				at = b
			case d := <-done:
				// The thread never made the call (host.Do failed).
				done <- d
			case <-r.ctx.Done():
			}
			end := spanEnd(t, st)
			r.blocked = append(r.blocked, &blockedCall{sc: e, begin: st, end: end, done: done})
			r.step(line, e, st, at, "started")
			return st, nil
		}
		// A call without "..." must return at once: within the
		// tolerance of when it was made, even if the script was behind.
		limit := r.tol.Of(0)
		var d callDone
		select {
		case d = <-done:
		case <-time.After(time.Until(at.Add(limit + time.Second))):
			return 0, r.fail(line, "%s still blocked %v after it was made: a call without ... must return at once (write 0...T for a call that blocks until T)", e.Name, limit)
		}
		if took := d.ready().Sub(d.began); took > limit {
			return 0, r.fail(line, "%s returned %v after it was made: a call without ... must not block", e.Name, took.Round(time.Millisecond))
		}
		if err := r.check(e, d); err != nil {
			return 0, err
		}
		// What the call did, it did when it was made.
		r.actedAt(st, d.began)
		r.step(line, e, st, d.at, "returned")
		return st, nil
	}
	return 0, r.fail(line, "event %T is not supported", e)
}

// settle checks the blocking calls due before script time st (or at
// it, when inclusive): each must
// return at its end time, within the tolerance.
func (r *runner) settle(st time.Duration, inclusive bool) error {
	keep := r.blocked[:0]
	for _, b := range r.blocked {
		if b.end > st || b.end == st && !inclusive {
			keep = append(keep, b)
			continue
		}
		line, _ := b.sc.Pos()
		tol := r.tol.Of(b.end - b.begin)
		due := r.start.Add(b.end)
		select {
		case d := <-b.done:
			in, noise := scripted.Within(d.ready(), due, tol, r.meter.Noise())
			if !in {
				return r.fail(line, "%s returned at %v, expected at %v ± %v%s", b.sc.Name, d.ready().Sub(r.start).Round(time.Millisecond), b.end, tol, noiseNote(r.meter, due.Add(-tol), d.ready()))
			}
			r.res.Widened = max(r.res.Widened, noise)
			if err := r.check(b.sc, d); err != nil {
				return err
			}
			r.step(line, b.sc, b.end, d.at, "returned")
		case <-time.After(time.Until(due.Add(tol + time.Second))):
			return r.fail(line, "%s still blocked at %v, expected to return at %v ± %v", b.sc.Name, (b.end + tol), b.end, tol)
		}
	}
	r.blocked = keep
	return nil
}

// opens notes a call after which the script's next SYN starts a new
// connection, as packetdrill makes the socket it names the one under
// test: listen, and the first connect, or sendto or sendmsg with
// MSG_FASTOPEN, of a socket. The connection before stays in the capture;
// its later packets are taken by no line.
func (r *runner) opens(sc *Syscall) {
	fd := func() int64 {
		if len(sc.Args) == 0 {
			return -1
		}
		v, err := eval(sc.Args[0])
		if err != nil {
			return -1
		}
		return v
	}
	fastOpen := func(i int) bool {
		if len(sc.Args) <= i {
			return false
		}
		v, err := eval(sc.Args[i])
		return err == nil && v&unix.MSG_FASTOPEN != 0
	}
	first := func() bool {
		n := fd()
		if r.connecting == nil {
			r.connecting = map[int64]bool{}
		}
		was := r.connecting[n]
		r.connecting[n] = true
		return !was
	}
	switch {
	case disconnect(sc):
		// A socket disconnected connects again as a new one.
		delete(r.connecting, fd())
	case sendtoUnspec(sc):
		// An address of no family connects nothing.
	case sc.Name == "listen",
		sc.Name == "connect" && first(),
		sc.Name == "sendto" && fastOpen(3) && first(),
		sc.Name == "sendmsg" && fastOpen(2) && first():
		r.fresh = true
	case sc.Name == "close":
		// A descriptor closed may come back for another socket.
		delete(r.connecting, fd())
	}
}

// newsFD are the calls whose result is a new descriptor.
var newsFD = map[string]bool{"socket": true, "accept": true, "open": true, "epoll_create": true}

// check compares a call's outcome with what the script expects of it.
func (r *runner) check(sc *Syscall, d callDone) error {
	line, _ := sc.Pos()
	if d.err != nil {
		return r.fail(line, "%s: %v", sc.Name, d.err)
	}
	got := d.out
	want, err := eval(sc.Result)
	if err != nil {
		return r.fail(line, "%s: result: %v", sc.Name, err)
	}
	actual := func() string {
		if got.errno != 0 {
			return fmt.Sprintf("-1 %s (%v)", unix.ErrnoName(got.errno), got.errno)
		}
		return fmt.Sprint(got.ret)
	}
	if sc.Errno != "" {
		if got.errno == 0 || !sameErrno(unix.ErrnoName(got.errno), sc.Errno) || want != -1 {
			return r.fail(line, "%s: expected result %d %s but got %s", sc.Name, want, sc.Errno, actual())
		}
		return nil
	}
	if got.mismatch != "" {
		return r.fail(line, "%s: %s", sc.Name, got.mismatch)
	}
	// A call that makes a descriptor names it as the script says, as
	// packetdrill maps script descriptors to real ones.
	if newsFD[sc.Name] && got.errno == 0 && got.ret != want && want >= 0 && r.call.files.renumber(int(got.ret), int(want)) {
		got.ret = want
	}
	// "= -1 (text)" without an errno's name: packetdrill checks the
	// result only.
	anyErrno := want == -1 && got.errno != 0
	if got.errno != 0 && !anyErrno || got.ret != want {
		return r.fail(line, "%s: expected result %d but got %s", sc.Name, want, actual())
	}
	at := 3 // getsockopt's
	if got.valueArg > 0 {
		at = got.valueArg
	}
	if got.value != nil && len(sc.Args) > at && sc.Args[at] != (Ellipsis{}) {
		v, err := eval(sc.Args[at])
		if err != nil {
			return r.fail(line, "%s: expected value: %v", sc.Name, err)
		}
		// An int option written unsigned ([0xffffffff]) is the kernel's
		// int -1, as packetdrill compares 32-bit values.
		unsigned32 := v > math.MaxInt32 && v <= math.MaxUint32 && int64(int32(uint32(v))) == *got.value
		if v != *got.value && !unsigned32 {
			return r.fail(line, "%s: expected value %d but got %d", sc.Name, v, *got.value)
		}
	}
	return nil
}

// sameErrno compares errno names, EAGAIN and EWOULDBLOCK being one, and
// EOPNOTSUPP and ENOTSUP.
func sameErrno(a, b string) bool {
	norm := func(s string) string {
		switch s {
		case "EWOULDBLOCK":
			return "EAGAIN"
		case "EOPNOTSUPP":
			return "ENOTSUP"
		}
		return s
	}
	return norm(a) == norm(b)
}

// shell runs a backtick command with /bin/sh in the script's namespace
// and folder.
func (r *runner) shell(sh *Shell) error {
	var out []byte
	err := r.host.Do(func() error {
		// The child inherits this thread's network namespace.
		cmd := exec.CommandContext(r.ctx, "/bin/sh", "-c", sh.Command)
		cmd.Dir = r.cfg.Dir
		// packetdrill's: its helper scripts (set_sysctls.py) name their
		// restore file by it, which a script's later command finds as
		// its shell's $PPID: this process.
		cmd.Env = append(os.Environ(), "PACKETDRILL_PID="+strconv.Itoa(os.Getpid()))
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	if err != nil {
		return fmt.Errorf("command `%s` failed: %v: %s", sh.Command, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// initScripts runs --init_scripts' commands, then the script's own
// untimed init command, in the script's namespace and folder, as
// packetdrill runs them before a script.
func (r *runner) initScripts(cmds []string) error {
	for _, c := range cmds {
		if err := r.shell(&Shell{Command: c}); err != nil {
			return fmt.Errorf("--init_scripts: %w", err)
		}
	}
	if r.s.Init != nil {
		if err := r.shell(r.s.Init); err != nil {
			return &failure{line: r.s.Init.Line, msg: err.Error()}
		}
	}
	return nil
}

// cleanup wakes the calls still blocked and closes every socket.
func (r *runner) cleanup() {
	fds := r.call.files.all()
	for _, fd := range fds {
		unix.Shutdown(fd, unix.SHUT_RDWR)
	}
	for _, b := range r.blocked {
		select {
		case <-b.done:
		case <-time.After(time.Second):
		}
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// runDelay is how long this thread has waited for a CPU while runnable,
// from the scheduler's statistics (/proc/thread-self/schedstat), or zero
// where the kernel keeps none.
func runDelay() time.Duration {
	b, err := os.ReadFile("/proc/thread-self/schedstat")
	if err != nil {
		return 0
	}
	return parseRunDelay(b)
}

// threadDelay is runDelay for the one thread that reads it, with the
// file kept open: reading it again costs microseconds where opening it
// costs tens.
type threadDelay struct{ f *os.File }

// read is runDelay for the calling thread, which must be the thread that
// read it first (a locked one).
func (t *threadDelay) read() time.Duration {
	if t.f == nil {
		f, err := os.Open("/proc/thread-self/schedstat")
		if err != nil {
			return 0
		}
		t.f = f
	}
	var b [128]byte
	n, err := t.f.ReadAt(b[:], 0)
	if n == 0 && err != nil {
		return 0
	}
	return parseRunDelay(b[:n])
}

// close closes the file.
func (t *threadDelay) close() {
	if t.f != nil {
		t.f.Close()
	}
}

// parseRunDelay is the run delay of a schedstat file's content, its
// second field, in nanoseconds.
func parseRunDelay(b []byte) time.Duration {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	ns, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return time.Duration(ns)
}
