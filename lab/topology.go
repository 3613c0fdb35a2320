package lab

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/tcplab/tcplab/lab/netns"
)

// Topology is the network a scenario's peers meet on.
type Topology string

// The topologies.
const (
	// Loopback puts server and client on one host, on lo: no Ethernet,
	// no queue, MSS 65483 (the default).
	Loopback Topology = ""
	// LAN puts them on two hosts, as in the blog post: the client at
	// 192.168.0.2 (fd00::2), the server at 192.168.0.101 (fd00::101),
	// joined by an Ethernet link with MTU 1500 (MSS 1460) and no
	// offloads, so each segment on the wire is a frame of the capture.
	// The lab captures on the server's eth0. The addresses exist only in
	// the run's namespaces.
	LAN Topology = "lan"
)

// The LAN's addresses and MAC addresses.
const (
	LANServerIPv4 = "192.168.0.101"
	LANClientIPv4 = "192.168.0.2"
	LANServerIPv6 = "fd00::101"
	LANClientIPv6 = "fd00::2"
	LANServerMAC  = "02:00:00:00:01:01"
	LANClientMAC  = "02:00:00:00:00:02"
)

// network is what a run's topology gives the recording: where the server
// listens, where the client dials from, and where to capture.
type network struct {
	serverAddr string      // host:port the server listens on
	client     *netns.Host // the client's host; nil on loopback
	clientIP   net.IP      // the client's address on a LAN
	iface      string      // the interface the lab captures on
	filter     string      // the capture filter
}

// newNetwork builds the topology of sc in the calling process's namespace,
// which becomes the server's host, for a server on port (addr is its
// loopback address, used as is on Loopback). close releases what it made.
func newNetwork(sc *Scenario, opt Options, addr, filter string) (n *network, close func(), err error) {
	if sc.Topology == Loopback {
		return &network{serverAddr: addr, iface: "lo", filter: filter}, func() {}, nil
	}
	if sc.Topology != LAN {
		return nil, nil, fmt.Errorf("unknown topology %q", sc.Topology)
	}
	client, err := netns.NewHost("client")
	if err != nil {
		return nil, nil, err
	}
	serverMAC, _ := net.ParseMAC(LANServerMAC)
	clientMAC, _ := net.ParseMAC(LANClientMAC)
	lan := netns.LAN{
		A: netns.LANEnd{MAC: serverMAC, Addrs: []netip.Prefix{
			netip.MustParsePrefix(LANServerIPv4 + "/24"), netip.MustParsePrefix(LANServerIPv6 + "/64")}},
		B: netns.LANEnd{Host: client, MAC: clientMAC, Addrs: []netip.Prefix{
			netip.MustParsePrefix(LANClientIPv4 + "/24"), netip.MustParsePrefix(LANClientIPv6 + "/64")}},
	}
	if err := lan.Join(); err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("make the LAN: %w", err)
	}
	server, clientIP, capFilter := LANServerIPv4, LANClientIPv4, "tcp or arp"
	if opt.IPv6 {
		// Neighbour discovery is ICMPv6, and so is much else: the
		// capture keeps to TCP.
		server, clientIP, capFilter = LANServerIPv6, LANClientIPv6, "tcp"
	}
	n = &network{
		serverAddr: net.JoinHostPort(server, strconv.Itoa(portOf(addr))),
		client:     client,
		clientIP:   net.ParseIP(clientIP),
		iface:      "eth0",
		filter:     capFilter,
	}
	return n, func() { client.Close() }, nil
}
