package ktrace

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/lab/netns"
)

// MaxNetNS is how many namespaces one Tracer can watch (ktrace.c's
// MAX_NETNS).
const MaxNetNS = 16

// Config says what to trace.
type Config struct {
	// NetNS lists the inodes of the network namespaces whose sockets and
	// packets to report (NetNSInode gives a namespace file's); at least
	// one, at most MaxNetNS. Nothing outside them is reported.
	NetNS []uint64
	// Latency is how long an event may wait in the ring buffer before it
	// is read (the reader is woken early only when the buffer fills up,
	// which is cheaper than for each event); 0 means 10 ms.
	Latency time.Duration
	// Buffer is the length of the Events channel; 0 means 1024. Events
	// that find the channel full wait in the ring buffer, and those that
	// find the ring buffer full are lost (Lost counts them).
	Buffer int
	// Follow is how many segments to follow through the kernel, step by
	// step (Path events; DefaultFollow is a scenario's worth): the first
	// SYNs, FINs, data segments and handshake ACKs the traced namespaces'
	// sockets send, and as many of the application's connect, write,
	// accept and read calls. 0 follows none and attaches none of the
	// path's programs, which then cost nothing.
	Follow int
	// Hosts are the files of the namespaces of NetNS (such as
	// /proc/PID/ns/net), where the path's IP steps are hooked (netfilter
	// hooks belong to a namespace); without them the path has no IP
	// steps.
	Hosts []*os.File
}

// ErrUnsupported is wrapped by the errors of Open that say this machine or
// this process cannot trace the kernel: no root, no BTF, lockdown, a user
// namespace, a kernel without the tracepoints.
var ErrUnsupported = errors.New("kernel tracing is not supported here")

// unsupportedError is an ErrUnsupported with what is missing.
type unsupportedError struct {
	msg string
	err error
}

func (e *unsupportedError) Error() string   { return e.msg }
func (e *unsupportedError) Unwrap() []error { return []error{ErrUnsupported, e.err} }

// NetNSInode returns the inode of the network namespace file f (such as
// /proc/PID/ns/net), by which a Config names it.
func NetNSInode(f *os.File) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("ktrace: stat %s: %w", f.Name(), err)
	}
	return st.Ino, nil
}

// programs are ktrace.c's programs and the tracepoints they attach to.
// Optional ones are left out on a kernel without their tracepoint; of
// those that name args, the one whose count of arguments is the
// tracepoint's is kept.
var programs = []struct {
	name, tracepoint string
	group            string // the tracepoint's tracefs group
	optional         bool
	args             int
}{
	{name: ktraceProgInetSockSetState, tracepoint: "inet_sock_set_state", group: "sock"},
	{name: ktraceProgTcpRetransmitSkbErr, tracepoint: "tcp_retransmit_skb", group: "tcp", args: 3},
	{name: ktraceProgTcpRetransmitSkb, tracepoint: "tcp_retransmit_skb", group: "tcp", args: 2},
	{name: ktraceProgTcpRetransmitSynack, tracepoint: "tcp_retransmit_synack", group: "tcp"},
	{name: ktraceProgTcpCongStateSet, tracepoint: "tcp_cong_state_set", group: "tcp", optional: true},
	{name: ktraceProgTcpSendReset, tracepoint: "tcp_send_reset", group: "tcp", args: 3},
	{name: ktraceProgTcpSendResetNoreason, tracepoint: "tcp_send_reset", group: "tcp", args: 2},
	{name: ktraceProgTcpReceiveReset, tracepoint: "tcp_receive_reset", group: "tcp"},
	{name: ktraceProgKfreeSkbRxSk, tracepoint: "kfree_skb", group: "skb", args: 4},
	{name: ktraceProgKfreeSkb, tracepoint: "kfree_skb", group: "skb", args: 3},
}

// tracepointArgs returns how many arguments the kernel's tracepoint
// passes to a tp_btf program, from the type of its btf_trace_ function
// (whose first parameter is the tracepoint's data, not an argument), or
// false when the kernel has no such tracepoint.
func tracepointArgs(kernel *btf.Spec, tp string) (int, bool) {
	var td *btf.Typedef
	if err := kernel.TypeByName("btf_trace_"+tp, &td); err != nil {
		return 0, false
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return 0, false
	}
	fn, ok := ptr.Target.(*btf.FuncProto)
	if !ok || len(fn.Params) == 0 {
		return 0, false
	}
	return len(fn.Params) - 1, true
}

// Tracer reports the kernel's events for the namespaces of its Config,
// from Open to Close.
type Tracer struct {
	coll    *ebpf.Collection
	links   []link.Link
	reader  *ringbuf.Reader
	events  chan Event
	closing chan struct{} // closed by Close
	once    sync.Once
	skipped []string
	// pathWhy says why the Tracer follows no segment though asked to.
	pathWhy error
	// sentinels count the blackouts (nil where they could not attach:
	// sentinelWhy says why); blackouts is their count once closed.
	sentinels   *sentinels
	sentinelWhy error
	blackouts   uint64

	// pathLinks are the path's programs, attached; pathFull is when the
	// reader saw the last segment it may follow taken (zero before).
	// Guarded by mu: the reader detaches them once done (detachPath).
	pathLinks []link.Link
	pathFull  time.Time
	followMax uint32

	mu        sync.Mutex
	lost      *ebpf.Variable // nil once the objects are closed
	lastLost  uint64         // the variable's last value, once they are
	abandoned uint64         // events nobody received after Close
	missed    uint64         // programs skipped on recursion, once they are closed
	// records counts the records read from the ring buffer, and undelivered
	// the events the programs submitted beyond them, once they are closed.
	records     uint64
	undelivered uint64
}

// Open loads the BPF programs, attaches them and starts reading their
// events. Its errors wrap ErrUnsupported when this process or kernel
// cannot trace (the message says what is missing); Close the Tracer when
// done.
func Open(cfg Config) (*Tracer, error) {
	if len(cfg.NetNS) == 0 {
		return nil, errors.New("ktrace: no network namespace to trace: give Config.NetNS")
	}
	if len(cfg.NetNS) > MaxNetNS {
		return nil, fmt.Errorf("ktrace: %d network namespaces, at most %d", len(cfg.NetNS), MaxNetNS)
	}
	var inums [MaxNetNS]uint32
	for i, ino := range cfg.NetNS {
		if ino == 0 || ino > 1<<32-1 {
			return nil, fmt.Errorf("ktrace: network namespace inode %d: not a namespace's", ino)
		}
		inums[i] = uint32(ino)
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1024
	}
	if cfg.Latency <= 0 {
		cfg.Latency = 10 * time.Millisecond
	}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, &unsupportedError{"kernel events need the kernel's BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y): " + err.Error(), err}
	}
	n, err := reasonNames(kernel)
	if err != nil {
		return nil, fmt.Errorf("ktrace: %w", err)
	}
	offset, err := bootOffset()
	if err != nil {
		return nil, fmt.Errorf("ktrace: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, explain(err)
	}
	spec, err := loadKtrace()
	if err != nil {
		return nil, fmt.Errorf("ktrace: read BPF objects: %w", err)
	}
	if err := spec.Variables[ktraceVarNetnsInums].Set(inums); err != nil {
		return nil, fmt.Errorf("ktrace: set namespaces: %w", err)
	}
	if err := spec.Variables[ktraceVarNetnsCount].Set(uint32(len(cfg.NetNS))); err != nil {
		return nil, fmt.Errorf("ktrace: set namespaces: %w", err)
	}
	if cfg.Follow < 0 || cfg.Follow > 1<<20 {
		return nil, fmt.Errorf("ktrace: Follow %d: use 0 to 1048576 segments", cfg.Follow)
	}
	if err := spec.Variables[ktraceVarFollowMax].Set(uint32(cfg.Follow)); err != nil {
		return nil, fmt.Errorf("ktrace: set follow_max: %w", err)
	}
	t := &Tracer{events: make(chan Event, cfg.Buffer), closing: make(chan struct{}), followMax: uint32(cfg.Follow)}
	paths := t.pathPrograms(kernel, cfg.Follow)
	for _, p := range probes {
		if !paths[p.prog] {
			delete(spec.Programs, p.prog)
		}
	}
	for _, p := range programs {
		args, ok := tracepointArgs(kernel, p.tracepoint)
		switch {
		case !ok && p.optional:
			delete(spec.Programs, p.name)
			t.skipped = append(t.skipped, p.tracepoint)
		case !ok:
			return nil, &unsupportedError{"kernel events need the tracepoint " + p.tracepoint + ", which this kernel lacks", ErrUnsupported}
		case p.args != 0 && p.args != args:
			delete(spec.Programs, p.name)
		}
	}
	opts := ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kernel}}
	t.coll, err = ebpf.NewCollectionWithOptions(spec, opts)
	if err != nil && len(paths) > 0 {
		// The kernel refuses the path's programs: trace the rest.
		t.pathWhy = fmt.Errorf("the kernel refused the path's programs: %s", firstLine(err.Error()))
		for _, p := range probes {
			delete(spec.Programs, p.prog)
		}
		paths = nil
		t.coll, err = ebpf.NewCollectionWithOptions(spec, opts)
	}
	if err != nil {
		return nil, explain(err)
	}
	t.lost = t.coll.Variables[ktraceVarLost]
	// The reader before the links, so that Close undoes them in reverse:
	// links first (no event after), then the reader, then the objects.
	t.reader, err = ringbuf.NewReader(t.coll.Maps[ktraceMapEvents])
	if err != nil {
		t.release()
		return nil, fmt.Errorf("ktrace: ring buffer: %w", err)
	}
	for _, p := range programs {
		prog := t.coll.Programs[p.name]
		if prog == nil {
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			for _, l := range slices.Backward(t.links) {
				l.Close()
			}
			t.release()
			return nil, explain(fmt.Errorf("attach %s: %w", p.tracepoint, err))
		}
		t.links = append(t.links, l)
	}
	var tracepoints []tracepoint
	for _, p := range programs {
		if tp := (tracepoint{p.group, p.tracepoint}); t.coll.Programs[p.name] != nil && !slices.Contains(tracepoints, tp) {
			tracepoints = append(tracepoints, tp)
		}
	}
	t.sentinels, t.sentinelWhy = openSentinels(tracepoints)
	if len(paths) > 0 {
		t.attachPath(cfg.Hosts)
	}
	go t.read(offset, n, cfg.Latency)
	return t, nil
}

// read turns records into Events until Close, then delivers those left in
// the ring buffer, and releases everything.
func (t *Tracer) read(offset time.Duration, n *names, latency time.Duration) {
	defer close(t.events)
	defer t.release()
	var rec ringbuf.Record
	var giveUp <-chan time.Time
	t.reader.SetDeadline(time.Now().Add(latency))
	for {
		err := t.reader.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The ring buffer is read up to here.
			t.detachPath()
			t.reader.SetDeadline(time.Now().Add(latency))
			continue
		}
		if err != nil {
			// ErrFlushed after Close has flushed what was left; any
			// other error ends reading too.
			return
		}
		t.mu.Lock()
		t.records++
		t.mu.Unlock()
		var e Event
		if decode(rec.RawSample, offset, n, &e) != nil {
			continue
		}
		select {
		case t.events <- e:
			continue
		case <-t.closing:
		}
		// Closing: wait a second for a receiver, then count the rest
		// as lost.
		if giveUp == nil {
			giveUp = time.After(time.Second)
		}
		select {
		case t.events <- e:
		case <-giveUp:
			t.mu.Lock()
			t.abandoned++
			t.mu.Unlock()
		}
	}
}

// Events returns the channel of the Tracer's events, in the order the
// kernel wrote them (one ring buffer for all CPUs). A caller must receive
// them: events that back up fill the ring buffer and are lost. After
// Close, the events still in the ring buffer follow, then the channel is
// closed.
func (t *Tracer) Events() <-chan Event { return t.events }

// Lost returns how many events were lost: found the ring buffer full,
// submitted to it and never read from it (counted once Close has drained
// it), not received within a second after Close, or never made because
// the kernel skipped a program that was already running on the CPU.
func (t *Tracer) Lost() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.lastLost
	if t.lost != nil {
		t.lost.Get(&n)
	}
	missed := t.missed
	if t.coll != nil && t.lost != nil {
		missed = t.recursionMisses()
	}
	return n + t.abandoned + missed + t.undelivered
}

// Blackouts returns how many times, while the Tracer was open, the
// kernel ran no BPF program for a tracepoint the events come from that
// fired, on any socket of any namespace, because BPF was busy on that CPU
// (blackout.go): some of those may be events of the Tracer's namespaces
// that it never saw, which Lost cannot count. ok is false when the
// Tracer cannot tell (BlackoutsUnknown says why).
func (t *Tracer) Blackouts() (n uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sentinels == nil {
		return t.blackouts, t.sentinelWhy == nil
	}
	return t.sentinels.count(), true
}

// BlackoutsUnknown says why the Tracer cannot count blackouts (nil when
// it can).
func (t *Tracer) BlackoutsUnknown() error { return t.sentinelWhy }

// undelivered returns how many of the events the programs submitted to
// the ring buffer never came out of it: read of submitted, all of them
// once the reader has drained the buffer after Close.
func undelivered(submitted, read uint64) uint64 {
	if submitted <= read {
		return 0
	}
	return submitted - read
}

// Skipped returns the optional tracepoints and functions this kernel
// lacks, whose events the Tracer cannot report (tcp_cong_state_set before
// Linux 6.3; a path's function the kernel inlines or will not trace).
func (t *Tracer) Skipped() []string { return t.skipped }

// PathUnavailable says why the Tracer follows no segment through the
// kernel though Config.Follow asked it to (nil when it does, or was not
// asked).
func (t *Tracer) PathUnavailable() error { return t.pathWhy }

// pathGrace is how long the path's programs stay attached after the last
// segment they may follow was taken: its steps, and the application's
// read of it, come within milliseconds on the lab's networks, and a bulk
// transfer pays for the programs until then.
const pathGrace = 250 * time.Millisecond

// detachPath detaches the path's programs once they have followed as many
// segments as they may and pathGrace has passed: a bulk transfer's
// thousands of segments after them then cost nothing at all.
func (t *Tracer) detachPath() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pathLinks) == 0 || t.lost == nil {
		return
	}
	if t.pathFull.IsZero() {
		var n uint32
		if v := t.coll.Variables[ktraceVarFollowCount]; v == nil || v.Get(&n) != nil || n < t.followMax {
			return
		}
		t.pathFull = time.Now()
	}
	if time.Since(t.pathFull) < pathGrace {
		return
	}
	for _, l := range slices.Backward(t.pathLinks) {
		l.Close()
	}
	t.pathLinks = nil
}

// pathPrograms returns the path's programs to load, by name: none when
// follow is 0; else those whose tracepoint this kernel has (with the
// arguments the program reads), and the netfilter hooks. The others are
// Skipped.
func (t *Tracer) pathPrograms(kernel *btf.Spec, follow int) map[string]bool {
	if follow == 0 {
		return nil
	}
	out := map[string]bool{}
	for _, p := range probes {
		switch {
		case p.prog == "":
		case p.tracepoint == "":
			out[p.prog] = true
		default:
			if _, ok := tracepointArgs(kernel, p.tracepoint); ok {
				out[p.prog] = true
			} else {
				t.skipped = append(t.skipped, p.tracepoint)
			}
		}
	}
	return out
}

// attachPath attaches the path's loaded programs: tracepoints once,
// netfilter hooks in each namespace of hosts, for IPv4 and IPv6. What
// the kernel refuses is Skipped; a path with no step attached is
// unavailable (PathUnavailable).
func (t *Tracer) attachPath(hosts []*os.File) {
	attached := 0
	for _, p := range probes {
		prog := t.coll.Programs[p.prog]
		if prog == nil {
			continue
		}
		if p.tracepoint == "" {
			for _, h := range hosts {
				for _, pf := range []link.NetfilterProtocolFamily{link.NetfilterProtoIPv4, link.NetfilterProtoIPv6} {
					var l link.Link
					err := netns.Enter(h, func() error {
						var err error
						l, err = link.AttachNetfilter(link.NetfilterOptions{Program: prog, ProtocolFamily: pf, Hook: p.nf, Priority: math.MinInt32 + 1})
						return err
					})
					if err != nil {
						t.skipped = append(t.skipped, fmt.Sprintf("netfilter %s (%v)", p.fn, firstLine(err.Error())))
						continue
					}
					t.pathLinks = append(t.pathLinks, l)
					attached++
				}
			}
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			t.skipped = append(t.skipped, p.tracepoint)
			continue
		}
		t.pathLinks = append(t.pathLinks, l)
		attached++
	}
	if attached == 0 && t.pathWhy == nil {
		t.pathWhy = errors.New("the kernel attached none of the path's programs")
	}
}

// Close detaches the programs: no event happens after it. The events
// already in the ring buffer still come on the Events channel, which is
// closed after them.
func (t *Tracer) Close() error {
	var errs []error
	t.once.Do(func() {
		t.mu.Lock()
		for _, l := range slices.Backward(t.pathLinks) {
			errs = append(errs, l.Close())
		}
		t.pathLinks = nil
		t.mu.Unlock()
		for _, l := range slices.Backward(t.links) {
			errs = append(errs, l.Close())
		}
		t.mu.Lock()
		if t.sentinels != nil {
			// Counted once the programs are detached: no event after.
			t.blackouts = t.sentinels.count()
			t.sentinels.close()
			t.sentinels = nil
		}
		t.mu.Unlock()
		errs = append(errs, t.reader.Flush())
		close(t.closing)
	})
	return errors.Join(errs...)
}

// release undoes the rest of Open in reverse order, once Close has closed
// the links (or Open failed before it had any left open): the reader,
// then the programs and maps.
func (t *Tracer) release() {
	if t.reader != nil {
		t.reader.Close()
	}
	t.mu.Lock()
	if t.lost != nil {
		t.lost.Get(&t.lastLost)
		t.lost = nil
		var submitted uint64
		if v := t.coll.Variables[ktraceVarSubmitted]; v != nil && v.Get(&submitted) == nil {
			t.undelivered = undelivered(submitted, t.records)
		}
	}
	t.missed = t.recursionMisses()
	t.mu.Unlock()
	if t.coll != nil {
		t.coll.Close()
	}
}

// recursionMisses counts the times the kernel skipped one of the
// Tracer's programs because the same program was already running on the
// CPU (a softirq that frees a packet while the program traces another
// free there, say): each is an event that never reached the ring buffer,
// on any socket, the lab's or not. Seen as a missing FIN_WAIT_2 or RTO in
// about one run in 150 on a loaded machine before it was counted.
func (t *Tracer) recursionMisses() uint64 {
	if t.coll == nil {
		return 0
	}
	// Only the account's programs: a path step skipped leaves a gap in
	// one segment's timeline, which says so itself, not in the account.
	var n uint64
	for _, p := range programs {
		if prog := t.coll.Programs[p.name]; prog != nil {
			if st, err := prog.Stats(); err == nil {
				n += st.RecursionMisses
			}
		}
	}
	return n
}

// explain turns the kernel's refusal to load or attach into one line that
// says what is missing, wrapping ErrUnsupported.
func explain(err error) error {
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) && !errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("ktrace: %w", err)
	}
	var msg string
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		msg = "kernel events need a kernel with BPF tracepoints and ring buffers (Linux 5.8 or later): "
	case os.Geteuid() != 0:
		msg = "kernel events need root (CAP_BPF and CAP_PERFMON): run as root: "
	case inUserNS():
		msg = "kernel events cannot be traced from inside a user namespace: run as root outside it: "
	case lockedDown():
		msg = "kernel events are refused by kernel lockdown (/sys/kernel/security/lockdown): "
	default:
		msg = "kernel events need CAP_BPF and CAP_PERFMON: run as root: "
	}
	return &unsupportedError{msg + firstLine(err.Error()), err}
}

// firstLine keeps the verifier's log, if any, out of a one-line error.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// inUserNS reports whether this process runs in a user namespace other
// than the initial one, whose uid_map maps all of the 32-bit range.
func inUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// lockedDown reports whether kernel lockdown is in its confidentiality
// mode, which refuses reading kernel memory from BPF.
func lockedDown() bool {
	b, err := os.ReadFile("/sys/kernel/security/lockdown")
	return err == nil && strings.Contains(string(b), "[confidentiality]")
}

// reasonNames reads the names of the drop and reset reasons from the
// running kernel's BTF: their numbers change between kernels.
func reasonNames(kernel *btf.Spec) (*names, error) {
	n := &names{}
	var err error
	if n.drop, err = enumNames(kernel, "skb_drop_reason", "SKB_DROP_REASON_"); err != nil {
		return nil, err
	}
	if n.reset, err = enumNames(kernel, "sk_rst_reason", "SK_RST_REASON_"); err != nil {
		n.reset = map[uint32]string{} // before Linux 6.10: no reset reasons
	}
	return n, nil
}

func enumNames(kernel *btf.Spec, enum, prefix string) (map[uint32]string, error) {
	var e *btf.Enum
	if err := kernel.TypeByName(enum, &e); err != nil {
		return nil, fmt.Errorf("kernel BTF: enum %s: %w", enum, err)
	}
	m := make(map[uint32]string, len(e.Values))
	for _, v := range e.Values {
		m[uint32(v.Value)] = strings.TrimPrefix(v.Name, prefix)
	}
	return m, nil
}

// bootOffset returns wall-clock time minus boot time, measured by reading
// CLOCK_BOOTTIME between two reads of CLOCK_REALTIME, taking the tightest
// of a few tries.
func bootOffset() (time.Duration, error) {
	best, bestGap := time.Duration(0), time.Duration(1<<62)
	for range 5 {
		var r1, b, r2 unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r1); err != nil {
			return 0, fmt.Errorf("clock_gettime: %w", err)
		}
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &b); err != nil {
			return 0, fmt.Errorf("clock_gettime: %w", err)
		}
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r2); err != nil {
			return 0, fmt.Errorf("clock_gettime: %w", err)
		}
		gap := time.Duration(r2.Nano() - r1.Nano())
		if gap < bestGap {
			best, bestGap = time.Duration(r1.Nano()+int64(gap/2)-b.Nano()), gap
		}
	}
	return best, nil
}
