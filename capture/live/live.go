// Package live captures packets from a network interface through libpcap,
// and compiles BPF filter expressions with it to select frames of a file.
// It is the only package of tcplab that needs cgo: everything else about
// packets (decoding, annotating, reading and writing pcap and pcapng) is in
// package capture, which builds with CGO_ENABLED=0.
//
// A Capture is a capture.Source: capture.Walk reads it like a file, and a
// read that times out returns capture.ErrTimeout so that the caller can
// check its own end condition and read again.
package live

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"

	"github.com/tcplab/tcplab/capture"
)

// Defaults of Config's zero values.
const (
	DefaultInterface  = "lo"
	DefaultSnaplen    = 262144
	DefaultBufferSize = 8 << 20
	DefaultTimeout    = 20 * time.Millisecond
)

// Config says what Open captures. The zero value captures everything
// on lo.
type Config struct {
	// Interface is the interface to capture on; "" means "lo".
	Interface string
	// Snaplen is the number of bytes kept of each frame; 0 means 262144.
	Snaplen int
	// BufferSize is the size in bytes of the kernel ring that holds frames
	// until they are read; 0 means 8 MiB.
	BufferSize int
	// Filter is a BPF filter expression such as "tcp port 8080"; "" keeps
	// every frame.
	Filter string
	// Timeout is how long ReadPacketData waits for a frame before it
	// returns capture.ErrTimeout; 0 or less means 20ms. (libpcap on Linux never
	// delivers anything with a timeout of 0, so 0 is never passed on.)
	Timeout time.Duration
	// Batch turns immediate mode off: the kernel hands frames over a
	// block at a time, when a block fills or Timeout passes, instead of
	// waking the reader for every frame. At tens of thousands of frames a
	// second on two CPUs, those wake-ups cost the traffic under capture
	// half its speed. A batched reader must go on reading for longer than
	// Timeout after the last frame it expects, or that frame stays in the
	// kernel's ring when the capture closes.
	Batch bool
}

func (c Config) withDefaults() Config {
	if c.Interface == "" {
		c.Interface = DefaultInterface
	}
	if c.Snaplen <= 0 {
		c.Snaplen = DefaultSnaplen
	}
	if c.BufferSize <= 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Capture is a live capture on one interface, opened with Open. It is a
// capture.Source. ReadPacketData may run concurrently with Close, Stats and LinkType;
// it is not meant to be called from two goroutines at once.
type Capture struct {
	handle   *pcap.Handle
	iface    string
	linkType layers.LinkType

	mu     sync.Mutex // guards closed, and handle against Stats after Close
	closed bool
}

// Stats counts what the kernel did with the frames of a Capture.
type Stats struct {
	// Received is libpcap's count of frames the capture saw. On lo each
	// frame is seen twice (outgoing and incoming, and libpcap discards the
	// outgoing copy itself), so it is about twice the number of frames read;
	// compare Dropped, not Received, to decide whether a capture is complete.
	Received int
	// Dropped is the number of frames lost: dropped by the kernel because
	// the buffer was full, plus dropped by the interface.
	Dropped int
}

// Open starts a live capture. It uses immediate mode: without it libpcap
// holds frames in its ring until a block fills or times out, and the last
// frames of a connection (the final FIN/ACK) may still be there when the
// caller stops reading. Capturing needs CAP_NET_RAW; the error says so when
// that is the problem.
func Open(cfg Config) (*Capture, error) {
	cfg = cfg.withDefaults()
	in, err := pcap.NewInactiveHandle(cfg.Interface)
	if err != nil {
		return nil, listenError(cfg.Interface, "open", err)
	}
	defer in.CleanUp()
	if err := in.SetSnapLen(cfg.Snaplen); err != nil {
		return nil, fmt.Errorf("capture: %s: set snaplen %d: %w", cfg.Interface, cfg.Snaplen, err)
	}
	if err := in.SetBufferSize(cfg.BufferSize); err != nil {
		return nil, fmt.Errorf("capture: %s: set buffer size %d: %w", cfg.Interface, cfg.BufferSize, err)
	}
	if err := in.SetImmediateMode(!cfg.Batch); err != nil {
		return nil, fmt.Errorf("capture: %s: set immediate mode: %w", cfg.Interface, err)
	}
	if err := in.SetTimeout(cfg.Timeout); err != nil {
		return nil, fmt.Errorf("capture: %s: set timeout %v: %w", cfg.Interface, cfg.Timeout, err)
	}
	h, err := in.Activate()
	if err != nil {
		return nil, listenError(cfg.Interface, "activate", err)
	}
	if cfg.Filter != "" {
		// libpcap on Linux also filters, in user space, the frames that
		// reached the ring before the kernel filter was in place.
		if err := h.SetBPFFilter(cfg.Filter); err != nil {
			h.Close()
			return nil, fmt.Errorf("capture: %s: filter %q: %w", cfg.Interface, cfg.Filter, err)
		}
	}
	return &Capture{handle: h, iface: cfg.Interface, linkType: h.LinkType()}, nil
}

// listenError wraps an error opening or activating a capture, with a hint
// when it is a matter of permissions.
func listenError(iface, op string, err error) error {
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "permission") || strings.Contains(msg, "not permitted") {
		return fmt.Errorf("capture: %s %s: %w (needs CAP_NET_RAW: run as root or inside tcplab's namespace)", op, iface, err)
	}
	return fmt.Errorf("capture: %s %s: %w", op, iface, err)
}

// ReadPacketData returns the next frame, in a slice of its own that the
// caller may keep. It returns capture.ErrTimeout when no frame came within the
// configured timeout, and io.EOF once the capture is closed.
//
// Close does not wait for frames still in the kernel's buffer, and frames
// are not read after it: a caller reads until its own end condition (for
// example the last ACK of the connection it watches) and only then closes.
func (l *Capture) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := l.handle.ReadPacketData()
	if errors.Is(err, pcap.NextErrorTimeoutExpired) {
		return nil, ci, capture.ErrTimeout
	}
	if err != nil {
		return nil, ci, err
	}
	return data, ci, nil
}

// LinkType returns the link type of the frames, for example
// layers.LinkTypeEthernet on Linux's lo.
func (l *Capture) LinkType() layers.LinkType {
	return l.linkType
}

// Stats returns the capture's counters so far; see Stats. It fails after
// Close.
func (l *Capture) Stats() (Stats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Stats{}, fmt.Errorf("capture: %s: stats of a closed capture", l.iface)
	}
	s, err := l.handle.Stats()
	if err != nil {
		return Stats{}, fmt.Errorf("capture: %s: stats: %w", l.iface, err)
	}
	return Stats{Received: s.PacketsReceived, Dropped: s.PacketsDropped + s.PacketsIfDropped}, nil
}

// Close stops the capture and releases it. A ReadPacketData blocked in
// another goroutine returns io.EOF. Frames still in the kernel buffer are
// discarded, so read until your end condition first. Closing twice is
// harmless.
func (l *Capture) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	l.handle.Close()
}
