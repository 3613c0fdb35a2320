package scripted

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/netns"
)

// Config says where a scripted peer lives. Its zero value is the blog
// post's addresses: the kernel 192.168.0.101/24, the script 192.168.0.2,
// on a device tcplab-s0 with MTU 1500 in the caller's namespace.
type Config struct {
	// NetNS is the network namespace of the device and the kernel's
	// sockets (a file such as a netns.Host's); nil is the caller's.
	NetNS *os.File
	// Name is the TUN device's name (at most 15 bytes).
	Name string
	// Kernel is the kernel's address on the device. The kernel reaches
	// Addr through the device: on its prefix, or by a route to Addr
	// alone that Open adds in the namespace when the prefix does not
	// cover it (packetdrill's remote 192.0.2.1 beside a local
	// 192.168.0.1/16).
	Kernel netip.Prefix
	// Addr is the script's address. No host owns it.
	Addr netip.Addr
	// MTU of the device.
	MTU int
	// Tolerance of timed expectations.
	Tolerance Tolerance
	// Noise, when not nil, returns how late the machine's scheduling
	// ran at worst between two times (a thread's wake-ups, measured
	// while the script plays): a due segment that comes later than
	// Tolerance allows is accepted, and waited for, that much later
	// still, as the kernel's timers ran that much late too. Segments
	// early, and late beyond the noise, still fail.
	Noise func(from, to time.Time) time.Duration
	// Offload makes the device take the kernel's TSO/GSO segments
	// whole, as packetdrill's tun0 does (netns.TUNOptions.Offload): a
	// write of several MSS leaves the kernel as one segment of that
	// length, which the script expects and the capture shows as one
	// frame, where a device without it gets them cut at the MSS. The
	// kernel leaves such segments' checksums to the device; the peer
	// completes them, so that the capture's checksums are right.
	Offload bool
	// Veth stands the peer behind the near end of a veth pair, whose far
	// end it reads and writes in a namespace of its own
	// (netns.OpenIPLink), in place of a TUN device: what Open does by
	// itself where this process may not open /dev/net/tun (root's on
	// some machines, even in a user namespace). Not with Offload.
	Veth bool
	// GSOSize, with Offload, marks each TCP segment the script sends as
	// GSO of this segment size (virtio_net_hdr gso_type TCPV4 or TCPV6,
	// gso_size), as packetdrill's --mss writes them: a segment longer
	// than it reaches the kernel as a receive offload's merged segments
	// would, shorter ones as plain segments. 0 marks none.
	GSOSize uint16
	// Aggregate lets an expectation whose template gives a payload
	// length (Len) longer than the segment that comes take the
	// connection's next segments too, until their payloads add up to it,
	// as packetdrill does unless run with --strict_segments: each
	// segment must follow the one before in sequence, every one but the
	// last of the same length, and the template is checked against one
	// segment of their joined payload (the first's header, the flags of
	// all). A segment longer than the template still fails.
	Aggregate bool
	// Queue lets the script send while segments of the kernel that no
	// expectation took are waiting: they stay queued for the next
	// expectation, as packetdrill leaves them, where by default a send
	// fails on them.
	Queue bool
	// Pcap, when not nil, receives every frame sent and received as a
	// pcapng stream, each frame commented with its step.
	Pcap io.Writer
	// Log, when not nil, is told of every frame sent and received, with
	// the comment the pcapng gives it ("scripted: step 3: ..."), as the
	// frame is recorded: a capture of the device made elsewhere (package
	// lab's) can say which of its frames the script sent, and at which
	// step. It runs on the goroutine of the call that recorded the frame.
	Log func(frame []byte, comment string)
}

const (
	defaultName = "tcplab-s0"
	defaultMTU  = 1500
)

// Peer is a scripted address behind a TUN device: the kernel's frames to
// it are queued for the connections' expectations, and their frames are
// written into the device. Its methods are for one goroutine, the
// script's.
type Peer struct {
	cfg Config
	// tun is the device's file, or, where /dev/net/tun is root's, the
	// far end of a veth pair (netns.IPLink) in the namespace far.
	tun   ipDevice
	far   *netns.Host
	tap   *os.File // the device's outgoing frames, kernel-timestamped
	inbox chan frame
	// stamps are the kernel's times of taking the script's frames in,
	// in the order written.
	stamps chan stamp
	stop   chan struct{}
	done   chan struct{}
	start  time.Time // when the device opened, for the frames' offsets

	// taken and queued count the tap's frames read and handed to the
	// inbox, for settle.
	taken, queued atomic.Int64

	mu      sync.Mutex // guards readErr and timings
	readErr error
	timings []Timing

	pending  []frame // segments to the peer's address that the waiting connection did not own
	pcap     *capture.Writer
	pcapErr  error
	step     int
	nextPort uint16
	ipID     uint16
}

// stamp is when the kernel took in a frame the script wrote, with the
// frame's first bytes to tell it.
type stamp struct {
	at   time.Time
	head []byte
}

// stampHead is how many of a frame's first bytes tell it: the IP and TCP
// headers with the IP identifier and the sequence numbers.
const stampHead = 60

// frame is one frame the kernel sent to the device.
type frame struct {
	data []byte
	at   time.Time
	seg  capture.Segment
	tcp  bool
}

// Open creates the peer's device in its namespace and starts reading it.
// It needs CAP_NET_ADMIN there and /dev/net/tun (root's, even in a user
// namespace). Close removes the device.
func Open(cfg Config) (*Peer, error) {
	if cfg.Name == "" {
		cfg.Name = defaultName
	}
	if !cfg.Kernel.IsValid() {
		cfg.Kernel = netip.MustParsePrefix("192.168.0.101/24")
	}
	if !cfg.Addr.IsValid() {
		cfg.Addr = netip.MustParseAddr("192.168.0.2")
	}
	if cfg.MTU == 0 {
		cfg.MTU = defaultMTU
	}
	if cfg.Kernel.Addr().Is4() != cfg.Addr.Is4() {
		return nil, fmt.Errorf("scripted peer: kernel %v and peer %v: give both addresses of one family, IPv4 or IPv6", cfg.Kernel, cfg.Addr)
	}
	// The script answers the kernel's timers: CPU load must not delay it
	// past them (best effort: root may, a container's root may not).
	_ = netns.RaisePriority()
	if cfg.Kernel.Addr() == cfg.Addr {
		return nil, fmt.Errorf("scripted peer: %v is the kernel's own address: give the peer another", cfg.Addr)
	}
	tun, far, err := openDevice(cfg)
	if err != nil {
		return nil, fmt.Errorf("scripted peer: %w", err)
	}
	if !cfg.Kernel.Contains(cfg.Addr) {
		if err := netns.AddRoute(cfg.NetNS, cfg.Name, netip.PrefixFrom(cfg.Addr, cfg.Addr.BitLen())); err != nil {
			tun.Close()
			closeHost(far)
			return nil, fmt.Errorf("scripted peer: %w", err)
		}
	}
	tap, err := openTap(cfg.NetNS, cfg.Name)
	if err != nil {
		tun.Close()
		closeHost(far)
		return nil, fmt.Errorf("scripted peer: %w", err)
	}
	p := &Peer{
		cfg: cfg, tun: tun, far: far, tap: tap, inbox: make(chan frame, 1024), stamps: make(chan stamp, 1024),
		stop: make(chan struct{}), done: make(chan struct{}),
		start: time.Now(), nextPort: 40000, ipID: 1,
	}
	if cfg.Pcap != nil {
		w, err := capture.NewWriter(cfg.Pcap, layers.LinkTypeRaw)
		if err != nil {
			tun.Close()
			tap.Close()
			closeHost(far)
			return nil, fmt.Errorf("scripted peer: %w", err)
		}
		w.FlushEach = true
		p.pcap = w
	}
	go p.drain()
	go p.read()
	return p, nil
}

// ipDevice is where the peer writes the script's packets and reads the
// kernel's: a TUN device's file or a netns.IPLink.
type ipDevice interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	Close() error
}

// openDevice makes the peer's device: a TUN device, or, where this
// process may not open /dev/net/tun (root's on some machines, even in a
// user namespace) and the script wants no offloads, the near end of a
// veth pair whose far end, in a namespace of the peer's own, it reads and
// writes (netns.OpenIPLink).
func openDevice(cfg Config) (ipDevice, *netns.Host, error) {
	if cfg.Veth && cfg.Offload {
		return nil, nil, errors.New("a veth pair takes no offloads: Veth and Offload exclude each other")
	}
	var err error
	if !cfg.Veth {
		var tun *os.File
		tun, err = netns.OpenTUNWith(cfg.NetNS, cfg.Name, []netip.Prefix{cfg.Kernel}, cfg.MTU, netns.TUNOptions{Offload: cfg.Offload})
		switch {
		case err == nil:
			return tun, nil, nil
		case !errors.Is(err, fs.ErrPermission) || cfg.Offload:
			return nil, nil, err
		}
	}
	far, ferr := netns.NewQuietHost("scripted peer")
	if ferr != nil {
		return nil, nil, errors.Join(err, ferr)
	}
	link, lerr := netns.OpenIPLink(cfg.NetNS, cfg.Name, []netip.Prefix{cfg.Kernel}, cfg.MTU, far.File(), "script")
	if lerr != nil {
		far.Close()
		return nil, nil, errors.Join(err, lerr)
	}
	return link, far, nil
}

func closeHost(h *netns.Host) {
	if h != nil {
		h.Close()
	}
}

// LinkHeaderLen is how many bytes come before the IP header in a frame
// captured on the peer's device: 0 on a TUN device, 14 on the veth that
// stands in for it without root.
func (p *Peer) LinkHeaderLen() int {
	if p.far != nil {
		return 14
	}
	return 0
}

// Addr returns the script's address.
func (p *Peer) Addr() netip.Addr { return p.cfg.Addr }

// KernelAddr returns the kernel's address on the peer's device: the one
// its sockets listen on or connect from.
func (p *Peer) KernelAddr() netip.Addr { return p.cfg.Kernel.Addr() }

// drain reads the TUN device until Close, so that its queue never
// fills; the frames themselves come from the tap.
func (p *Peer) drain() {
	buf := make([]byte, netns.VnetHdrLen+1<<16)
	for {
		if _, err := p.tun.Read(buf); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				p.fail(fmt.Errorf("read %s: %w", p.cfg.Name, err))
			}
			return
		}
	}
}

// read queues every frame the kernel sends out of the device until Close,
// with the kernel's timestamp.
func (p *Peer) read() {
	defer close(p.done)
	dec, err := capture.NewDecoder(layers.LinkTypeRaw)
	if err != nil {
		p.fail(err)
		return
	}
	buf, oob := make([]byte, 1<<16), make([]byte, 512)
	for {
		n, at, out, partial, err := readTap(p.tap, buf, oob, &p.taken)
		if err != nil {
			select {
			case <-p.stop: // closed: the raw read says so in words of its own
			default:
				p.fail(fmt.Errorf("read %s: %w", p.cfg.Name, err))
			}
			return
		}
		if !out {
			select {
			case p.stamps <- stamp{at: at, head: slices.Clone(buf[:min(n, stampHead)])}:
			default: // nobody waits for old stamps: write drops them
			}
			continue
		}
		f := frame{data: slices.Clone(buf[:n]), at: at}
		if partial {
			completeChecksum(f.data)
		}
		f.tcp = dec.Decode(f.data, &f.seg)
		f.seg.Time = at
		select {
		case p.inbox <- f:
			p.queued.Add(1)
		case <-p.stop:
			return
		}
	}
}

// settle waits, a second at most, until the tap's reader has queued every
// frame the kernel has sent so far, so that the script judges all of
// them: the reader's socket holds none and it holds none in hand.
func (p *Peer) settle() {
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		// Not p.tap.Fd(), which would make the file blocking.
		rc, err := p.tap.SyscallConn()
		if err != nil {
			return
		}
		n, ierr := 0, error(nil)
		if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
			return
		}
		if n == 0 && p.taken.Load() == p.queued.Load() {
			return
		}
		// The reader is a wake-up away: a short wait, so that an
		// answer the script sends at once reaches the kernel as soon
		// as a peer's would (the kernel sizes its TSO segments from
		// the RTT it measures).
		time.Sleep(20 * time.Microsecond)
	}
}

func (p *Peer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.readErr = err
}

func (p *Peer) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readErr
}

// nextStep numbers the script's next action or expectation, for reports
// and the pcapng's comments.
func (p *Peer) nextStep() int {
	p.step++
	return p.step
}

// write sends one built frame into the device and returns when the
// kernel took it in.
func (p *Peer) write(b []byte, comment string) (time.Time, error) {
	wb := b
	if p.cfg.Offload {
		// A zero virtio_net_hdr: no GSO, and checksums the kernel
		// verifies, as packetdrill writes a segment.
		wb = append(make([]byte, netns.VnetHdrLen, netns.VnetHdrLen+len(b)), b...)
		p.gso(wb[:netns.VnetHdrLen], b)
	}
	before := time.Now()
	if _, err := p.tun.Write(wb); err != nil {
		return time.Time{}, fmt.Errorf("write %s: %w", p.cfg.Name, err)
	}
	at := p.stampOf(b, before, time.Now())
	p.record(at, b, comment)
	return at, nil
}

// gso fills the virtio_net_hdr hdr of the script's frame b when
// Config.GSOSize asks: gso_type (byte 1) and gso_size (bytes 4 and 5, in
// the host's order, as the device reads them).
func (p *Peer) gso(hdr, b []byte) {
	if p.cfg.GSOSize == 0 || len(b) < 1 {
		return
	}
	switch {
	case b[0]>>4 == 4 && len(b) >= 20 && b[9] == unix.IPPROTO_TCP:
		hdr[1] = unix.VIRTIO_NET_HDR_GSO_TCPV4
	case b[0]>>4 == 6 && len(b) >= 40 && b[6] == unix.IPPROTO_TCP:
		hdr[1] = unix.VIRTIO_NET_HDR_GSO_TCPV6
	default:
		return
	}
	binary.NativeEndian.PutUint16(hdr[4:], p.cfg.GSOSize)
}

// stampOf returns the kernel's time of taking in frame b, written between
// before and after, from the tap; if the tap does not give it within a
// second (its queue overflowed), after.
func (p *Peer) stampOf(b []byte, before, after time.Time) time.Time {
	head := b[:min(len(b), stampHead)]
	timeout := time.NewTimer(time.Second)
	defer timeout.Stop()
	for {
		select {
		case s := <-p.stamps:
			// An older frame's stamp, left by a write that gave up, is
			// dropped; so is one outside the write (a clock step).
			if !slices.Equal(s.head, head) {
				continue
			}
			if s.at.Before(before) || s.at.After(after) {
				return after
			}
			return s.at
		case <-timeout.C:
			return after
		case <-p.done:
			return after
		}
	}
}

// other keeps a frame that a waiting connection did not own: a segment
// to the peer's address waits for its own connection; anything else is
// recorded and dropped.
func (p *Peer) other(f frame) {
	if f.tcp && f.seg.Dst.Addr() == p.Addr() {
		p.pending = append(p.pending, f)
		return
	}
	p.record(f.at, f.data, "other: not a TCP segment to the scripted address")
}

// record writes one frame to the pcapng, keeping the first error for
// Close.
func (p *Peer) record(at time.Time, b []byte, comment string) {
	if p.cfg.Log != nil {
		p.cfg.Log(b, comment)
	}
	if p.pcap == nil || p.pcapErr != nil {
		return
	}
	ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(b), Length: len(b)}
	if err := p.pcap.WritePacket(ci, b, comment); err != nil {
		p.pcapErr = fmt.Errorf("scripted peer: pcapng: %w", err)
	}
}

// Close stops reading, records the frames no expectation took as
// "unexpected", and removes the device. Its error is the first of
// reading, writing the pcapng and closing.
func (p *Peer) Close() error {
	close(p.stop)
	cerr := errors.Join(p.tap.Close(), p.tun.Close())
	if p.far != nil {
		cerr = errors.Join(cerr, p.far.Close())
	}
	<-p.done
	for _, f := range p.pending {
		p.record(f.at, f.data, "unexpected: taken by no expectation")
	}
	p.pending = nil
	for {
		select {
		case f := <-p.inbox:
			p.record(f.at, f.data, "unexpected: taken by no expectation")
			continue
		default:
		}
		break
	}
	if p.pcap != nil && p.pcapErr == nil {
		if err := p.pcap.Flush(); err != nil {
			p.pcapErr = fmt.Errorf("scripted peer: pcapng: %w", err)
		}
	}
	return errors.Join(p.err(), p.pcapErr, cerr)
}

// Timing is how a timed expectation (ExpectAt, ExpectAfter) was met: the
// segment's offset from when it was due, within Tolerance.
type Timing struct {
	Step      int
	Due       time.Duration // after the previous event
	Offset    time.Duration // the segment's time less its due time: late is positive
	Tolerance time.Duration
	// Noise is how much of Tolerance the measured noise added
	// (Config.Noise): zero when the segment came within the tolerance
	// it was given.
	Noise time.Duration
}

// Timings returns how each timed expectation met so far was met, in
// order: a run's spread of its timed steps.
func (p *Peer) Timings() []Timing {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Timing(nil), p.timings...)
}

func (p *Peer) timed(t Timing) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timings = append(p.timings, t)
}
