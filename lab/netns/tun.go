package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// OpenTUN creates a TUN device called name (at most 15 bytes) in the
// network namespace ns (nil: the calling process's) with the given MTU
// and addresses, and brings it up. The device disappears when the
// returned file is closed. The file is non-blocking, so that its reads
// wait in the runtime's poller and stop at a deadline. It needs
// CAP_NET_ADMIN in ns and /dev/net/tun, which is root's even in a user
// namespace. A delay line (package lab/path) and a scripted peer
// (package lab/scripted) both stand behind such a device.
func OpenTUN(ns *os.File, name string, addrs []netip.Prefix, mtu int) (*os.File, error) {
	return OpenTUNWith(ns, name, addrs, mtu, TUNOptions{})
}

// VnetHdrLen is the length of the virtio_net_hdr that leads every frame
// read from or written to a TUN device opened with TUNOptions.Offload.
const VnetHdrLen = 10

// TUNOptions are a TUN device's features beyond a plain IP device.
type TUNOptions struct {
	// Offload makes the device a typical Ethernet device's equal, as
	// packetdrill's tun0 is: IFF_VNET_HDR, and TUNSETOFFLOAD with
	// checksum offload and TSO for IPv4 and IPv6 (with ECN). The kernel
	// then hands the device its TSO/GSO segments whole (one segment of
	// several MSS) and leaves their TCP checksums to it
	// (CHECKSUM_PARTIAL: the checksum field holds only the pseudo
	// header's sum). Every read and write of the device's file then
	// starts with a virtio_net_hdr of VnetHdrLen bytes; a written frame
	// with a zero header is taken as a plain frame whose checksums the
	// kernel verifies.
	Offload bool
}

// OpenTUNWith is OpenTUN with the device's options.
func OpenTUNWith(ns *os.File, name string, addrs []netip.Prefix, mtu int, opt TUNOptions) (*os.File, error) {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tun %q: name must be 1 to %d bytes", name, unix.IFNAMSIZ-1)
	}
	var tun *os.File
	err := Enter(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if opt.Offload {
			flags |= unix.IFF_VNET_HDR
		}
		ifr.SetUint16(flags)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		if opt.Offload {
			const offload = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN
			if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offload); err != nil {
				unix.Close(fd)
				return fmt.Errorf("TUNSETOFFLOAD: %w", err)
			}
		}
		tun = os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		if err := SetUp(name, addrs, mtu); err != nil {
			tun.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tun %s: %w", name, err)
	}
	return tun, nil
}

// SetUp sets the MTU and addresses of the device name in the current
// thread's namespace and brings it up. A device without an IPv6 address
// gets IPv6 disabled, so that the kernel's router and multicast listener
// solicitations do not mix with the lab's packets.
func SetUp(name string, addrs []netip.Prefix, mtu int) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("set mtu %d: %w", mtu, err)
	}
	v6 := false
	for _, p := range addrs {
		if !p.IsValid() {
			return fmt.Errorf("invalid address %v", p)
		}
		a := &netlink.Addr{IPNet: &net.IPNet{
			IP:   p.Addr().AsSlice(),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		}}
		if p.Addr().Is6() {
			v6 = true
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, a); err != nil {
			return fmt.Errorf("add address %v: %w", p, err)
		}
	}
	if !v6 {
		err := os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6: %w", err)
		}
	} else {
		// No duplicate address detection for the link-local address the
		// kernel adds either: it holds that address tentative for a
		// second or more (past 3 s on a loaded machine), and the device
		// drops the lab's first SYN meanwhile. No other host can hold an
		// address on this namespace's device.
		err := os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/accept_dad", []byte("0"), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("turn duplicate address detection off: %w", err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up: %w", err)
	}
	if v6 {
		return untentative(link)
	}
	return nil
}

// untentative waits, 3 s at most, until no IPv6 address of link is
// tentative. Even without duplicate address detection (IFA_F_NODAD) an
// address is tentative until the kernel's address worker has run, and a
// segment to a tentative address is dropped: on a loaded machine the
// kernel ignored a SYN sent right after the device came up.
func untentative(link netlink.Link) error {
	end := time.Now().Add(3 * time.Second)
	for {
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("list addresses: %w", err)
		}
		tentative := ""
		for _, a := range addrs {
			if a.Flags&unix.IFA_F_TENTATIVE != 0 {
				tentative = a.IPNet.String()
			}
		}
		if tentative == "" {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("address %s still tentative after 3 s", tentative)
		}
		time.Sleep(time.Millisecond)
	}
}

// AddRoute routes dst through the device name in the network namespace
// ns (nil: the calling thread's), on its link (scope link, no gateway),
// as packetdrill routes its remote prefix to tun0: for an address beyond
// the device's own prefixes.
func AddRoute(ns *os.File, name string, dst netip.Prefix) error {
	return Enter(ns, func() error {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("route %v: find %s: %w", dst, name, err)
		}
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())}}
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("route %v dev %s: %w", dst, name, err)
		}
		return nil
	})
}
