package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/netns"
	"github.com/tcplab/tcplab/lab/path"
	"github.com/tcplab/tcplab/lab/report"
	"github.com/tcplab/tcplab/lab/scripted"
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
	// captureHost is where iface is: nil for the server's (the run's own
	// namespace), the client's host on a routed path, whose view of the
	// round trip is the one people know (SYN to SYN/ACK takes the RTT).
	captureHost *netns.Host
	// others are the other places the lab captures, for the artifacts:
	// the other host's interface, where a segment is seen leaving or
	// arriving. Only the capture at iface is annotated and judged.
	others []point
	// router is what the delay line saw arrive, when there is one: the
	// router's capture point.
	router *routerTap
	// kind, path, mechanism and seed are what result.json says of it.
	kind, path string
	mechanism  path.Mechanism
	seed       uint64
	// peer is the scripted side of a Scripted or ScriptedServer
	// topology, and script what it called each frame it sent.
	peer   *scripted.Peer
	script *scriptLog
}

// point is a place where the lab captures: an interface of a host.
type point struct {
	name  string      // "client eth0", "server tun0"
	host  *netns.Host // nil: the run's own namespace (the server's)
	iface string
}

// setOffload turns the LAN's offloads on or off at both ends.
func (n *network) setOffload(on bool) error {
	if n.client == nil || n.iface != lanInterface {
		return fmt.Errorf("offloads: the scenario runs on no LAN")
	}
	if err := netns.SetOffloads(lanInterface, on); err != nil {
		return err
	}
	return n.client.Do(func() error { return netns.SetOffloads(lanInterface, on) })
}

// name returns what the artifacts call the capture at iface.
func (n *network) name() string {
	if n.client == nil {
		return n.iface
	}
	if n.captureHost == nil {
		return "server " + n.iface
	}
	return "client " + n.iface
}

// The interface names of the topologies: Ethernet on a LAN, a TUN device
// on each side of a routed path.
const (
	lanInterface  = "eth0"
	pathInterface = "tun0"
	// pathVethInterface is the path's device at each host when the user
	// may not make TUN devices: an Ethernet device, the near end of a
	// veth pair whose far end the delay line reads.
	pathVethInterface = "eth0"
)

// newNetwork builds the topology of sc in the calling process's namespace,
// which becomes the server's host, for a server on port (addr is its
// loopback address, used as is on Loopback). close releases what it made.
func newNetwork(ctx context.Context, sc *Scenario, opt Options, addr, filter string) (n *network, close func(), err error) {
	if isScripted(sc.Topology) {
		return newScriptedNetwork(sc, opt, addr)
	}
	desc := sc.Path
	if opt.Path != "" {
		desc = opt.Path
	}
	var p path.Path
	if desc != "" {
		if p, err = path.Parse(desc); err != nil {
			return nil, nil, fmt.Errorf("-path: %w", err)
		}
	}
	if sc.Topology == Loopback && p.IsZero() {
		return &network{serverAddr: addr, iface: "lo", filter: filter, kind: "loopback"}, func() {}, nil
	}
	if sc.Topology != Loopback && sc.Topology != LAN {
		return nil, nil, fmt.Errorf("unknown topology %q", sc.Topology)
	}
	client, err := netns.NewHost("client")
	if err != nil {
		return nil, nil, err
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
		iface:      lanInterface,
		filter:     capFilter,
		kind:       string(LAN),
	}
	serverAddrs := []netip.Prefix{netip.MustParsePrefix(LANServerIPv4 + "/24"), netip.MustParsePrefix(LANServerIPv6 + "/64")}
	clientAddrs := []netip.Prefix{netip.MustParsePrefix(LANClientIPv4 + "/24"), netip.MustParsePrefix(LANClientIPv6 + "/64")}
	if p.IsZero() {
		if err := joinLAN(client, serverAddrs, clientAddrs, sc.Offload); err != nil {
			client.Close()
			return nil, nil, err
		}
		n.others = []point{{"client " + lanInterface, client, lanInterface}}
		return n, func() { client.Close() }, nil
	}
	// A routed path: the conditions come from the kernel's qdiscs where
	// it has what the path needs, else from the delay line.
	n.kind, n.path, n.seed = "routed", p.String(), max(opt.Seed, 1)
	q, err := path.Probe(nil, "lo")
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	n.mechanism = path.Choose(p, q)
	switch n.mechanism {
	case path.Netem, path.TBF:
		if err := joinLAN(client, serverAddrs, clientAddrs, sc.Offload); err == nil {
			err = applyQdiscs(n.mechanism, client, p)
		}
		if err != nil {
			client.Close()
			return nil, nil, err
		}
		n.captureHost = client
		n.others = []point{{"server " + lanInterface, nil, lanInterface}}
		return n, func() { client.Close() }, nil
	}
	n.router = &routerTap{}
	if !opt.IPv6 {
		// Over IPv4 the TUN devices get no IPv6 at all: the router
		// solicitations and multicast reports a device sends when it
		// comes up would cross the line at times of their own and take
		// draws from its generators, and a run with the same seed
		// would not decide the same for the same segments.
		serverAddrs, clientAddrs = serverAddrs[:1], clientAddrs[:1]
		for _, h := range []*netns.Host{nil, client} {
			if err := h.Do(func() error {
				return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
			}); err != nil && !errors.Is(err, fs.ErrNotExist) {
				client.Close()
				return nil, nil, fmt.Errorf("turn IPv6 off for the path's devices: %w", err)
			}
		}
	}
	iface := pathInterface
	cfg := path.LineConfig{
		Path: p, Seed: n.seed, Tap: n.router.add,
		Client: path.Endpoint{NetNS: client.File(), Name: iface, Addrs: clientAddrs},
		Server: path.Endpoint{Name: iface, Addrs: serverAddrs},
	}
	line, err := path.StartLine(ctx, cfg)
	if errors.Is(err, fs.ErrPermission) {
		// /dev/net/tun is root's on this machine, even in the user's
		// own namespaces: the line joins the hosts through veth pairs
		// and packet sockets instead, which a user namespace allows.
		iface = pathVethInterface
		cfg.Veth, cfg.Client.Name, cfg.Server.Name = true, iface, iface
		line, err = path.StartLine(ctx, cfg)
	}
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("start the delay line: %w", err)
	}
	n.iface, n.filter, n.captureHost = iface, "tcp", client
	n.others = []point{{"server " + iface, nil, iface}}
	return n, func() { line.Close(); client.Close() }, nil
}

// routerTap keeps what the delay line read, as frames of a capture at the
// router: raw IP packets, each with the time it reached the line.
type routerTap struct {
	mu     sync.Mutex
	frames []capture.Frame
	lost   int // frames the line lost or dropped
}

// maxRouterFrames bounds what the router's capture point keeps.
const maxRouterFrames = 100_000

func (r *routerTap) add(e path.TapEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Copies == 0 {
		r.lost++
	}
	if len(r.frames) >= maxRouterFrames {
		return
	}
	data := append([]byte(nil), e.Packet...)
	ci := gopacket.CaptureInfo{Timestamp: e.At, CaptureLength: len(data), Length: len(data)}
	switch e.Copies {
	case 0:
		ci.AncillaryData = []any{report.Note("lost here: the path did not pass it on")}
	case 2:
		ci.AncillaryData = []any{report.Note("duplicated here: the path passes it on twice")}
	}
	r.frames = append(r.frames, capture.Frame{Data: data, Info: ci})
}

// packets annotates what the router saw, as its own capture point
// (interface index); nil when there is no router.
func (r *routerTap) packets(index int) []capture.Packet {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	frames := r.frames
	r.mu.Unlock()
	var out []capture.Packet
	capture.Walk(&capture.Memory{Link: layers.LinkTypeRaw, Frames: frames}, capture.NewAnnotator(), func(p *capture.Packet) error {
		q := p.Keep()
		q.Info.InterfaceIndex = index
		out = append(out, q)
		return nil
	})
	return out
}

// joinLAN joins the run's namespace, the server's host, to client by an
// Ethernet link with the LAN's addresses.
func joinLAN(client *netns.Host, serverAddrs, clientAddrs []netip.Prefix, offload bool) error {
	serverMAC, _ := net.ParseMAC(LANServerMAC)
	clientMAC, _ := net.ParseMAC(LANClientMAC)
	lan := netns.LAN{
		Interface: lanInterface,
		Offload:   offload,
		A:         netns.LANEnd{MAC: serverMAC, Addrs: serverAddrs},
		B:         netns.LANEnd{Host: client, MAC: clientMAC, Addrs: clientAddrs},
	}
	if err := lan.Join(); err != nil {
		return fmt.Errorf("make the LAN: %w", err)
	}
	return nil
}

// applyQdiscs installs the path's conditions on the LAN's two ends, each
// on its egress: C2S on the client's eth0, S2C on the server's.
func applyQdiscs(m path.Mechanism, client *netns.Host, p path.Path) error {
	for _, end := range []struct {
		ns *os.File
		c  path.Conditions
	}{{client.File(), p.C2S}, {nil, p.S2C}} {
		var err error
		if m == path.Netem {
			err = path.ApplyNetem(end.ns, lanInterface, end.c)
		} else if end.c.Rate > 0 {
			err = path.ApplyTBF(end.ns, lanInterface, end.c.Rate)
		}
		if err != nil {
			return fmt.Errorf("path %s: %w", m, err)
		}
	}
	return nil
}
