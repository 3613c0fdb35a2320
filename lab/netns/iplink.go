package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IPLink is a device that carries IP packets between a namespace and the
// program, as a TUN device does, for a user who may not open
// /dev/net/tun (root's alone on some machines, even in a user namespace):
// a veth pair whose one end is the namespace's device, with its
// addresses, and whose other end, in a namespace of the caller's own
// (Far), the program reads and writes through a packet socket. Reads
// return one IP packet, writes take one, as with a TUN device's file.
type IPLink struct {
	f    *os.File
	rc   syscall.RawConn
	name string
	// The Ethernet header of written packets: to the namespace's device,
	// from the far end, EtherType set per packet.
	hdr [14]byte
	in  [14]byte // a read frame's header
	// closed is set by Close, so that a Read or Write on the closed
	// socket says os.ErrClosed, as a file's does.
	closed atomic.Bool
}

// OpenIPLink makes the device name in the namespace ns (nil: the calling
// thread's), with addresses, MTU and up, and its far end named far in
// the namespace farNS, where the returned IPLink reads and writes. The
// namespace's device resolves no neighbours (NOARP: every packet it sends
// reaches the far end, whatever its destination) and computes its
// checksums and segments itself (offloads off), so that each packet read
// is a whole one of at most mtu bytes. The device disappears with farNS.
func OpenIPLink(ns *os.File, name string, addrs []netip.Prefix, mtu int, farNS *os.File, far string) (*IPLink, error) {
	for _, n := range []string{name, far} {
		if len(n) == 0 || len(n) >= unix.IFNAMSIZ {
			return nil, fmt.Errorf("ip link %q: name must be 1 to %d bytes", n, unix.IFNAMSIZ-1)
		}
	}
	if ns == nil {
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return nil, fmt.Errorf("ip link %s: %w", name, err)
		}
		defer own.Close()
		ns = own
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: far, MTU: mtu}, PeerName: name, PeerNamespace: netlink.NsFd(int(ns.Fd()))}
	var l *IPLink
	err := Enter(farNS, func() error {
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("make veth pair: %w", err)
		}
		link, err := netlink.LinkByName(far)
		if err != nil {
			return fmt.Errorf("find %s: %w", far, err)
		}
		if err := ethtool(far, false, ethtoolCmd{ethtoolSGRO, "gro"}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("%s: up: %w", far, err)
		}
		l, err = openPacket(link.Attrs().Index, far)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ip link %s: %w", name, err)
	}
	err = Enter(ns, func() error {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		copy(l.hdr[:6], link.Attrs().HardwareAddr)
		if err := netlink.LinkSetARPOff(link); err != nil {
			return fmt.Errorf("%s: arp off: %w", name, err)
		}
		if err := ethtool(name, false, ethtoolCmd{ethtoolSTSO, "tso"}, ethtoolCmd{ethtoolSGSO, "gso"}, ethtoolCmd{ethtoolSGRO, "gro"}, ethtoolCmd{ethtoolSTXCSUM, "tx-checksum"}); err != nil {
			return err
		}
		if err := SetUp(name, addrs, mtu); err != nil {
			return err
		}
		return waitActive(name)
	})
	if err == nil {
		err = Enter(farNS, func() error { return waitActive(far) })
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("ip link %s: %w", name, err)
	}
	l.name = name
	return l, nil
}

// activeWithin is how long waitActive waits for a device.
const activeWithin = 5 * time.Second

// waitActive waits until the device name (in the thread's namespace)
// can send: its carrier is on and the kernel has given it its queueing
// discipline. Until then, which the kernel's link watch does in its own
// time after the pair comes up (tens of ms on a loaded machine), the
// device has the "noop" discipline, which drops every frame sent: the
// first SYN would be lost.
func waitActive(name string) error {
	deadline := time.Now().Add(activeWithin)
	for {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		qs, err := netlink.QdiscList(link)
		if err != nil {
			return fmt.Errorf("%s: queueing disciplines: %w", name, err)
		}
		// The kernel lists no "noop" (it is built in): a discipline
		// listed is the one it gave the device.
		if link.Attrs().OperState == netlink.OperUp && len(qs) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready to send after %v (state %v, %d queueing disciplines)", name, activeWithin, link.Attrs().OperState, len(qs))
		}
		time.Sleep(time.Millisecond)
	}
}

// openPacket opens a non-blocking packet socket on the device index,
// which sees the frames the device receives and not those it sends.
func openPacket(index int, name string) (*IPLink, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket: ignore outgoing: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket: bind %s: %w", name, err)
	}
	iface, err := net.InterfaceByIndex(index)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket: %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	l := &IPLink{f: f, rc: rc}
	copy(l.hdr[6:12], iface.HardwareAddr)
	return l, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Name returns the name of the namespace's device.
func (l *IPLink) Name() string { return l.name }

// Read reads the next IP packet the namespace's device sent into b
// (frames that carry no IP packet are skipped) and returns its length. A
// packet longer than b is cut to it.
func (l *IPLink) Read(b []byte) (int, error) {
	for {
		var n int
		var rerr error
		err := l.rc.Read(func(fd uintptr) bool {
			n, _, _, _, rerr = unix.RecvmsgBuffers(int(fd), [][]byte{l.in[:], b}, nil, unix.MSG_TRUNC)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return 0, l.wrap(err)
		}
		if n <= len(l.in) {
			continue
		}
		switch binary.BigEndian.Uint16(l.in[12:]) {
		case unix.ETH_P_IP, unix.ETH_P_IPV6:
			return min(n-len(l.in), len(b)), nil
		}
	}
}

// Write sends the IP packet b to the namespace's device.
func (l *IPLink) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errors.New("ip link: empty packet")
	}
	hdr := l.hdr
	switch b[0] >> 4 {
	case 4:
		binary.BigEndian.PutUint16(hdr[12:], unix.ETH_P_IP)
	case 6:
		binary.BigEndian.PutUint16(hdr[12:], unix.ETH_P_IPV6)
	default:
		return 0, fmt.Errorf("ip link: not an IP packet (version %d)", b[0]>>4)
	}
	var werr error
	err := l.rc.Write(func(fd uintptr) bool {
		_, werr = unix.SendmsgBuffers(int(fd), [][]byte{hdr[:], b}, nil, nil, 0)
		return werr != unix.EAGAIN
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return 0, l.wrap(err)
	}
	return len(b), nil
}

// SetReadDeadline makes a Read waiting at t return os.ErrDeadlineExceeded.
func (l *IPLink) SetReadDeadline(t time.Time) error { return l.f.SetReadDeadline(t) }

// Close closes the packet socket; the devices go with the far end's
// namespace.
func (l *IPLink) Close() error {
	l.closed.Store(true)
	return l.f.Close()
}

// wrap returns os.ErrClosed for an error of the closed socket.
func (l *IPLink) wrap(err error) error {
	if l.closed.Load() {
		return fmt.Errorf("ip link %s: %w", l.name, os.ErrClosed)
	}
	return err
}

// NewQuietHost is NewHost for the far ends of IPLinks: its devices get no
// IPv6, so that they send nothing of their own (router solicitations,
// multicast reports) to the namespaces they serve.
func NewQuietHost(name string) (*Host, error) {
	h, err := NewHost(name)
	if err != nil {
		return nil, err
	}
	if err := h.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		h.Close()
		return nil, fmt.Errorf("netns: host %s: turn IPv6 off: %w", name, err)
	}
	return h, nil
}
