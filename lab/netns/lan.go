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
	// Each end is made in its host's namespace under its final name, with
	// its MAC address and MTU: moving a device between namespaces waits
	// for an RCU barrier while holding the rtnl lock, which every other
	// namespace's network configuration waits for (seconds each on a
	// loaded machine, seen stalling every scenario of a run).
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu, HardwareAddr: l.A.MAC}, PeerName: name, PeerHardwareAddr: l.B.MAC}
	if l.A.Host != nil {
		veth.Namespace = netlink.NsFd(int(l.A.Host.File().Fd()))
	}
	if l.B.Host != nil {
		veth.PeerNamespace = netlink.NsFd(int(l.B.Host.File().Fd()))
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("netns: make veth pair %s: %w", name, err)
	}
	for _, e := range []LANEnd{l.A, l.B} {
		if err := e.Host.Do(func() error { return configure(name, l.Offload, e) }); err != nil {
			return err
		}
	}
	return nil
}

// configure sets the offloads and addresses of the end's link name, then
// brings it up; it runs in the end's namespace.
func configure(name string, offload bool, e LANEnd) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netns: find %s: %w", name, err)
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
	// ethtoolSTXCSUM is transmit checksum offload: off, the kernel
	// computes a segment's checksum before the device gets it.
	ethtoolSTXCSUM = 0x17
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
	return ethtool(name, on, ethtoolCmd{ethtoolSTSO, "tso"}, ethtoolCmd{ethtoolSGSO, "gso"}, ethtoolCmd{ethtoolSGRO, "gro"})
}

// ethtoolCmd is an ethtool command that sets one offload, with its name
// for errors.
type ethtoolCmd struct {
	cmd  uint32
	name string
}

// ethtool sets each offload of cmds on interface name on or off, in
// order, in the calling thread's namespace.
func ethtool(name string, on bool, cmds ...ethtoolCmd) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: socket for ethtool: %w", err)
	}
	defer unix.Close(fd)
	var data uint32
	if on {
		data = 1
	}
	for _, c := range cmds {
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
