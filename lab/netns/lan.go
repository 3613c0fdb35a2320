package netns

import (
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LANEnd is one host's end of a LAN link.
type LANEnd struct {
	Host  *Host // nil: the caller's own namespace
	MAC   net.HardwareAddr
	Addrs []netip.Prefix // its addresses, e.g. 192.168.0.101/24
}

// LAN is an Ethernet link between two hosts: a veth pair named Interface
// at both ends, as two machines on a switch see their NIC.
type LAN struct {
	Interface string // the name at both ends, "eth0" when empty
	MTU       int    // 1500 when zero
	// Offload keeps the kernel's segmentation and receive offloads (TSO,
	// GSO, GRO) on: a capture then shows segments larger than the MTU,
	// built or merged in the stack around the wire. Off, every segment on
	// the wire is a segment in the capture, as on a real link.
	Offload bool
	A, B    LANEnd
}

// Join makes the link and configures both ends: MAC address, MTU,
// addresses (IPv6 ones without duplicate address detection, so they are
// usable at once), offloads, and up. The caller's namespace must hold one
// end or have a Host for each.
func (l LAN) Join() error {
	name := l.Interface
	if name == "" {
		name = "eth0"
	}
	mtu := l.MTU
	if mtu == 0 {
		mtu = 1500
	}
	// Made in the caller's namespace under temporary names, then each end
	// is moved to its host and renamed there.
	tmpA, tmpB := "tcplab-a", "tcplab-b"
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: tmpA, MTU: mtu}, PeerName: tmpB}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("netns: make veth pair: %w", err)
	}
	for _, end := range []struct {
		tmp string
		e   LANEnd
	}{{tmpA, l.A}, {tmpB, l.B}} {
		if end.e.Host != nil {
			link, err := netlink.LinkByName(end.tmp)
			if err != nil {
				return fmt.Errorf("netns: find %s: %w", end.tmp, err)
			}
			if err := netlink.LinkSetNsFd(link, int(end.e.Host.File().Fd())); err != nil {
				return fmt.Errorf("netns: move %s to host %s: %w", end.tmp, end.e.Host.Name(), err)
			}
		}
		if err := end.e.Host.Do(func() error { return configure(end.tmp, name, mtu, l.Offload, end.e) }); err != nil {
			return err
		}
	}
	return nil
}

// configure names the link tmp name and gives it the end's MAC, MTU,
// offloads and addresses, then brings it up; it runs in the end's
// namespace.
func configure(tmp, name string, mtu int, offload bool, e LANEnd) error {
	link, err := netlink.LinkByName(tmp)
	if err != nil {
		return fmt.Errorf("netns: find %s: %w", tmp, err)
	}
	if err := netlink.LinkSetName(link, name); err != nil {
		return fmt.Errorf("netns: name %s %s: %w", tmp, name, err)
	}
	if e.MAC != nil {
		if err := netlink.LinkSetHardwareAddr(link, e.MAC); err != nil {
			return fmt.Errorf("netns: %s: set MAC %s: %w", name, e.MAC, err)
		}
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("netns: %s: set MTU %d: %w", name, mtu, err)
	}
	if !offload {
		if err := SetOffloads(name, false); err != nil {
			return err
		}
	}
	for _, p := range e.Addrs {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, a); err != nil {
			return fmt.Errorf("netns: %s: add address %s: %w", name, p, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("netns: %s: up: %w", name, err)
	}
	return nil
}

// ethtool commands (linux/ethtool.h) that set one offload on or off.
const (
	ethtoolSTSO = 0x1f // TCP segmentation offload
	ethtoolSGSO = 0x24 // generic segmentation offload
	ethtoolSGRO = 0x2c // generic receive offload
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd, data uint32
}

// ifreqData is struct ifreq with the ifr_data pointer ethtool takes.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte // the rest of the union
}

// SetOffloads turns TSO, GSO and GRO of interface name, in the calling
// thread's namespace (use Host.Do for another's), on or off, as `ethtool
// -K name tso off gso off gro off` does.
func SetOffloads(name string, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: socket for ethtool: %w", err)
	}
	defer unix.Close(fd)
	var data uint32
	if on {
		data = 1
	}
	for _, c := range []struct {
		cmd  uint32
		name string
	}{{ethtoolSTSO, "tso"}, {ethtoolSGSO, "gso"}, {ethtoolSGRO, "gro"}} {
		v := ethtoolValue{cmd: c.cmd, data: data}
		var req ifreqData
		copy(req.name[:], name)
		req.data = unsafe.Pointer(&v)
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req))); errno != 0 {
			return fmt.Errorf("netns: %s: ethtool %s %v: %w", name, c.name, on, errno)
		}
	}
	return nil
}
