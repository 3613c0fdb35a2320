package path

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"

	"github.com/vishvananda/netlink"
)

// probes sends n UDP datagrams from the client to the server, one every
// gap, which the server echoes, and returns the one-way delay of each in
// each direction, measured on the process's one monotonic clock (both
// ends run in this process). Probes that do not come back within a
// second after the last one is sent are missing from the result.
func probes(tb testing.TB, l *lab, port, n int, gap time.Duration) (c2s, s2c []time.Duration) {
	tb.Helper()
	srv := l.listenUDP(tb, port)
	cli := l.dialUDP(tb, port)
	base := time.Now()
	stamp := func() uint64 { return uint64(time.Since(base)) }
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { // the server: stamp the one-way delay and echo
		defer wg.Done()
		buf := make([]byte, 64)
		for range n {
			srv.SetReadDeadline(time.Now().Add(time.Duration(n)*gap + 2*time.Second))
			k, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil || k < 24 {
				return
			}
			now := stamp()
			binary.BigEndian.PutUint64(buf[8:], now-binary.BigEndian.Uint64(buf))
			binary.BigEndian.PutUint64(buf[16:], stamp())
			srv.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	wg.Add(1)
	go func() { // the client's sender
		defer wg.Done()
		buf := make([]byte, 24)
		for range n {
			binary.BigEndian.PutUint64(buf, stamp())
			cli.Write(buf)
			time.Sleep(gap)
		}
	}()
	buf := make([]byte, 64)
	cli.SetReadDeadline(time.Now().Add(time.Duration(n)*gap + time.Second))
	for range n {
		k, err := cli.Read(buf)
		if err != nil {
			break
		}
		now := stamp()
		if k < 24 {
			tb.Fatalf("echo of %d bytes", k)
		}
		c2s = append(c2s, time.Duration(binary.BigEndian.Uint64(buf[8:])))
		s2c = append(s2c, time.Duration(now-binary.BigEndian.Uint64(buf[16:])))
	}
	return c2s, s2c
}

// quantile returns the q-quantile (0 to 1) of ds, which it sorts.
func quantile(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// TestLineDelay: real kernel traffic takes at least the configured delay
// each way, and a TCP handshake (connect(), SYN to SYN/ACK) at least the
// round trip, through TUN devices and through veth pairs (Veth, for a user
// who may not open /dev/net/tun). Lower bounds are exact: the line never
// sends a packet early. Upper bounds are loose, because the scheduler of
// a busy 2-core machine may run the line's writer late.
func TestLineDelay(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	tests := []struct {
		path     string
		c2s, s2c time.Duration
		veth     bool
	}{
		{"delay=20ms", 20 * time.Millisecond, 20 * time.Millisecond, false},
		{"c2s:delay=30ms,s2c:delay=5ms", 30 * time.Millisecond, 5 * time.Millisecond, false},
		{"c2s:delay=30ms,s2c:delay=5ms", 30 * time.Millisecond, 5 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/veth=%v", tt.path, tt.veth), func(t *testing.T) {
			p, err := Parse(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			l := startLabOn(t, p, 1, 0, tt.veth)
			ln := l.listenTCP(t, 8000)
			rtt := tt.c2s + tt.s2c
			for i := range 3 {
				c, took := l.dialTCP(t, 8000)
				s, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				s.Close()
				t.Logf("connect %d: %v (RTT %v)", i+1, took, rtt)
				if took < rtt || took > rtt+time.Second {
					t.Errorf("connect %d took %v; want the RTT %v, at most %v more", i+1, took, rtt, time.Second)
				}
			}
			c2s, s2c := probes(t, l, 9000, 50, 5*time.Millisecond)
			if len(c2s) != 50 {
				t.Fatalf("%d of 50 probes came back", len(c2s))
			}
			for _, d := range []struct {
				name string
				got  []time.Duration
				want time.Duration
			}{{"c2s", c2s, tt.c2s}, {"s2c", s2c, tt.s2c}} {
				lo, p50, p99 := quantile(d.got, 0), quantile(d.got, 0.5), quantile(d.got, 0.99)
				t.Logf("%s one-way delay: min %v, p50 %v, p99 %v (configured %v)", d.name, lo, p50, p99, d.want)
				if lo < d.want {
					t.Errorf("%s: a probe took %v, below the delay %v", d.name, lo, d.want)
				}
				if p50 > d.want+20*time.Millisecond {
					t.Errorf("%s: median %v, more than 20ms above the delay %v", d.name, p50, d.want)
				}
			}
		})
	}
}

// TestLineRate: a bulk TCP transfer through rate=10mbit runs at the rate,
// within 10%. What the receiver counts is TCP payload, 1448 bytes of each
// 1500-byte packet with timestamps (96.5%), so the expected goodput is
// 9.65 Mbit/s; the window starts after slow start's first 300 ms.
//
// The line can only be slower than its rate when the machine starves it
// of CPU (go test runs packages in parallel on two cores), so a slow
// measurement is taken again, up to three times; a fast one fails at once,
// since nothing but a wrong line sends faster than the rate.
func TestLineRate(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	const rate = 10_000_000
	want := rate * 1448.0 / 1500
	for try := 1; ; try++ {
		l := startLab(t, Path{C2S: Conditions{Rate: rate}, S2C: Conditions{Rate: rate}}, 1, 100)
		got := bulk(t, l)
		t.Logf("try %d: goodput %.2f Mbit/s (want %.2f ± 10%%); line %+v", try, got/1e6, want/1e6, l.line.Stats())
		switch {
		case got > 1.1*want:
			t.Fatalf("goodput %.2f Mbit/s, above the rate: want %.2f Mbit/s ± 10%%", got/1e6, want/1e6)
		case got >= 0.9*want:
			return
		case try == 3:
			t.Fatalf("goodput %.2f Mbit/s three times, want %.2f Mbit/s ± 10%%", got/1e6, want/1e6)
		}
	}
}

// bulk sends TCP data from the client to the server as fast as it can
// and returns the goodput the server saw, in bit/s, over 2 s after the
// first 300 ms (slow start).
func bulk(tb testing.TB, l *lab) float64 {
	tb.Helper()
	ln := l.listenTCP(tb, 8000)
	c, _ := l.dialTCP(tb, 8000)
	s, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	const (
		warmup = 300 * time.Millisecond
		span   = 2 * time.Second
	)
	go func() { // the client sends until the server has measured
		buf := make([]byte, 64<<10)
		c.SetWriteDeadline(time.Now().Add(warmup + span + 2*time.Second))
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	defer c.Close()
	buf := make([]byte, 64<<10)
	var total, atStart int64
	var first, from time.Time
	s.SetReadDeadline(time.Now().Add(warmup + span + 5*time.Second))
	for {
		n, err := s.Read(buf)
		if err != nil {
			tb.Fatalf("read after %d bytes: %v", total, err)
		}
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		total += int64(n)
		if from.IsZero() && now.Sub(first) >= warmup {
			// Count what arrives after from: this read's bytes came
			// before it.
			from, atStart = now, total
		}
		if !from.IsZero() && now.Sub(from) >= span {
			return float64(total-atStart) * 8 / now.Sub(from).Seconds()
		}
	}
}

// udpRun sends n numbered datagrams from the client to the server, ten
// every millisecond, and returns the numbers the server received, in
// order of arrival, once the client has sent them all and nothing more
// came for 300ms. (A pause of the sender, which a loaded machine makes
// longer than 300ms, does not end the run.)
func udpRun(tb testing.TB, l *lab, port, n int) []int {
	tb.Helper()
	srv := l.listenUDP(tb, port)
	cli := l.dialUDP(tb, port)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		buf := make([]byte, 8)
		for i := range n {
			binary.BigEndian.PutUint64(buf, uint64(i))
			if _, err := cli.Write(buf); err != nil {
				return
			}
			if i%10 == 9 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var got []int
	buf := make([]byte, 64)
	deadline := time.Now().Add(time.Duration(n)*time.Millisecond + 10*time.Second)
	for len(got) < 2*n && time.Now().Before(deadline) {
		srv.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		k, err := srv.Read(buf)
		if err != nil {
			done := false
			select {
			case <-sent:
				done = true
			default:
			}
			switch {
			case errors.Is(err, io.EOF):
			case !done:
				continue // the sender is not done
			case len(got) == 0 && time.Now().Before(deadline.Add(-9*time.Second)):
				continue // nothing yet: the first datagrams may be on the line
			}
			break
		}
		if k != 8 {
			tb.Fatalf("datagram of %d bytes", k)
		}
		got = append(got, int(binary.BigEndian.Uint64(buf)))
	}
	return got
}

// TestLineLoss: loss=10% over 2000 real UDP datagrams loses within the
// binomial bounds (4.5σ: 200 ± 60), and the line's counters account for
// every datagram.
func TestLineLoss(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	const n = 2000
	l := startLab(t, Path{C2S: Conditions{Loss: 10}}, 1, 0)
	got := udpRun(t, l, 9000, n)
	st := l.line.Stats().C2S
	t.Logf("received %d of %d; line %+v", len(got), n, st)
	if st.In != n || st.Out != uint64(len(got)) || st.Lost != n-uint64(len(got)) || st.Dropped != 0 {
		t.Errorf("counters %+v; want In %d, Out = received = %d, Lost %d, Dropped 0", st, n, len(got), n-len(got))
	}
	within(t, "lost", n-uint64(len(got)), n, 0.10)
}

// TestLineReorderDuplicate: reordered datagrams arrive before the ones
// sent earlier, duplicates arrive twice, and the counters say how many.
func TestLineReorderDuplicate(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	const n = 1000
	p, err := Parse("delay=10ms,reorder=20%,duplicate=10%")
	if err != nil {
		t.Fatal(err)
	}
	l := startLab(t, p, 1, 0)
	got := udpRun(t, l, 9000, n)
	st := l.line.Stats().C2S
	seen := map[int]int{}
	early, hi := 0, -1
	for _, id := range got {
		seen[id]++
		if id < hi {
			early++
		}
		hi = max(hi, id)
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("received %d datagrams, %d distinct, %d duplicates, %d after a later one; line %+v", len(got), len(seen), dups, early, st)
	if len(seen) != n || uint64(dups) != st.Duplicated || st.Out != uint64(len(got)) {
		t.Errorf("received %d distinct and %d duplicates; want all %d, and Duplicated = %d", len(seen), dups, n, st.Duplicated)
	}
	within(t, "duplicated", st.Duplicated, n, 0.10)
	within(t, "reordered", st.Reordered, float64(n+dups), 0.20)
	if early == 0 {
		t.Error("no datagram arrived after one sent later: nothing was reordered")
	}
}

// TestLineSeed: the same seed and the same datagrams give the same fate
// to every datagram on real devices; another seed does not.
func TestLineSeed(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p, err := Parse("loss=20%,duplicate=10%")
	if err != nil {
		t.Fatal(err)
	}
	run := func(seed uint64) []int {
		l := startLab(t, p, seed, 0)
		got := udpRun(t, l, 9000, 500)
		slices.Sort(got)
		return got
	}
	a, b, c := run(7), run(7), run(8)
	t.Logf("seed 7: %d datagrams received, then %d; seed 8: %d", len(a), len(b), len(c))
	if !slices.Equal(a, b) {
		t.Errorf("seed 7 twice: different datagrams received (%d and %d)", len(a), len(b))
	}
	if slices.Equal(a, c) {
		t.Error("seeds 7 and 8 received the same datagrams")
	}
}

// TestLineClose: a line stops when its context is done, Close removes its
// devices, and no goroutine is left behind.
func TestLineClose(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	needTUN(t)
	client, server := testenv.NewNetNS(t), testenv.NewNetNS(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	line, err := StartLine(ctx, LineConfig{
		Path:   Path{C2S: Conditions{Delay: time.Second}},
		Client: Endpoint{NetNS: client, Name: "tcplab0", Addrs: []netip.Prefix{clientAddr}},
		Server: Endpoint{NetNS: server, Name: "tcplab1", Addrs: []netip.Prefix{serverAddr}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A packet waits in the line when it stops.
	if err := netns.Enter(client, func() error {
		c, err := net.Dial("udp4", "192.168.0.101:9")
		if err == nil {
			_, err = c.Write([]byte("x"))
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); line.Stats().C2S.In == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-line.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the line did not stop within 5s of its context's end")
	}
	if err := line.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := line.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, ep := range []struct {
		ns   *os.File
		name string
	}{{client, "tcplab0"}, {server, "tcplab1"}} {
		err := netns.Enter(ep.ns, func() error {
			_, err := netlink.LinkByName(ep.name)
			return err
		})
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			t.Errorf("after Close, looking up %s: %v; want not found", ep.name, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before StartLine", n, before)
	}
	if st := line.Stats().C2S; st.In != 1 || st.Out != 0 {
		t.Errorf("counters %+v; want the one datagram in and none out", st)
	}
}
