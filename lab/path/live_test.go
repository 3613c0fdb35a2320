package path

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"
)

// The live tests run again, each alone, in a private network namespace
// (inNamespace); inside it they make two more namespaces, the client's and
// the server's, joined only by the line. The host's namespace sees none of
// their devices or packets.
func TestMain(m *testing.M) { testenv.Main(m) }

// The lab's addresses are the blog post's: the client 192.168.0.2 and the
// server 192.168.0.101 on one /24, which the line joins.
var (
	clientAddr = netip.MustParsePrefix("192.168.0.2/24")
	serverAddr = netip.MustParsePrefix("192.168.0.101/24")
)

// inNamespace runs the test again, alone, in a private network namespace
// (testenv.InNamespace), and reports whether this is that run.
func inNamespace(t *testing.T) bool {
	t.Helper()
	return testenv.InNamespace(t, 2*time.Minute)
}

// needTUN skips the test (fails it in CI) when this process may not
// create TUN devices: /dev/net/tun is root's, and a user namespace's root
// is not root for it.
func needTUN(tb testing.TB) {
	tb.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		testenv.SkipOrFail(tb, "cannot open /dev/net/tun: "+err.Error(), "run as root, with the tun module")
		return
	}
	unix.Close(fd)
}

// lab is a client namespace and a server namespace joined by a line.
type lab struct {
	client, server *os.File // the namespaces
	line           *Line
}

// startLab makes the two namespaces and starts a line between them with
// p, seed and limit (0 for the default). The line is closed when the test
// ends, and Close must succeed.
func startLab(tb testing.TB, p Path, seed uint64, limit int) *lab {
	tb.Helper()
	return startLabOn(tb, p, seed, limit, false)
}

// startLabOn is startLab, with veth pairs and packet sockets in place of
// TUN devices when veth is set (LineConfig.Veth).
func startLabOn(tb testing.TB, p Path, seed uint64, limit int, veth bool) *lab {
	tb.Helper()
	if !veth {
		needTUN(tb)
	}
	l := &lab{client: testenv.NewNetNS(tb), server: testenv.NewNetNS(tb)}
	line, err := StartLine(context.Background(), LineConfig{
		Path: p, Seed: seed, Limit: limit, Veth: veth,
		Client: Endpoint{NetNS: l.client, Name: "tcplab0", Addrs: []netip.Prefix{clientAddr}},
		Server: Endpoint{NetNS: l.server, Name: "tcplab0", Addrs: []netip.Prefix{serverAddr}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	want := map[bool]string{false: "tuntap", true: "veth"}[veth]
	for _, ns := range []*os.File{l.client, l.server} {
		if err := netns.Enter(ns, func() error {
			link, err := netlink.LinkByName("tcplab0")
			if err == nil && link.Type() != want {
				err = fmt.Errorf("the line's device is a %s, want a %s", link.Type(), want)
			}
			return err
		}); err != nil {
			tb.Fatal(err)
		}
	}
	// Raising the priority is best effort (a container's root may lack
	// CAP_SYS_NICE) and netns tests it; the bounds below hold without it
	// on a quiet machine.
	if line.Priority != nil {
		tb.Logf("the line runs at the default priority: %v", line.Priority)
	}
	tb.Cleanup(func() {
		if err := line.Close(); err != nil {
			tb.Errorf("close line: %v", err)
		}
	})
	l.line = line
	return l
}

// listenUDP opens a UDP socket on the server's address, port port, in the
// server's namespace.
func (l *lab) listenUDP(tb testing.TB, port int) *net.UDPConn {
	tb.Helper()
	var c *net.UDPConn
	err := netns.Enter(l.server, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(serverAddr.Addr(), uint16(port))))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// dialUDP opens a UDP socket in the client's namespace connected to the
// server's address, port port.
func (l *lab) dialUDP(tb testing.TB, port int) *net.UDPConn {
	tb.Helper()
	var c *net.UDPConn
	err := netns.Enter(l.client, func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(serverAddr.Addr(), uint16(port))))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// listenTCP listens on the server's address, port port, in the server's
// namespace.
func (l *lab) listenTCP(tb testing.TB, port int) *net.TCPListener {
	tb.Helper()
	var ln *net.TCPListener
	err := netns.Enter(l.server, func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(serverAddr.Addr(), uint16(port))))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// dialTCP connects from the client's namespace to the server's address,
// port port, and returns the connection and how long connect() took: one
// SYN to SYN/ACK round trip.
func (l *lab) dialTCP(tb testing.TB, port int) (*net.TCPConn, time.Duration) {
	tb.Helper()
	var c net.Conn
	var took time.Duration
	err := netns.Enter(l.client, func() (err error) {
		start := time.Now()
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(serverAddr.Addr(), uint16(port)).String(), 10*time.Second)
		took = time.Since(start)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), took
}
