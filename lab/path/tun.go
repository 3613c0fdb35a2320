package path

import (
	"net/netip"
	"os"
	"time"

	"github.com/tcplab/tcplab/lab/netns"
)

// Endpoint is one end of a [Line]: a device the line creates in a network
// namespace (a TUN device, or the near end of a veth pair with
// LineConfig.Veth), with its addresses.
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
// MTU, addresses it and brings it up (netns.OpenTUN). The device
// disappears when the returned file is closed. The file is non-blocking,
// so that its reads wait in the runtime's poller and stop at a deadline.
func OpenTUN(ep Endpoint, mtu int) (*os.File, error) {
	return netns.OpenTUN(ep.NetNS, ep.Name, ep.Addrs, mtu)
}

// configure sets the MTU and addresses of the device ep.Name in the
// current thread's namespace and brings it up (netns.SetUp).
func configure(ep Endpoint, mtu int) error {
	return netns.SetUp(ep.Name, ep.Addrs, mtu)
}

// device is what a Line reads packets from and writes them to: a TUN
// device's file or a netns.IPLink.
type device interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	SetReadDeadline(time.Time) error
	Close() error
	Name() string
}
