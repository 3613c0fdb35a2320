package scripted_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/lab/scripted"
)

// RFC 9293 3.7.1, RFC 7323 2.2 and 3.2, RFC 2018 2: each option is
// answered only when the SYN carried it. A SYN with one option alone
// gets a SYN/ACK with the MSS (always sent) and that option, and none of
// the others.
func TestSYNWithEachOption(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	all := scripted.OptWindowScale | scripted.OptSACKPermitted | scripted.OptTimestamps
	for _, tt := range []struct {
		name string
		opts scripted.Options
		has  scripted.OptionSet
	}{
		{"mss", scripted.Options{MSS: scripted.Uint16(1400)}, 0},
		{"wscale", scripted.Options{WindowScale: scripted.Uint8(7)}, scripted.OptWindowScale},
		{"sackOK", scripted.Options{SACKPermitted: true}, scripted.OptSACKPermitted},
		{"TS", scripted.Options{TSVal: scripted.Uint32(1000), TSEcr: scripted.Uint32(0)}, scripted.OptTimestamps},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t)
			listen(t, p)
			conn := p.Dial(serverPort)
			conn.Send(t, scripted.TCP{Flags: scripted.SYN, Options: tt.opts})
			conn.Expect(t, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1),
				Options: scripted.Options{Present: scripted.OptMSS | tt.has, Absent: all &^ tt.has}}, time.Second)
			reset(t, conn)
		})
	}
}

// RFC 9293 3.10.7.4 (second check) and RFC 5961 3.2: a RST whose
// sequence number is outside the receive window is dropped silently: no
// challenge ACK, and the connection carries data afterwards.
func TestRSTOutsideWindowIgnored(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	conn.Send(t, scripted.TCP{Flags: scripted.RST, Seq: scripted.Uint32(conn.NextSeq() + 1<<30)})
	conn.ExpectNone(t, 200*time.Millisecond)
	write(t, c, "alive")
	conn.Expect(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Payload: []byte("alive")}, time.Second)
}

// RFC 9293 3.10.7.4 (first check: "if a segment's contents straddle the
// boundary between old and new, only the new parts are processed"): a
// retransmission that overlaps bytes already received, with different
// bytes there, is trimmed to what is new: the application reads the
// bytes that came first, then only the new ones.
func TestOverlapKeepsFirstBytes(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	first := conn.NextSeq()
	conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Payload: []byte("hello")})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(first + 5)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(first), Payload: []byte("HELLOworld")})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(first + 10)}, time.Second)
	var got []byte
	for len(got) < 10 {
		s, err := readFor(c, time.Second)
		if err != nil {
			t.Fatalf("read: %q, %v", got, err)
		}
		got = append(got, s...)
	}
	if string(got) != "helloworld" {
		t.Errorf("read %q, want helloworld: the first bytes kept, the overlap trimmed", got)
	}
}

// RFC 2883 4 (D-SACK) with RFC 2018 4: a segment that was already
// received is acknowledged at once, with a first SACK block naming the
// duplicate bytes, below the cumulative ACK.
func TestDuplicateGetsDSACK(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, _ := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1460), SACKPermitted: true}, scripted.DefaultWindow)
	seq := conn.NextSeq()
	conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Payload: []byte("hello")})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(seq + 5), Options: scripted.Options{Absent: scripted.OptSACK}}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(seq), Payload: []byte("hello")})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(seq + 5),
		Options: scripted.Options{SACK: []scripted.SACKBlock{{Left: seq, Right: seq + 5}}}}, 100*time.Millisecond)
}

// RFC 9293 3.8.6.3 and RFC 1122 4.2.3.2: an ACK may be delayed (Linux:
// at least 40 ms) when the receiver is not in quick-ACK mode, and is sent
// at once in it. TCP_QUICKACK chooses the mode on the kernel's socket.
func TestDelayedAndQuickACK(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	for _, tt := range []struct {
		name     string
		quick    int
		min, max time.Duration
	}{
		{"delayed", 0, 30 * time.Millisecond, 250 * time.Millisecond},
		{"quick", 1, 0, 10 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t)
			conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
			// A first exchange leaves the start-up quick-ACK mode behind.
			setsockopt(t, c, unix.IPPROTO_TCP, unix.TCP_QUICKACK, tt.quick)
			seq := conn.NextSeq()
			sent := time.Now()
			conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Payload: []byte("a")})
			got := conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(seq + 1), Len: scripted.Int(0)}, time.Second)
			if d := got.At.Sub(sent); d < tt.min || d > tt.max {
				t.Errorf("ACK %v after the data, want %v to %v", d.Round(time.Millisecond), tt.min, tt.max)
			}
			reset(t, conn)
		})
	}
}

// RFC 1122 4.2.3.4 and RFC 9293 3.7.4 (Nagle): with a small segment
// unacknowledged, the next small write is held until the ACK comes;
// with TCP_NODELAY it goes at once.
func TestNagle(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	for _, tt := range []struct {
		name    string
		noDelay bool
	}{{"nagle", false}, {"nodelay", true}} {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t)
			conn, c := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1460)}, scripted.DefaultWindow)
			if err := c.SetNoDelay(tt.noDelay); err != nil {
				t.Fatal(err)
			}
			write(t, c, "a")
			conn.Expect(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Payload: []byte("a")}, time.Second)
			write(t, c, "b")
			second := scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(2), Payload: []byte("b")}
			if !tt.noDelay {
				conn.ExpectNone(t, 150*time.Millisecond)
				conn.Send(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(2)})
			}
			conn.Expect(t, second, 50*time.Millisecond)
			reset(t, conn)
		})
	}
}

// RFC 9293 3.10.7.4 (FIN-WAIT-2, TIME-WAIT) and 3.6: the kernel closes
// first; the script's ACK leaves it in FIN_WAIT_2, silent; the script's
// FIN is acknowledged and the kernel goes to TIME_WAIT, where a
// retransmission of that FIN is acknowledged again.
func TestTimeWaitAnswersRetransmittedFIN(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	c.Close()
	conn.Expect(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(1)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	conn.ExpectNone(t, 200*time.Millisecond) // FIN_WAIT_2: nothing to say
	fin := conn.NextSeq()
	conn.Send(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(2), Ack: scripted.Uint32(fin + 1), Len: scripted.Int(0)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(fin)})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(2), Ack: scripted.Uint32(fin + 1), Len: scripted.Int(0)}, time.Second)
}

// RFC 9293 3.10.7.4 (TIME-WAIT) with RFC 1122 4.2.2.13: a new SYN whose
// sequence number is above the old connection's end, arriving while the
// kernel holds the old one in TIME_WAIT, starts a new connection: the
// listener answers it with a SYN/ACK.
func TestSYNInTimeWait(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	c.Close()
	conn.Expect(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(1)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(conn.NextSeq())}, time.Second)
	next := conn.NextSeq() + 100000
	conn.Send(t, scripted.TCP{Flags: scripted.SYN, Seq: scripted.Uint32(next)})
	conn.Expect(t, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(next + 1)}, time.Second)
}

// RFC 9293 3.5 (figure 7, simultaneous open): the kernel's SYN crosses
// the script's; the kernel answers the script's SYN with a SYN/ACK of its
// own SYN, the script's SYN/ACK completes it, and connect returns.
func TestSimultaneousOpen(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn := p.Listen(80)
	done := make(chan error, 1)
	var kc net.Conn
	go func() {
		d := net.Dialer{Timeout: 3 * time.Second}
		var err error
		kc, err = d.Dial("tcp4", conn.AddrPort().String())
		done <- err
	}()
	conn.Expect(t, scripted.TCP{Flags: scripted.SYN, Seq: scripted.Uint32(0)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.SYN, Seq: scripted.Uint32(0), Ack: scripted.Uint32(0)})
	conn.Expect(t, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Seq: scripted.Uint32(0), Ack: scripted.Uint32(1)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Seq: scripted.Uint32(0), Ack: scripted.Uint32(1)})
	if err := <-done; err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { kc.Close() })
}

// RFC 9293 3.8.6.1: a window update that comes between two zero-window
// probes lets the data go at once, without waiting for the next probe.
func TestWindowReopensMidProbe(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, 0)
	write(t, c, "hello")
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(0), Len: scripted.Int(0)}, time.Second)
	conn.ExpectNone(t, 100*time.Millisecond)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	conn.Expect(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Payload: []byte("hello")}, 20*time.Millisecond)
}

// RFC 6298 5.7 and 2.1 (the initial RTO of 1 s), 5.5 (backoff), RFC 9293
// 3.8.1: the kernel's unanswered SYN is retransmitted 1 s after it. Linux
// 6.5 and later then retransmit it net.ipv4.tcp_syn_linear_timeouts times
// (4 by default) without backing off, 1 s apart, before doubling; earlier
// kernels double at once (2 s, then 4 s).
func TestSYNRetransmission(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	gaps := []time.Duration{time.Second, 2 * time.Second}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_syn_linear_timeouts"); err == nil {
		if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n >= 3 {
			gaps = []time.Duration{time.Second, time.Second, time.Second}
		}
	}
	var total time.Duration
	for _, g := range gaps {
		total += g
	}
	p := start(t)
	conn := p.Listen(80)
	done := make(chan error, 1)
	go func() {
		d := net.Dialer{Timeout: total + 500*time.Millisecond}
		c, err := d.Dial("tcp4", conn.AddrPort().String())
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	syn := scripted.TCP{Flags: scripted.SYN, Seq: scripted.Uint32(0)}
	conn.Expect(t, syn, time.Second)
	for _, g := range gaps {
		conn.ExpectAfter(t, syn, g)
	}
	if err := <-done; err == nil {
		t.Error("connect succeeded with no answer")
	}
}

// RFC 6298 2.1 and 5.5, RFC 9293 3.8.1: the kernel's SYN/ACK to a SYN
// that is never acknowledged is retransmitted 1 s after it, then 2 s
// after that.
func TestSYNACKRetransmission(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	listen(t, p)
	conn := p.Dial(serverPort)
	conn.Send(t, scripted.TCP{Flags: scripted.SYN})
	synack := scripted.TCP{Flags: scripted.SYN | scripted.ACK, Seq: scripted.Uint32(0), Ack: scripted.Uint32(1)}
	conn.Expect(t, synack, time.Second)
	conn.ExpectAfter(t, synack, time.Second)
	conn.ExpectAfter(t, synack, 2*time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.RST, Seq: scripted.Uint32(1)})
}

// reset ends the kernel's side of conn with a RST at RCV.NXT, so that the
// next subtest's connection, from the same port, meets no old socket.
func reset(t *testing.T, conn *scripted.Conn) {
	t.Helper()
	conn.Send(t, scripted.TCP{Flags: scripted.RST, Seq: scripted.Uint32(conn.NextSeq())})
}

// setsockopt sets an integer option on c's socket.
func setsockopt(t *testing.T, c *net.TCPConn, level, opt, v int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("setsockopt %d: %v", opt, serr)
	}
}

// TestSendIsTimedByTheKernel: a segment sent is timed when the kernel
// took it in, not when the script's write returned. The kernel answers a
// SYN while the write is still in the kernel (the TUN device hands the
// frame to the stack at once), so its SYN/ACK is stamped after the SYN
// was taken in but before the write returned: timing the SYN by the
// write's return would put the answer before its question.
func TestSendIsTimedByTheKernel(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	listen(t, p)
	conn := p.Dial(serverPort)
	before := time.Now()
	sent, err := conn.TrySend(scripted.TCP{Flags: scripted.SYN, Options: synOptions()})
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if sent.Before(before) || sent.After(after) {
		t.Fatalf("SYN taken in at %v, outside its write (%v to %v)", sent, before, after)
	}
	synack, err := conn.TryExpect(scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1)}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if synack.At.Before(sent) {
		t.Errorf("SYN/ACK stamped %v before the SYN it answers was taken in", sent.Sub(synack.At))
	}
	t.Logf("SYN/ACK %v after the SYN was taken in; the write returned %v after it", synack.At.Sub(sent), after.Sub(sent))
}

// TestIPv6Handshake: a peer with IPv6 addresses sends IPv6 frames the
// kernel answers, from the moment Open returns (its address is no longer
// tentative: a SYN to a tentative address is dropped).
func TestIPv6Handshake(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	needTUN(t)
	p, err := scripted.Open(measured(t, scripted.Config{Kernel: netip.MustParsePrefix("fd00:7c::1/64"), Addr: netip.MustParseAddr("fd00:7c::2")}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ln, err := net.Listen("tcp6", fmt.Sprintf("[fd00:7c::1]:%d", serverPort))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn := p.Dial(serverPort)
	conn.Send(t, scripted.TCP{Flags: scripted.SYN, Options: scripted.Options{MSS: scripted.Uint16(1400)}})
	got := conn.Expect(t, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1)}, time.Second)
	if got.Options.MSS != 1440 {
		t.Errorf("SYN/ACK's MSS %d, want 1440 (1500 less IPv6's 40 and TCP's 20)", got.Options.MSS)
	}
}
