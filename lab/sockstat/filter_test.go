package sockstat

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"

	"golang.org/x/sys/unix"
)

// TestFilterLive samples two IPv4 servers, an IPv6 one and a dual-stack
// one, each with a connection, through each kind of filter: exactly the
// sockets the filter names come back, with their addresses as the
// connections see them (a dual-stack socket's unmapped).
func TestFilterLive(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	ln1 := listen(t, "tcp4", "127.0.0.1:0")
	ln2 := listen(t, "tcp4", "127.0.0.1:0")
	ln6 := listen(t, "tcp6", "[::1]:0")
	lnDual := listen(t, "tcp", ":0")
	c1 := dial(t, ln1, "tcp4", ln1.Addr().String())
	c2 := dial(t, ln2, "tcp4", ln2.Addr().String())
	c6 := dial(t, ln6, "tcp6", ln6.Addr().String())
	dualAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), addrPort(lnDual.Addr()).Port())
	cDual := dial(t, lnDual, "tcp4", dualAddr.String())
	s := newSampler(t, Config{})

	type ends = [][2]netip.AddrPort // local, remote
	both := func(c conn) ends { return ends{{c.c, c.s}, {c.s, c.c}} }
	listener := func(ln *net.TCPListener) [2]netip.AddrPort {
		a := addrPort(ln.Addr())
		unspec := netip.IPv4Unspecified()
		if a.Addr().Is6() {
			unspec = netip.IPv6Unspecified()
		}
		return [2]netip.AddrPort{a, netip.AddrPortFrom(unspec, 0)}
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want ends
	}{
		{"port", Filter{Port: c1.s.Port()}, append(ends{listener(ln1)}, both(c1)...)},
		{"port, listening", Filter{Port: c1.s.Port(), States: States(Listen)}, ends{listener(ln1)}},
		{"port, established", Filter{Port: c2.s.Port(), States: States(Established)}, both(c2)},
		{"tuple", Filter{Tuples: []Tuple{{c1.c, c1.s}}}, both(c1)},
		{"tuple, reversed", Filter{Tuples: []Tuple{{c2.s, c2.c}}}, both(c2)},
		{"two tuples", Filter{Tuples: []Tuple{{c1.c, c1.s}, {c2.c, c2.s}}}, append(both(c1), both(c2)...)},
		{"ipv6 port", Filter{Port: c6.s.Port()}, append(ends{listener(ln6)}, both(c6)...)},
		{"ipv6 tuple", Filter{Tuples: []Tuple{{c6.c, c6.s}}}, both(c6)},
		{"dual-stack tuple", Filter{Tuples: []Tuple{{cDual.c, cDual.s}}}, both(cDual)},
		{"no such connection", Filter{Tuples: []Tuple{{netip.MustParseAddrPort("127.0.0.1:1"), c1.s}}}, nil},
		{"tuple, other state", Filter{Tuples: []Tuple{{c1.c, c1.s}}, States: States(FinWait1, TimeWait)}, nil},
		{"port or tuple", Filter{Port: c6.s.Port(), Tuples: []Tuple{{c1.c, c1.s}}},
			append(append(ends{listener(ln6)}, both(c6)...), both(c1)...)},
	} {
		socks, err := s.Sample(tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got ends
		for _, sock := range socks {
			got = append(got, [2]netip.AddrPort{sock.Local, sock.Remote})
			if sock.State == Established && (sock.Info == nil || sock.Cong == "") {
				t.Errorf("%s: %v -> %v without tcp_info or cong", tc.name, sock.Local, sock.Remote)
			}
		}
		cmp := func(a, b [2]netip.AddrPort) int {
			if c := a[0].Compare(b[0]); c != 0 {
				return c
			}
			return a[1].Compare(b[1])
		}
		slices.SortFunc(got, cmp)
		slices.SortFunc(tc.want, cmp)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v\nwant %v", tc.name, got, tc.want)
		}
	}
}

// TestNetNS: a Sampler made for another namespace sees that namespace's
// sockets and not its caller's, and the caller's thread stays in its own.
func TestNetNS(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	other := testenv.NewNetNS(t)
	var ln net.Listener
	err := netns.Enter(other, func() (err error) {
		ln, err = net.Listen("tcp4", "127.0.0.1:8000")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	here := listen(t, "tcp4", "127.0.0.1:8001")

	f := Filter{States: States(Listen)}
	for _, c := range []struct {
		name string
		cfg  Config
		want uint16
	}{
		{"other namespace", Config{NetNS: other}, 8000},
		{"this namespace", Config{}, addrPort(here.Addr()).Port()},
	} {
		socks, err := newSampler(t, c.cfg).Sample(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(socks) != 1 || socks[0].Local.Port() != c.want {
			t.Errorf("%s: listeners %s, want one on port %d", c.name, dumpSockets(socks), c.want)
		}
	}
}

// bringUpLoopback sets lo up in the calling thread's namespace with an
// ioctl, as `ip link set lo up` does.
func bringUpLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
