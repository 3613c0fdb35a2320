package lab

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/ktrace"
	"github.com/tcplab/tcplab/lab/report"
)

// KernelMode says how a run learns what the kernel did with its sockets.
type KernelMode string

// The kernel modes. The zero value traces the kernel's events where the
// run can (root, BTF) and samples its sockets elsewhere.
const (
	KernelAuto    KernelMode = ""
	KernelSamples KernelMode = "samples" // INET_DIAG samples only
)

// kernelSource is where a run learns what the kernel did with its
// sockets, beside the capture: the kernel's own events (kernelTrace) or,
// where it cannot trace, samples of the sockets after segments
// (kernelView). One is chosen when the recording starts.
type kernelSource interface {
	// seen tells the source of each TCP packet as the capture reads it,
	// the packet at index of the recording.
	seen(index int, p *capture.Packet)
	// close stops observing: no event after it.
	close()
	// account returns what the source learned, joined to the frames of
	// the recording; the run's packets are all in by then.
	account(pkts []capture.Packet, lang expect.Lang) *kernelAccount
}

// kernelAccount is the kernel's account of a run, as the artifacts hold it.
type kernelAccount struct {
	source report.KernelSource
	// samples and texts are a sampler's: result.json's, and what changed
	// at each sample, by index of the recording.
	samples []report.KernelSample
	texts   map[int]string
	// events are a tracer's, tied to the packets by index of the
	// recording; alone are drops tied to no packet; all are both, in
	// frame order, for result.json.
	events     map[int][]report.KernelEvent
	alone, all []report.KernelEvent
	// untied are the state changes, retransmissions and resets that no
	// frame matches: an attempt that sent nothing (its error as Reason),
	// or a segment the capture lacks.
	untied []report.KernelEvent
	lost   uint64
	// blackouts are the times the kernel ran no BPF program for a traced
	// tracepoint during the run (ktrace.Tracer.Blackouts): a disagreement
	// with the account is then no evidence, for it may lack events.
	blackouts  uint64
	raw        []ktrace.Event
	serverAddr netip.AddrPort
	// paths are the timelines of the segments followed through the
	// kernel, by index of the recording; pathWhy is why there are none
	// though the run traced the kernel; pathNotes what the frames asked
	// for lack.
	paths     map[int]*report.PathTimeline
	pathWhy   error
	pathNotes []string
	// untraced is why the run could not trace the kernel, when it tried.
	untraced error
}

// kernelNotice is what a run says once when it could not trace the
// kernel, with why.
const kernelNotice = "note: the kernel's own events need root and a kernel with BTF (%s); the walkthroughs show the sockets as sampled after each segment instead, and no segment's path through the kernel"

// pathNotice is what a run that traced the kernel says once when it could
// not follow segments through it, with why.
const pathNotice = "note: the kernel's events are traced, but no segment's path through the kernel (%s)"

// openKernel chooses the run's kernel source: a tracer of the run's
// namespaces where it can, else a sampler of both hosts' sockets, or
// neither (noKernelSource).
func openKernel(nw *network, sc *Scenario, opt Options) kernelSource {
	var why error
	if opt.Kernel == KernelAuto {
		t, err := openTrace(nw, opt)
		if err == nil {
			return t
		}
		why = err
	}
	if sc.HighRate {
		return noKernelSource{why}
	}
	kv, err := newKernelView(nw)
	if err != nil {
		return noKernelSource{why}
	}
	kv.why = why
	return kv
}

// noKernelSource is the kernel source of a run that neither traces nor samples
// (a HighRate scenario, whose thousands of segments a sampler would only
// slow down): it has only why it could not trace.
type noKernelSource struct{ why error }

func (noKernelSource) seen(int, *capture.Packet) {}
func (noKernelSource) close()                    {}
func (u noKernelSource) account([]capture.Packet, expect.Lang) *kernelAccount {
	return &kernelAccount{untraced: u.why}
}

// kernelTrace is the kernel's own account of the run: ktrace's events of
// the run's namespaces.
type kernelTrace struct {
	tracer *ktrace.Tracer
	server netip.AddrPort
	done   chan struct{} // closed when the events are all in
	once   sync.Once
	events []ktrace.Event
	lost   uint64
	// blackouts as the tracer counted them, once closed.
	blackouts uint64
	// spaces are the traced namespaces; retrans is how many segments
	// their kernels counted as sent again (RetransSegs) from the tracer's
	// start, until closed (retransErr: why not known).
	spaces     []*os.File
	retrans    uint64
	retransErr error
	// live are the sockets the namespaces had once the run was over
	// (nil: not known).
	live map[uint64]bool
	// frames are the frames whose paths to show (-trace-path), none for
	// the default ones; follow says whether the tracer follows segments.
	frames []int
	follow bool
}

// maxKernelEvents bounds the events one run keeps: a scenario's story is
// told in tens of them; a bulk transfer's are kept up to this many.
const maxKernelEvents = 20000

// openTrace traces the namespaces of nw: the run's own (the server's) and
// the client's host's, following segments through them unless
// opt.NoTracePath.
func openTrace(nw *network, opt Options) (*kernelTrace, error) {
	server, err := netip.ParseAddrPort(nw.serverAddr)
	if err != nil {
		return nil, err
	}
	files := []string{"/proc/thread-self/ns/net"}
	if nw.client != nil {
		files = append(files, fmt.Sprintf("/proc/self/fd/%d", nw.client.File().Fd()))
	}
	var inodes []uint64
	var hosts []*os.File
	defer func() {
		for _, f := range hosts {
			f.Close()
		}
	}()
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("kernel events: %w", err)
		}
		hosts = append(hosts, f)
		ino, err := ktrace.NetNSInode(f)
		if err != nil {
			return nil, err
		}
		inodes = append(inodes, ino)
	}
	cfg := ktrace.Config{NetNS: inodes, Hosts: hosts}
	if !opt.NoTracePath {
		cfg.Follow = ktrace.DefaultFollow
	}
	tr, err := ktrace.Open(cfg)
	if err != nil {
		return nil, err
	}
	k := &kernelTrace{tracer: tr, server: netip.AddrPortFrom(server.Addr().Unmap(), server.Port()), done: make(chan struct{}),
		frames: opt.TracePath, follow: cfg.Follow > 0, spaces: hosts}
	hosts = nil // the run's now: closed with the tracer
	k.retrans, k.retransErr = k.countResends()
	go func() {
		defer close(k.done)
		for e := range tr.Events() {
			if len(k.events) < maxKernelEvents {
				k.events = append(k.events, e)
			} else {
				k.lost++
			}
		}
	}()
	return k, nil
}

func (k *kernelTrace) seen(int, *capture.Packet) {}

// countResends sums the traced namespaces' counts of segments sent
// again.
func (k *kernelTrace) countResends() (uint64, error) {
	var n uint64
	for _, f := range k.spaces {
		c, err := retransSegs(f)
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

func (k *kernelTrace) close() {
	k.once.Do(func() {
		// Counted while the programs still run: a resend after this
		// is told, not counted, and never reads as lost.
		if k.retransErr == nil {
			var end uint64
			if end, k.retransErr = k.countResends(); k.retransErr == nil {
				k.retrans = end - k.retrans
			}
		}
		live := map[uint64]bool{}
		for _, f := range k.spaces {
			l, err := liveSockets(f)
			if err != nil {
				live = nil
				break
			}
			maps.Copy(live, l)
		}
		k.live = live
		for _, f := range k.spaces {
			f.Close()
		}
		k.tracer.Close()
		<-k.done
		k.lost += k.tracer.Lost()
		k.blackouts, _ = k.tracer.Blackouts()
	})
}

func (k *kernelTrace) account(pkts []capture.Packet, _ expect.Lang) *kernelAccount {
	k.close()
	// The path's events name each segment's sender first, even the
	// receiver's socket's: they are the path's alone.
	var own []ktrace.Event
	for _, e := range k.events {
		if e.Kind != ktrace.Path {
			own = append(own, e)
		}
	}
	a := tracedAccount(own, k.lost, pkts, k.server)
	a.blackouts = k.blackouts
	if k.retransErr == nil {
		a.lost += silentCountedResends(k.retrans, own, pkts)
	}
	if k.live != nil {
		a.lost += uint64(unfinishedSockets(own, k.live))
	}
	if !k.follow {
		return a
	}
	if a.pathWhy = k.tracer.PathUnavailable(); a.pathWhy == nil {
		var start time.Time
		if len(pkts) > 0 {
			start = pkts[0].Info.Timestamp
		}
		a.paths = pathTimelines(k.events, pkts, pathFrames(pkts, k.frames), start)
		a.pathNotes = pathWarnings(pkts, k.frames)
	}
	return a
}

// tracedAccount is the account of a traced run: its events joined to
// pkts (joinKernel), with lost counted by the tracer (the run adds what
// the kernel's counters and sockets show missing: silentCountedResends,
// unfinishedSockets). Events lost where
// no counter saw them show as breaks in a socket's chain of state changes
// (ktrace.Gaps) and as resends on the wire that the account does not
// tell of (ktrace.SilentResends): they count as lost too, so that the run
// leaves the kernel's account unjudged rather than contradicted by its
// own gap.
func tracedAccount(events []ktrace.Event, lost uint64, pkts []capture.Packet, server netip.AddrPort) *kernelAccount {
	a := joinKernel(events, pkts, server)
	a.lost = lost + uint64(ktrace.Gaps(events)) + uint64(ktrace.SilentResends(events, pkts))
	return a
}

// joinKernel ties the kernel's events to the packets they are about
// (ktrace.Attach), on the capture's clock, each at its end of the
// connection: the one place where the kernel's account meets the wire.
// server is the server's address, which tells the ends apart.
func joinKernel(events []ktrace.Event, pkts []capture.Packet, server netip.AddrPort) *kernelAccount {
	a := &kernelAccount{source: report.KernelTraced, events: map[int][]report.KernelEvent{}, raw: events, serverAddr: server}
	var start time.Time // the capture clock's zero: its first frame
	if len(pkts) > 0 {
		start = pkts[0].Info.Timestamp
	}
	index := map[int]int{} // frame number -> index of pkts
	for i := range pkts {
		index[pkts[i].Segment.Frame] = i
	}
	type key struct {
		kind   ktrace.Kind
		cookie uint64
		seq    uint32
		nanos  int64
	}
	keyOf := func(e *ktrace.Event) key { return key{e.Kind, e.Cookie, e.Seq, e.Time.UnixNano()} }
	tied := map[key]bool{}
	// When each socket became a time-wait socket, by its own address and
	// its peer's.
	timeWait := map[[2]netip.AddrPort]time.Time{}
	for i := range events {
		if e := &events[i]; e.Kind == ktrace.StateChange && e.NewState == capture.Closed && (e.OldState == capture.FinWait2 || e.OldState == capture.Closing) {
			timeWait[[2]netip.AddrPort{e.Src, e.Dst}] = e.Time
		}
	}
	freed := func(e *ktrace.Event) bool {
		if e.Kind != ktrace.Drop {
			return false
		}
		tw, ok := timeWait[[2]netip.AddrPort{e.Dst, e.Src}]
		return e.Reason == "QUEUE_PURGE" || e.Reason == "NOT_SPECIFIED" && ok && !e.Time.Before(tw)
	}
	attached := ktrace.Attach(events, pkts)
	frames := make([]int, 0, len(attached))
	for f := range attached {
		frames = append(frames, f)
	}
	sort.Ints(frames)
	for _, f := range frames {
		j, ok := index[f]
		if !ok {
			continue
		}
		for _, e := range attached[f] {
			tied[keyOf(&e)] = true
			if freed(&e) {
				continue
			}
			ke := kernelEvent(&e, server, start)
			ke.Frame, ke.Side = f, sideAt(&e, &pkts[j])
			if ke.Kind == 0 || ke.Kind == report.KernelState && ke.From == ke.To {
				// A congestion change is about no segment; a socket
				// set to the state it is in (close() after
				// shutdown(SHUT_WR) in LAST_ACK) does not change.
				continue
			}
			if ke.Kind == report.KernelState && ke.To == capture.Closed && (ke.From == capture.FinWait2 || ke.From == capture.Closing) &&
				!pkts[j].Segment.Flags.Has(capture.RST) {
				// The socket became a time-wait socket, which has no
				// tracepoint of its own.
				ke.To = capture.TimeWait
			}
			a.events[j] = append(a.events[j], ke)
			a.all = append(a.all, ke)
		}
	}
	for i := range events {
		e := &events[i]
		if tied[keyOf(e)] {
			continue
		}
		switch e.Kind {
		case ktrace.Drop:
			if !freed(e) {
				ke := kernelEvent(e, server, start)
				a.alone = append(a.alone, ke)
				a.all = append(a.all, ke)
			}
		case ktrace.StateChange:
			// A listener's own changes belong to no segment.
			listener := e.OldState == capture.Closed && e.NewState == capture.Listen || e.OldState == capture.Listen && e.NewState == capture.Closed
			if !listener {
				a.untied = append(a.untied, kernelEvent(e, server, start))
			}
		case ktrace.Retransmit, ktrace.RetransmitSYNACK, ktrace.ResetSent, ktrace.ResetReceived:
			ke := kernelEvent(e, server, start)
			if e.Err != 0 {
				ke.Reason = unix.ErrnoName(e.Err)
			}
			a.untied = append(a.untied, ke)
		}
	}
	return a
}

// A drop that is no loss: the kernel frees some segments it took in as
// drops. A segment left unread in a socket's queue when it closed is freed
// with QUEUE_PURGE, though TCP had acknowledged it; a segment that reaches
// a time-wait socket (a FIN sent again, say) is answered by it, then freed
// with NOT_SPECIFIED. joinKernel leaves both out.

// sideAt returns the end of the connection that the event e, tied to the
// packet p, happened at: p's sender or its receiver, as e's own address
// (a dropped packet's receiver) is p's source or not.
func sideAt(e *ktrace.Event, p *capture.Packet) report.Side {
	at := e.Src
	if e.Kind == ktrace.Drop {
		at = e.Dst
	}
	sender, receiver := report.SideClient, report.SideServer
	if p.Annotation.Dir == capture.ServerToClient {
		sender, receiver = receiver, sender
	}
	if at == p.Segment.Src {
		return sender
	}
	return receiver
}

// kernelKind returns the artifacts' name of ktrace's kind k; a congestion
// state change has none (0: it is about no segment).
func kernelKind(k ktrace.Kind) report.KernelKind {
	switch k {
	case ktrace.StateChange:
		return report.KernelState
	case ktrace.Retransmit:
		return report.KernelRetransmit
	case ktrace.RetransmitSYNACK:
		return report.KernelRetransmitSYNACK
	case ktrace.ResetSent:
		return report.KernelResetSent
	case ktrace.ResetReceived:
		return report.KernelResetReceived
	case ktrace.Drop:
		return report.KernelDrop
	}
	return 0
}

// retransCause returns the artifacts' name of ktrace's cause c.
func retransCause(c ktrace.RetransCause) report.RetransCause {
	switch c {
	case ktrace.CauseRTO:
		return report.CauseRTO
	case ktrace.CauseFastRetransmit:
		return report.CauseFastRetransmit
	case ktrace.CauseTailLossProbe:
		return report.CauseTailLossProbe
	case ktrace.CauseZeroWindowProbe:
		return report.CauseZeroWindowProbe
	case ktrace.CauseSYNACK:
		return report.CauseSYNACK
	}
	return report.CauseUnknown
}

// kernelEvent turns e into the artifacts' event: its end of the
// connection and its time from the capture's start.
func kernelEvent(e *ktrace.Event, server netip.AddrPort, start time.Time) report.KernelEvent {
	at := e.Src
	if e.Kind == ktrace.Drop {
		at = e.Dst // the receiver dropped it
	}
	side := report.SideClient
	if netip.AddrPortFrom(at.Addr().Unmap(), at.Port()) == server {
		side = report.SideServer
	}
	ke := report.KernelEvent{Side: side, Kind: kernelKind(e.Kind), Socket: e.Cookie, Cause: retransCause(e.Cause), Reason: e.Reason}
	if !start.IsZero() {
		ke.At = e.Time.Sub(start)
	}
	switch e.Kind {
	case ktrace.StateChange:
		ke.From, ke.To = e.OldState, e.NewState
	case ktrace.ResetReceived:
		ke.From = e.OldState
	}
	return ke
}

// result fills r and run with the account.
func (a *kernelAccount) result(r *report.Result, run *report.Run) {
	r.KernelSource, r.Kernel, r.KernelEvents, r.KernelLost = a.source, a.samples, a.all, a.lost
	r.KernelUntied = a.untied
	if a.untraced != nil {
		r.KernelUntraced = a.untraced.Error()
	}
	run.Kernel, run.KernelEvents, run.KernelAlone = a.texts, a.events, a.alone
	run.KernelPaths = a.paths
	idx := make([]int, 0, len(a.paths))
	for j := range a.paths {
		idx = append(idx, j)
	}
	sort.Ints(idx)
	for _, j := range idx {
		r.KernelPaths = append(r.KernelPaths, *a.paths[j])
	}
	if a.pathWhy != nil {
		r.KernelPathUnavailable = a.pathWhy.Error()
	}
	r.KernelWarnings = append(r.KernelWarnings, a.pathNotes...)
}
