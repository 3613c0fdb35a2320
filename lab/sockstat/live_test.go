package sockstat

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/internal/testenv"
)

// The live tests run again, each alone, in a private network namespace
// (inNamespace), so that the sockets they sample are only their own and
// they can bind the blog post's port 8000.
func TestMain(m *testing.M) { testenv.Main(m) }

// inNamespace runs the test again, alone, in a private network namespace
// (testenv.InNamespace), and reports whether this is that run.
func inNamespace(t *testing.T) bool {
	t.Helper()
	return testenv.InNamespace(t, time.Minute)
}

// newSampler returns a Sampler for cfg, closed when the test ends.
func newSampler(tb testing.TB, cfg Config) *Sampler {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close sampler: %v", err)
		}
	})
	return s
}

// until samples with f until cond holds for the sample, and returns it;
// it fails the test after 5 seconds or 5000 samples.
func until(tb testing.TB, s *Sampler, f Filter, what string, cond func([]Socket) bool) []Socket {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var socks []Socket
	for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
		var err error
		if socks, err = s.Sample(f); err != nil {
			tb.Fatal(err)
		}
		if cond(socks) {
			return socks
		}
		time.Sleep(time.Millisecond)
	}
	tb.Fatalf("%s: not seen in 5s; last sample:\n%s", what, dumpSockets(socks))
	return nil
}

// dumpSockets writes socks one per line, for failure messages.
func dumpSockets(socks []Socket) string {
	var b bytes.Buffer
	for _, s := range socks {
		fmt.Fprintf(&b, "  %-12v %v -> %v recv_q=%d send_q=%d accept_q=%d backlog=%d",
			s.State, s.Local, s.Remote, s.RecvQ, s.SendQ, s.AcceptQ, s.Backlog)
		if i := s.Info; i != nil {
			fmt.Fprintf(&b, " cwnd=%d rtt=%v rto=%v unacked=%d snd_wnd=%d", i.SndCwnd, i.RTT, i.RTO, i.Unacked, i.SndWnd)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// find returns the socket of socks whose addresses are local and remote.
func find(socks []Socket, local, remote netip.AddrPort) (Socket, bool) {
	for _, s := range socks {
		if s.Local == local && s.Remote == remote {
			return s, true
		}
	}
	return Socket{}, false
}

// addrPort returns a net.Addr's address and port, unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// conn is one connection on loopback: both ends and their addresses.
type conn struct {
	client, server *net.TCPConn
	c, s           netip.AddrPort
}

// listen listens on addr ("127.0.0.1:0"), closed when the test ends.
func listen(tb testing.TB, network, addr string) *net.TCPListener {
	tb.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// dial connects to ln from network and accepts the connection; both ends
// are closed when the test ends.
func dial(tb testing.TB, ln *net.TCPListener, network, addr string) conn {
	tb.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.Dial(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	s, err := ln.AcceptTCP()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return conn{c.(*net.TCPConn), s, addrPort(c.LocalAddr()), addrPort(s.LocalAddr())}
}

// listenBacklog listens on addr with the given backlog, which package net
// does not let a caller choose, and returns the socket; it is closed when
// the test ends.
func listenBacklog(tb testing.TB, addr netip.AddrPort, backlog int) int {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())}); err != nil {
		tb.Fatalf("bind %v: %v", addr, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		tb.Fatalf("listen %v: %v", addr, err)
	}
	return fd
}

// connectNonblock starts a connection to addr and returns its socket
// without waiting for the handshake; it is closed when the test ends.
func connectNonblock(tb testing.TB, addr netip.AddrPort) int {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	err = unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())})
	if err != nil && err != unix.EINPROGRESS {
		tb.Fatalf("connect %v: %v", addr, err)
	}
	return fd
}

// localAddr is the address a socket is bound to.
func localAddr(tb testing.TB, fd int) netip.AddrPort {
	tb.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	in4 := sa.(*unix.SockaddrInet4)
	return netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port))
}
