package ktrace

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"
)

// space is a test's network namespace with the inode that names it.
type space struct {
	file  *os.File
	inode uint64
}

// newSpace makes a network namespace for the test, with lo up.
func newSpace(t *testing.T) space {
	t.Helper()
	if os.Geteuid() != 0 {
		// A namespace of its own (netns.NewHost) needs root as well.
		testenv.SkipOrFail(t, "needs root for BPF: kernel events need root (CAP_BPF and CAP_PERFMON)", "run as root")
	}
	testenv.NetNS(t)
	f := testenv.NewNetNS(t)
	ino, err := NetNSInode(f)
	if err != nil {
		t.Fatal(err)
	}
	return space{f, ino}
}

// newBenchSpace is newSpace for a benchmark.
func newBenchSpace(b *testing.B) space {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("skipping benchmark; needs root for BPF")
	}
	f := testenv.NewNetNS(b)
	ino, err := NetNSInode(f)
	if err != nil {
		b.Fatal(err)
	}
	return space{f, ino}
}

// doB is do for a benchmark.
func (s space) doB(b *testing.B, fn func() error) {
	b.Helper()
	if err := netns.Enter(s.file, fn); err != nil {
		b.Fatal(err)
	}
}

// do runs fn in the namespace (the zero space: the caller's); sockets it
// opens stay there.
func (s space) do(t *testing.T, fn func() error) {
	t.Helper()
	if err := netns.Enter(s.file, fn); err != nil {
		t.Fatal(err)
	}
}

// openTracer opens a Tracer for the namespaces, closed when the test ends;
// where tracing is not supported the test skips (fails with CI=true).
func openTracer(t *testing.T, inodes ...uint64) *Tracer {
	t.Helper()
	tr, err := Open(Config{NetNS: inodes})
	if errors.Is(err, ErrUnsupported) {
		testenv.SkipOrFail(t, "needs root for BPF: "+err.Error(), "")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		// The reading goroutine ends: the channel closes.
		timeout := time.After(5 * time.Second)
		for open := true; open; {
			select {
			case _, open = <-tr.Events():
			case <-timeout:
				t.Fatal("events not closed 5 s after Close")
			}
		}
		if n := tr.Lost(); n != 0 {
			t.Errorf("%d events lost", n)
		}
	})
	return tr
}

// connectOnce opens a connection to ln and closes both of its ends.
func connectOnce(ln *net.TCPListener) error {
	c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		return err
	}
	srv, err := ln.AcceptTCP()
	if err != nil {
		c.Close()
		return err
	}
	c.Close()
	return srv.Close()
}

// collect reads events until done says the events so far are enough, and
// fails the test if that takes longer than timeout.
func collect(t *testing.T, tr *Tracer, timeout time.Duration, done func([]Event) bool) []Event {
	t.Helper()
	var evs []Event
	deadline := time.After(timeout)
	for !done(evs) {
		select {
		case e, ok := <-tr.Events():
			if !ok {
				t.Fatalf("events closed early; so far:\n%s", dump(evs))
			}
			evs = append(evs, e)
		case <-deadline:
			t.Fatalf("events not complete after %v; so far:\n%s", timeout, dump(evs))
		}
	}
	return evs
}

// settle reads events for d more, to see what else comes.
func settle(tr *Tracer, d time.Duration, evs []Event) []Event {
	deadline := time.After(d)
	for {
		select {
		case e, ok := <-tr.Events():
			if !ok {
				return evs
			}
			evs = append(evs, e)
		case <-deadline:
			return evs
		}
	}
}

func dump(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\t%s\n", e)
	}
	return b.String()
}

// pair is a connection made in a namespace: the client and the server's
// accepted socket, with their cookies.
type pair struct {
	client, server             *net.TCPConn
	clientCookie, serverCookie uint64
	clientAddr, serverAddr     netip.AddrPort
}

// The loopback addresses.
var (
	lo4 = net.IPv4(127, 0, 0, 1)
	lo6 = net.IPv6loopback
)

// connect makes a TCP connection on lo in the namespace s, over IPv4.
func connect(t *testing.T, s space) pair {
	t.Helper()
	return connectOn(t, s, lo4)
}

// connectOn makes a TCP connection to ip (on lo) in the namespace s.
func connectOn(t *testing.T, s space, ip net.IP) pair {
	t.Helper()
	var p pair
	s.do(t, func() error {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip})
		if err != nil {
			return err
		}
		defer ln.Close()
		c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
		if err != nil {
			return err
		}
		srv, err := ln.AcceptTCP()
		if err != nil {
			c.Close()
			return err
		}
		p = pair{client: c, server: srv,
			clientAddr: c.LocalAddr().(*net.TCPAddr).AddrPort(),
			serverAddr: srv.LocalAddr().(*net.TCPAddr).AddrPort()}
		return nil
	})
	t.Cleanup(func() { p.client.Close(); p.server.Close() })
	p.clientCookie = cookie(t, p.client)
	p.serverCookie = cookie(t, p.server)
	return p
}

// cookie returns the socket's SO_COOKIE, the Cookie of its events.
func cookie(t *testing.T, c *net.TCPConn) uint64 {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v uint64
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("SO_COOKIE: %v", serr)
	}
	return v
}

// changes returns the state changes of the socket with the cookie, as
// "OLD>NEW" strings.
func changes(evs []Event, cookie uint64) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == StateChange && e.Cookie == cookie {
			out = append(out, e.OldState.String()+">"+e.NewState.String())
		}
	}
	return out
}

// closedBoth: both sockets' last change, to CLOSED, has come.
func closedBoth(p pair) func([]Event) bool {
	return func(evs []Event) bool {
		c, s := changes(evs, p.clientCookie), changes(evs, p.serverCookie)
		return len(c) > 0 && strings.HasSuffix(c[len(c)-1], ">CLOSED") &&
			len(s) > 0 && strings.HasSuffix(s[len(s)-1], ">CLOSED")
	}
}

// TestStatesClose: a connection the client closes first goes through
// RFC 9293's states on both ends, in order, at non-decreasing times, each
// event naming its socket's own tuple; the timewait socket that takes over
// after FIN_WAIT_2 has no state change of its own.
func TestStatesClose(t *testing.T) {
	for _, ip := range []net.IP{lo4, lo6} {
		t.Run(ip.String(), func(t *testing.T) { testStatesClose(t, ip) })
	}
}

func testStatesClose(t *testing.T, ip net.IP) {
	s := newSpace(t)
	tr := openTracer(t, s.inode)
	start := time.Now()
	p := connectOn(t, s, ip)
	if err := p.client.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.server.Read(make([]byte, 1)); err == nil {
		t.Fatal("server read data, want EOF")
	}
	if err := p.server.Close(); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, tr, 5*time.Second, closedBoth(p))
	for _, c := range []struct {
		name   string
		cookie uint64
		src    netip.AddrPort
		dst    netip.AddrPort
		want   []string
	}{
		{"client", p.clientCookie, p.clientAddr, p.serverAddr, []string{
			"CLOSED>SYN_SENT", "SYN_SENT>ESTABLISHED", "ESTABLISHED>FIN_WAIT_1",
			"FIN_WAIT_1>FIN_WAIT_2", "FIN_WAIT_2>CLOSED"}},
		{"server", p.serverCookie, p.serverAddr, p.clientAddr, []string{
			"LISTEN>SYN_RECEIVED", "SYN_RECEIVED>ESTABLISHED", "ESTABLISHED>CLOSE_WAIT",
			"CLOSE_WAIT>LAST_ACK", "LAST_ACK>CLOSED"}},
	} {
		if got := changes(evs, c.cookie); !slices.Equal(got, c.want) {
			t.Errorf("%s's state changes:\n got %q\nwant %q\nall events:\n%s", c.name, got, c.want, dump(evs))
		}
		for _, e := range evs {
			if e.Cookie != c.cookie || e.OldState == capture.Closed {
				continue // before connect() the client has no port
			}
			if e.Src != c.src || e.Dst != c.dst {
				t.Errorf("%s: event %s: tuple %s -> %s, want %s -> %s", c.name, e, e.Src, e.Dst, c.src, c.dst)
			}
		}
	}
	prev := start.Add(-time.Millisecond) // the offset is measured to a few µs
	for _, e := range evs {
		if e.NetNS != s.inode {
			t.Errorf("event %s in namespace %d, want %d", e, e.NetNS, s.inode)
		}
		if e.Time.Before(prev) || e.Time.After(time.Now()) {
			t.Errorf("event %s: time %s outside [%s, now]", e, e.Time.Format(time.StampMicro), prev.Format(time.StampMicro))
		}
		prev = e.Time
	}
}

// TestResetNoSocket: a SYN to a port nobody listens on is dropped
// (NO_SOCKET) and answered with a RST,ACK that acknowledges it, for the
// reason NO_SOCKET; the client receives it and closes.
func TestResetNoSocket(t *testing.T) {
	for _, ip := range []net.IP{lo4, lo6} {
		t.Run(ip.String(), func(t *testing.T) { testResetNoSocket(t, ip) })
	}
}

func testResetNoSocket(t *testing.T, ip net.IP) {
	s := newSpace(t)
	tr := openTracer(t, s.inode)
	var port uint16
	s.do(t, func() error {
		// A port that was just free: listen, note it, close.
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip})
		if err != nil {
			return err
		}
		port = uint16(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		_, err = net.DialTCP("tcp", nil, &net.TCPAddr{IP: ip, Port: int(port)})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("connect to a closed port: %v, want ECONNREFUSED", err)
		}
		return nil
	})
	has := func(evs []Event, k Kind) (Event, bool) {
		i := slices.IndexFunc(evs, func(e Event) bool { return e.Kind == k })
		if i < 0 {
			return Event{}, false
		}
		return evs[i], true
	}
	evs := collect(t, tr, 5*time.Second, func(evs []Event) bool {
		_, a := has(evs, ResetSent)
		_, b := has(evs, ResetReceived)
		_, c := has(evs, Drop)
		return a && b && c
	})
	rst, _ := has(evs, ResetSent)
	syn, _ := has(evs, Drop)
	rcv, _ := has(evs, ResetReceived)
	if rst.Reason != "NO_SOCKET" || rst.Src.Port() != port || !rst.HaveSeq || rst.Flags != capture.RST|capture.ACK {
		t.Errorf("reset sent: %s; want RST,ACK from port %d, reason NO_SOCKET", rst, port)
	}
	if syn.Reason != "NO_SOCKET" || syn.Flags != capture.SYN || syn.Dst.Port() != port {
		t.Errorf("drop: %s; want the SYN to port %d, reason NO_SOCKET", syn, port)
	}
	if rst.Ack != syn.Seq+1 || rst.Seq != 0 || rst.Dst != syn.Src {
		t.Errorf("reset sent %s does not answer the SYN %s: want seq 0 ack %d to %s", rst, syn, syn.Seq+1, syn.Src)
	}
	if rcv.Src != rst.Dst || rcv.OldState != capture.SynSent {
		t.Errorf("reset received: %s; want by %s in SYN_SENT", rcv, rst.Dst)
	}
}

// TestClose: events still in the ring buffer at Close come on the channel
// before it closes; Close twice is harmless.
func TestClose(t *testing.T) {
	s := newSpace(t)
	tr := openTracer(t, s.inode)
	p := connect(t, s)
	p.client.Close()
	p.server.Close()
	// Wait, without receiving any event, until only the client's
	// timewait socket is left.
	deadline := time.Now().Add(5 * time.Second)
	for !onlyTimeWait(t, s) {
		if time.Now().After(deadline) {
			t.Fatal("sockets not closed after 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	var evs []Event
	timeout := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case e, ok := <-tr.Events():
			if ok {
				evs = append(evs, e)
			}
			open = ok
		case <-timeout:
			t.Fatalf("events not closed 5 s after Close; so far:\n%s", dump(evs))
		}
	}
	if !closedBoth(p)(evs) {
		t.Errorf("events after Close lack the connection's last changes:\n%s", dump(evs))
	}
	if err := tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// onlyTimeWait reports whether the namespace's only TCP sockets are in
// TIME_WAIT (state 06 in /proc/net/tcp).
func onlyTimeWait(t *testing.T, s space) bool {
	var b []byte
	s.do(t, func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/tcp")
		return err
	})
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")[1:]
	for _, l := range lines {
		if f := strings.Fields(l); len(f) < 4 || f[3] != "06" {
			return false
		}
	}
	return len(lines) > 0
}

// TestLost: events that find the ring buffer full, because nobody
// receives them, are counted, not silently missing.
func TestLost(t *testing.T) {
	s := newSpace(t)
	tr, err := Open(Config{NetNS: []uint64{s.inode}, Buffer: 1})
	if errors.Is(err, ErrUnsupported) {
		testenv.SkipOrFail(t, "needs root for BPF: "+err.Error(), "")
	}
	if err != nil {
		t.Fatal(err)
	}
	// A connection makes about 12 events of 88 bytes (with the ring's
	// header); the ring holds 1 MiB: 12,000 of them.
	const conns = 2000
	deadline := time.Now().Add(20 * time.Second)
	s.do(t, func() error {
		ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		defer ln.Close()
		for i := 0; i < conns && tr.Lost() == 0 && time.Now().Before(deadline); i++ {
			if err := connectOnce(ln); err != nil {
				return err
			}
		}
		return nil
	})
	lost := tr.Lost()
	if lost == 0 {
		t.Errorf("no event lost after %d connections with nobody receiving", conns)
	}
	tr.Close()
	received := 0
	for range tr.Events() {
		received++
	}
	if received == 0 {
		t.Error("no event received")
	}
	t.Logf("%d events received, %d lost", received, lost)
}

// TestUndeliveredCounted: the events the programs submit are counted in
// the kernel and compared with the records read, so that an event lost
// between the ring buffer and the reader is counted, not missing. A
// traced connection's events are all read: none undelivered.
func TestUndeliveredCounted(t *testing.T) {
	s := newSpace(t)
	tr := openTracer(t, s.inode)
	connect(t, s)
	collect(t, tr, 5*time.Second, func(evs []Event) bool { return len(evs) >= 2 })
	tr.Close()
	for range tr.Events() {
	}
	tr.mu.Lock()
	read, lost := tr.records, tr.undelivered
	tr.mu.Unlock()
	if read < 2 || lost != 0 {
		t.Errorf("%d records read, %d undelivered; want at least 2 and none", read, lost)
	}
	for _, tc := range []struct{ submitted, read, want uint64 }{
		{0, 0, 0}, {12, 12, 0}, {12, 10, 2}, {3, 4, 0},
	} {
		if got := undelivered(tc.submitted, tc.read); got != tc.want {
			t.Errorf("undelivered(%d submitted, %d read) = %d, want %d", tc.submitted, tc.read, got, tc.want)
		}
	}
}
