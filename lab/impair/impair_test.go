package impair_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/capture/live"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/impair"
)

// The live tests change the firewall of their network namespace, so each
// runs again, alone, in a fresh namespace: inNamespace re-executes the test
// binary there with -test.run naming the test, and the run inside does the
// work.
func TestMain(m *testing.M) { testenv.Main(m) }

// inNamespace runs the test again, alone, in a private network namespace
// (testenv.InNamespace), and reports whether this is that run.
func inNamespace(t *testing.T) bool {
	t.Helper()
	return testenv.InNamespace(t, 2*time.Minute)
}

// install installs rules and removes them when the test ends.
func install(t *testing.T, rules ...impair.Rule) *impair.Installed {
	t.Helper()
	in, err := impair.Install(rules...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Remove(); err != nil {
			t.Error(err)
		}
	})
	return in
}

// listen opens a listener on a free port of lo and returns it and the port.
func listen(t *testing.T) (net.Listener, uint16) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port)
}

func stats(t *testing.T, in *impair.Installed) []impair.Stats {
	t.Helper()
	s, err := in.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDropFirstSYN: the first connect waits for the SYN's retransmission
// timeout (1 s on Linux), the next one does not wait at all.
func TestDropFirstSYN(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	ln, port := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	in := install(t, impair.DropFirstSYN(port))
	for i, want := range []struct{ min, max time.Duration }{
		{900 * time.Millisecond, 2500 * time.Millisecond}, // the initial RTO
		{0, 500 * time.Millisecond},                       // loopback: microseconds
	} {
		start := time.Now()
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("connect %d: %v", i+1, err)
		}
		c.Close()
		if took < want.min || took > want.max {
			t.Errorf("connect %d took %v, want %v to %v", i+1, took, want.min, want.max)
		}
	}
	// Three SYNs reached the rule: the dropped one, its retransmission and
	// the second connection's.
	if got, want := stats(t, in), []impair.Stats{{Matched: 3, Dropped: 1}}; got[0] != want[0] {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// TestDropFirstFIN: the server reads EOF only after the client's FIN is
// retransmitted (Linux's minimum RTO is 200 ms); data before it and the
// FIN of the next connection pass at once.
func TestDropFirstFIN(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	ln, port := listen(t)
	took := make(chan time.Duration, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Errorf("read data: %v", err)
			}
			start := time.Now()
			if _, err := c.Read(buf); err != io.EOF {
				t.Errorf("read after the data: %v, want EOF", err)
			}
			took <- time.Since(start)
			c.Close()
		}
	}()
	in := install(t, impair.DropFirstFIN(port))
	for i, want := range []struct{ min, max time.Duration }{
		{180 * time.Millisecond, 3 * time.Second}, // the FIN's retransmission timeout
		{0, 150 * time.Millisecond},               // loopback: microseconds
	} {
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("connect %d: %v", i+1, err)
		}
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if d := <-took; d < want.min || d > want.max {
			t.Errorf("connection %d: EOF after %v, want %v to %v", i+1, d, want.min, want.max)
		}
	}
	// Three FINs reached the rule: the dropped one, its retransmission and
	// the second connection's.
	if got, want := stats(t, in), []impair.Stats{{Matched: 3, Dropped: 1}}; got[0] != want[0] {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// TestDropNth sends chunks one at a time, each waiting for the server's
// reply, and drops the third: the capture on lo still shows it, the client
// retransmits it once after its timer fires, and nothing else is lost.
func TestDropNth(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	const chunks, size, lost = 5, 100, 3
	ln, port := listen(t)
	in := install(t, impair.DropNth(port, lost))
	lc, err := live.Open(live.Config{Filter: fmt.Sprintf("tcp dst port %d", port)})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	dec, err := capture.NewDecoder(lc.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		seqs    []uint32 // seq of each captured data segment to the server
		capErr  error
		srvErr  error
		payload bytes.Buffer
	)
	wg.Add(2)
	go func() { // the capture, until the client's FIN
		defer wg.Done()
		var seg capture.Segment
		for {
			data, _, err := lc.ReadPacketData()
			if errors.Is(err, capture.ErrTimeout) {
				continue
			}
			if err != nil {
				capErr = err
				return
			}
			if !dec.Decode(data, &seg) {
				continue
			}
			if seg.Len > 0 {
				seqs = append(seqs, seg.Seq)
			}
			if seg.Flags.Has(capture.FIN) {
				return
			}
		}
	}()
	go func() { // the server: one byte back for every chunk
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			srvErr = err
			return
		}
		defer c.Close()
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				if !errors.Is(err, io.EOF) {
					srvErr = err
				}
				return
			}
			payload.Write(buf)
			if _, err := c.Write([]byte{'k'}); err != nil {
				srvErr = err
				return
			}
		}
	}()

	c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var want bytes.Buffer
	took := make([]time.Duration, chunks)
	for i := range chunks {
		chunk := bytes.Repeat([]byte{byte('a' + i)}, size)
		want.Write(chunk)
		start := time.Now()
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("reply to chunk %d: %v", i+1, err)
		}
		took[i] = time.Since(start)
	}
	info, err := tcpInfo(c.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	wg.Wait()
	if capErr != nil || srvErr != nil {
		t.Fatalf("capture: %v; server: %v", capErr, srvErr)
	}

	if !bytes.Equal(payload.Bytes(), want.Bytes()) {
		t.Errorf("the server read %q, want %q", payload.Bytes(), want.Bytes())
	}
	if info.Total_retrans != 1 {
		t.Errorf("tcpi_total_retrans = %d, want 1", info.Total_retrans)
	}
	// Only the lost chunk waited for a timer: the others came back in
	// microseconds.
	slowest := 0
	for i := range took {
		if took[i] > took[slowest] {
			slowest = i
		}
	}
	if slowest != lost-1 || took[slowest] < 100*time.Millisecond {
		t.Errorf("round trips %v: want chunk %d the slowest, by a retransmission timer", took, lost)
	}
	// Every data segment reached the rule, the retransmission too, and
	// nothing else did (not the SYN, the ACKs or the FIN).
	if got, want := stats(t, in)[0], (impair.Stats{Matched: chunks + 1, Dropped: 1}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	// The capture saw the dropped segment: the lost chunk's seq twice.
	if len(seqs) != chunks+1 {
		t.Fatalf("captured %d data segments to the server, want %d (the lost one, then its retransmission)", len(seqs), chunks+1)
	}
	count := map[uint32]int{}
	for _, s := range seqs {
		count[s]++
	}
	first := seqs[0]
	for i := range chunks {
		seq := first + uint32(i*size)
		want := 1
		if i == lost-1 {
			want = 2
		}
		if count[seq] != want {
			t.Errorf("chunk %d (seq %d) captured %d times, want %d", i+1, seq, count[seq], want)
		}
	}
}

func tcpInfo(c *net.TCPConn) (*unix.TCPInfo, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		info *unix.TCPInfo
		ierr error
	)
	if err := raw.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return nil, err
	}
	if ierr != nil {
		return nil, fmt.Errorf("getsockopt TCP_INFO: %w", ierr)
	}
	return info, nil
}

// TestDropFraction drops 10% of the data segments at random while many
// connections each send one request and wait for the reply: every request
// arrives, and about 10% of the segments were dropped. (One stream of small
// writes would not do: after the first losses its writes merge into a few
// large segments.)
func TestDropFraction(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	const conns, size, percent = 200, 100, 10
	ln, port := listen(t)
	in := install(t, impair.DropFraction(port, percent))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := io.ReadFull(c, make([]byte, size)); err == nil {
					c.Write([]byte{'k'})
				}
			}()
		}
	}()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, 50)
	for range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := func() error {
				c, err := net.DialTimeout("tcp4", ln.Addr().String(), 10*time.Second)
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Write(bytes.Repeat([]byte{'a'}, size)); err != nil {
					return err
				}
				_, err = io.ReadFull(c, make([]byte, 1))
				return err
			}()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%d of %d requests failed: %v", len(errs), conns, err)
	}
	s := stats(t, in)[0]
	// Each request is one segment, plus its retransmissions. With over 200
	// segments, a share outside 2%..25% would be a 4-sigma accident
	// (binomial, p = 0.1).
	share := float64(s.Dropped) / float64(s.Matched)
	if s.Matched < conns || share < 0.02 || share > 0.25 {
		t.Errorf("stats %+v: dropped %.1f%%, want about %d%% of at least %d segments", s, 100*share, percent, conns)
	}
	t.Logf("stats %+v: dropped %.1f%%", s, 100*share)
}

// TestRemove: a second Install fails while the table exists, and Remove
// deletes it.
func TestRemove(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	in, err := impair.Install(impair.DropFirstSYN(8000))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := impair.Install(impair.DropNth(8000, 1)); !errors.Is(err, impair.ErrInstalled) {
		t.Errorf("second Install: %v, want ErrInstalled", err)
	}
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ListTableOfFamily(impair.TableName, nftables.TableFamilyINet); err != nil {
		t.Fatalf("table after Install: %v", err)
	}
	if err := in.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ListTableOfFamily(impair.TableName, nftables.TableFamilyINet); err == nil {
		t.Fatal("table still there after Remove")
	}
	in, err = impair.Install(impair.DropNth(8000, 1))
	if err != nil {
		t.Fatalf("Install after Remove: %v", err)
	}
	if err := in.Remove(); err != nil {
		t.Fatal(err)
	}
}

// TestInvalidRules are refused before the kernel is asked, so this test
// needs no namespace.
func TestInvalidRules(t *testing.T) {
	tests := []struct {
		name string
		rule impair.Rule
		want string
	}{
		{"port 0", impair.DropNth(0, 1), "port 0"},
		{"count from 1", impair.DropNth(8000, 0), "counts start at 1"},
		{"no count", impair.Rule{Port: 8000, Kind: impair.Data}, "percent 0 outside"},
		{"percent", impair.DropFraction(8000, 101), "percent 101 outside"},
		{"both", impair.Rule{Port: 8000, Kind: impair.Data, Nth: []int{1}, Percent: 5}, "both Nth and Percent"},
		{"kind", impair.Rule{Port: 8000, Nth: []int{1}}, "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := impair.Install(tt.rule)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Install(%+v) = %v, want an error with %q", tt.rule, err, tt.want)
			}
		})
	}
	if _, err := impair.Install(); err == nil {
		t.Error("Install() with no rules succeeded")
	}
}

func TestRuleString(t *testing.T) {
	tests := []struct {
		rule impair.Rule
		want string
	}{
		{impair.DropNth(8000, 5), "drop data segment #5 to port 8000"},
		{impair.DropNth(8000, 5, 9), "drop data segments #5, #9 to port 8000"},
		{impair.DropFraction(8000, 10), "drop 10% of data segments to port 8000"},
		{impair.DropFirstSYN(8000), "drop SYN #1 to port 8000"},
		{impair.DropFirstFIN(8000), "drop FIN #1 to port 8000"},
	}
	for _, tt := range tests {
		if got := tt.rule.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.rule, got, tt.want)
		}
	}
}
