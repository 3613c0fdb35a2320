package path

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/tcplab/tcplab/lab/netns"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Endpoint is one end of a [Line]: a TUN device the line creates in a
// network namespace, with its addresses.
type Endpoint struct {
	// NetNS is an open handle on the network namespace to create the
	// device in (a file such as /proc/PID/ns/net or
	// /proc/PID/task/TID/ns/net); nil means the calling process's.
	NetNS *os.File
	// Name is the device's name, at most 15 bytes, such as "tcplab0".
	Name string
	// Addrs are the addresses of the device, with the prefix that its
	// route covers: 192.168.0.2/24 on the client's side and
	// 192.168.0.101/24 on the server's make each reach the other through
	// the line. IPv6 addresses skip duplicate address detection.
	Addrs []netip.Prefix
}

// OpenTUN creates the TUN device of ep in its namespace with the given
// MTU, addresses it and brings it up. The device disappears when the
// returned file is closed. The file is non-blocking, so that its reads
// wait in the runtime's poller and stop at a deadline.
func OpenTUN(ep Endpoint, mtu int) (*os.File, error) {
	if len(ep.Name) == 0 || len(ep.Name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tun %q: name must be 1 to %d bytes", ep.Name, unix.IFNAMSIZ-1)
	}
	var tun *os.File
	err := netns.Enter(ep.NetNS, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(ep.Name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		tun = os.NewFile(uintptr(fd), "/dev/net/tun:"+ep.Name)
		if err := configure(ep, mtu); err != nil {
			tun.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tun %s: %w", ep.Name, err)
	}
	return tun, nil
}

// configure sets the MTU and addresses of the device ep.Name in the
// current thread's namespace and brings it up. A device without an IPv6
// address gets IPv6 disabled, so that the kernel's router and multicast
// listener solicitations do not cross the line among the lab's packets.
func configure(ep Endpoint, mtu int) error {
	link, err := netlink.LinkByName(ep.Name)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("set mtu %d: %w", mtu, err)
	}
	v6 := false
	for _, p := range ep.Addrs {
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
		err := os.WriteFile("/proc/sys/net/ipv6/conf/"+ep.Name+"/disable_ipv6", []byte("1"), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6: %w", err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up: %w", err)
	}
	return nil
}
