package scripted_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/lab/scripted"
)

// linuxMinRTO is Linux's minimum retransmission timeout (TCP_RTO_MIN),
// which a loopback-fast path's RTO sits on: RFC 6298 2.4 asks for 1 s,
// and allows less.
const linuxMinRTO = 200 * time.Millisecond

// The behaviours below are timed by one kernel timer each; each is a
// test, and TestTimerChangesFail shows that each one's timing assertions
// fail when that timer is changed.

// minRTO: RFC 6298 2.2, 2.3, 2.4 and 5.5. Unacknowledged data is
// retransmitted after the RTO, then after twice that. The RTO is SRTT +
// max(200 ms, 4 RTTVAR): Linux's floor of 200 ms stands for the RFC's
// clock granularity G (the RFC's own floor is 1 s). On a fast path it is
// the floor that counts; the RTT is the kernel's own sample, which
// includes how long the script took to answer the SYN/ACK.
func minRTO(t *testing.T, tb scripted.TB, p *scripted.Peer) {
	conn, c := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1460)}, scripted.DefaultWindow)
	abortOnCleanup(t, c)
	rto := expectedRTO(t, c)
	write(t, c, "hello")
	data := scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Payload: []byte("hello")}
	conn.Expect(tb, data, time.Second)
	conn.ExpectAfter(tb, data, rto)
	conn.ExpectAfter(tb, data, 2*rto)
}

// expectedRTO is the RTO RFC 6298 2.3 gives c's socket with Linux's floor
// of 200 ms: SRTT + max(200 ms, 4 RTTVAR). It reads the kernel's RTT
// estimates, never its RTO, so that a changed timer shows.
func expectedRTO(t *testing.T, c *net.TCPConn) time.Duration {
	t.Helper()
	info := tcpInfo(t, c)
	srtt := time.Duration(info.Rtt) * time.Microsecond
	rttvar := time.Duration(info.Rttvar) * time.Microsecond
	return (srtt + max(linuxMinRTO, 4*rttvar)).Round(time.Millisecond)
}

// gaveUp: RFC 9293 3.8.3 (R2) and RFC 1122 4.2.3.5. After n
// retransmissions (each after twice the previous timeout), with the
// kernel's limit reached (tcp_retries2, or TCP_USER_TIMEOUT userTimeout
// of the RTO when not nil), the kernel gives up silently: no further
// retransmission by the time the next would be due, no RST, and the
// application's read fails with ETIMEDOUT.
func gaveUp(t *testing.T, tb scripted.TB, p *scripted.Peer, n int, userTimeout func(rto time.Duration) time.Duration) {
	conn, c := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1460)}, scripted.DefaultWindow)
	abortOnCleanup(t, c)
	rto := expectedRTO(t, c)
	if userTimeout != nil {
		setsockopt(t, c, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout(rto)/time.Millisecond))
	}
	write(t, c, "hello")
	data := scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Payload: []byte("hello")}
	conn.Expect(tb, data, time.Second)
	for i := range n {
		conn.ExpectAfter(tb, data, rto<<i)
	}
	conn.ExpectNone(tb, rto<<n+rto/2)
	if _, err := readFor(c, 2*time.Second); !errors.Is(err, syscall.ETIMEDOUT) {
		tb.Fatalf("read after the kernel gave up: %v, want ETIMEDOUT", err)
	}
}

// retries2 is gaveUp with net.ipv4.tcp_retries2 at 0 in the namespace:
// one retransmission (the kernel checks the limit only once it has
// retransmitted), then, at the next timeout (600 ms after the data), the
// kernel finds that more than its model of tcp_retries2 backoffs from
// TCP_RTO_MIN ((2<<0)-1 of them: 200 ms) has passed and gives up. With
// tcp_retries2 at 2 (7 x 200 ms) the second retransmission comes.
func retries2(t *testing.T, tb scripted.TB, p *scripted.Peer) {
	setRetries2(t, 0)
	gaveUp(t, tb, p, 1, nil)
}

// userTimeout is gaveUp with TCP_USER_TIMEOUT (RFC 5482) at 4 RTOs (0.8
// s on a fast path): two retransmissions (at 1 and 3 RTOs), then the RTO
// is clamped to what is left of the user timeout, and the connection dies
// before the third would be due (7 RTOs). Whether the kernel counts the
// user timeout from the data or from its first retransmission (4 or 5
// RTOs), no retransmission is due near it.
func userTimeout(t *testing.T, tb scripted.TB, p *scripted.Peer) {
	gaveUp(t, tb, p, 2, func(rto time.Duration) time.Duration { return 4 * rto })
}

func TestRetransmissionMinRTO(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	minRTO(t, t, start(t))
}

func TestRetries2SilentClose(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	retries2(t, t, start(t))
}

func TestUserTimeoutSilentClose(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	userTimeout(t, t, start(t))
}

// TestTimerChangesFail runs each timed behaviour twice in the same
// namespace: as the kernel is (it must pass), then with its timer changed
// (it must fail, on a time or on a segment that should not have come): a
// route's rto_min of 1 s, tcp_retries2 2 (0 as is), TCP_USER_TIMEOUT of
// 8 RTOs (4 as is). So the
// timing assertions hold the kernel's timers, not any timing at all, and
// the noise the tests allow (measured) does not hide a changed timer.
func TestTimerChangesFail(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	for _, tt := range []struct {
		name      string
		behaviour func(*testing.T, scripted.TB, *scripted.Peer)
		changed   func(*testing.T, scripted.TB, *scripted.Peer)
		want      string
	}{
		{"rto_min", minRTO, func(t *testing.T, tb scripted.TB, p *scripted.Peer) {
			setRTOMin(t, p, time.Second)
			minRTO(t, tb, p)
		}, "want PSH,ACK seq=1 len=5 at +2"},
		{"tcp_retries2", retries2, func(t *testing.T, tb scripted.TB, p *scripted.Peer) {
			setRetries2(t, 2)
			gaveUp(t, tb, p, 1, nil)
		}, "want nothing within"},
		{"TCP_USER_TIMEOUT", userTimeout, func(t *testing.T, tb scripted.TB, p *scripted.Peer) {
			gaveUp(t, tb, p, 2, func(rto time.Duration) time.Duration { return 8 * rto })
		}, "want nothing within"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("as is", func(t *testing.T) {
				if msg := failure(func(tb scripted.TB) { tt.behaviour(t, tb, start(t)) }); msg != "" {
					t.Fatalf("the behaviour fails on the kernel as it is:\n%s", msg)
				}
			})
			t.Run("changed", func(t *testing.T) {
				// The failed step leaves a frame commented "unexpected",
				// which start's check of the pcapng would not take.
				p, err := scripted.Open(measured(t, scripted.Config{}))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.Close() })
				msg := failure(func(tb scripted.TB) { tt.changed(t, tb, p) })
				if !strings.Contains(msg, tt.want) {
					t.Fatalf("with the timer changed the behaviour's assertions say %q, want a failure saying %q", msg, tt.want)
				}
				t.Logf("with the timer changed: %s", firstLine(msg))
			})
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// abortOnCleanup makes c's close at the end of the test a RST (SO_LINGER
// 0), so that no orphan of it waits for the next test's connection from
// the same port.
func abortOnCleanup(t *testing.T, c *net.TCPConn) {
	t.Cleanup(func() { c.SetLinger(0) })
}

// setRetries2 sets net.ipv4.tcp_retries2 in the test's namespace.
func setRetries2(t *testing.T, n int) {
	t.Helper()
	if err := os.WriteFile("/proc/sys/net/ipv4/tcp_retries2", []byte(fmt.Sprint(n)), 0o644); err != nil {
		t.Fatalf("tcp_retries2: %v", err)
	}
}

// setRTOMin gives the route to the peer's address the metric rto_min d,
// as `ip route replace 192.168.0.2/32 dev tcplab-s0 rto_min 1s` does.
func setRTOMin(t *testing.T, p *scripted.Peer, d time.Duration) {
	t.Helper()
	link, err := netlink.LinkByName("tcplab-s0")
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.PrefixFrom(p.Addr(), 32)
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)},
		Scope: netlink.SCOPE_LINK, RtoMin: int(d / time.Millisecond), RtoMinLock: true}
	if err := netlink.RouteReplace(r); err != nil {
		t.Fatalf("route %v rto_min %v: %v", dst, d, err)
	}
}
