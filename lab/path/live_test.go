package path

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
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
func TestMain(m *testing.M) {
	if netns.InChild() {
		if err := netns.SetupLoopback(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
	os.Exit(m.Run())
}

// The lab's addresses are the blog post's: the client 192.168.0.2 and the
// server 192.168.0.101 on one /24, which the line joins.
var (
	clientAddr = netip.MustParsePrefix("192.168.0.2/24")
	serverAddr = netip.MustParsePrefix("192.168.0.101/24")
)

// inNamespace reports whether the test runs in its private namespace. In
// the test process it runs the test again in one, fails the test with that
// run's output if it failed, and returns false.
func inNamespace(t *testing.T) bool {
	t.Helper()
	if netns.InChild() {
		return true
	}
	testenv.NetNS(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, err := netns.Command(ctx, exe, "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if bytes.Contains(out, []byte("--- SKIP: "+t.Name()+" (")) {
		t.Skipf("skipping test; in a network namespace:\n%s", out)
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("in a network namespace (%v):\n%s", err, out)
	}
	t.Logf("in a network namespace:\n%s", out)
	return false
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

// newNetNS makes a network namespace with lo up and returns a handle on
// it, closed (and the namespace gone with its last user) when the test
// ends. It unshares on a thread of its own, which then returns to the
// process's namespace.
func newNetNS(tb testing.TB) *os.File {
	tb.Helper()
	type result struct {
		ns  *os.File
		err error
	}
	rc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			rc <- result{err: err}
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			rc <- result{err: fmt.Errorf("unshare: %w", err)}
			return
		}
		ns, err := os.Open("/proc/thread-self/ns/net")
		if err == nil {
			var lo netlink.Link
			if lo, err = netlink.LinkByName("lo"); err == nil {
				err = netlink.LinkSetUp(lo)
			}
		}
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr == nil {
			runtime.UnlockOSThread()
		}
		rc <- result{ns, err}
	}()
	r := <-rc
	if r.err != nil {
		if errors.Is(r.err, unix.EPERM) {
			testenv.SkipOrFail(tb, "cannot create a network namespace: "+r.err.Error(), "run as root")
		}
		tb.Fatalf("new network namespace: %v", r.err)
	}
	tb.Cleanup(func() { r.ns.Close() })
	return r.ns
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
	needTUN(tb)
	l := &lab{client: newNetNS(tb), server: newNetNS(tb)}
	line, err := StartLine(context.Background(), LineConfig{
		Path: p, Seed: seed, Limit: limit,
		Client: Endpoint{NetNS: l.client, Name: "tcplab0", Addrs: []netip.Prefix{clientAddr}},
		Server: Endpoint{NetNS: l.server, Name: "tcplab0", Addrs: []netip.Prefix{serverAddr}},
	})
	if err != nil {
		tb.Fatal(err)
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
