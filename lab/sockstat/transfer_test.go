package sockstat

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBulk: the client writes 4 MiB at once, which wait in its send
// queue; the server reads them in reads of up to 1 MiB and samples after
// each. The send queue drains to zero, every byte is acknowledged
// (bytes_acked counts the SYN too), slow start has grown the congestion
// window past its initial 10 segments, and both ends have measured an
// RTT. (With 1 MiB the window only reaches 17 to 20 segments; with small
// reads the receiver's window, not cwnd, limits the sender and cwnd stays
// at 10.)
func TestBulk(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	const size = 4 << 20
	ln := listen(t, "tcp4", "127.0.0.1:0")
	c := dial(t, ln, "tcp4", ln.Addr().String())
	// Slow start as textbooks tell it is cubic's (and reno's); BBR, the
	// default of some kernels, sizes its window from its model instead.
	cong := setCongestion(t, c.client, "cubic")
	s := newSampler(t, Config{})
	f := Filter{Tuples: []Tuple{{c.c, c.s}}}

	written := make(chan error, 1)
	go func() {
		_, err := c.client.Write(make([]byte, size))
		written <- err
	}()
	until(t, s, f, "bytes in the client's send queue", func(socks []Socket) bool {
		cl, _ := find(socks, c.c, c.s)
		return cl.SendQ > 0
	})

	var sendQ []uint32
	buf := make([]byte, 1<<20)
	c.server.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got := 0; got < size; {
		n, err := c.server.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		got += n
		socks, err := s.Sample(f)
		if err != nil {
			t.Fatal(err)
		}
		cl, _ := find(socks, c.c, c.s)
		sendQ = append(sendQ, cl.SendQ)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	socks := until(t, s, f, "everything acknowledged", func(socks []Socket) bool {
		cl, _ := find(socks, c.c, c.s)
		return cl.Info != nil && cl.SendQ == 0 && cl.Info.Unacked == 0
	})
	t.Logf("client send queue after each read: %v", sendQ)
	if len(sendQ) < 2 || sendQ[0] == 0 || sendQ[len(sendQ)-1] > sendQ[0] {
		t.Errorf("send queue %v: does not drain", sendQ)
	}
	cl, _ := find(socks, c.c, c.s)
	sv, _ := find(socks, c.s, c.c)
	for _, end := range []struct {
		name string
		s    Socket
	}{{"client", cl}, {"server", sv}} {
		if end.s.State != Established || end.s.Info == nil || end.s.Info.State != Established {
			t.Fatalf("%s: %+v, want ESTABLISHED with tcp_info", end.name, end.s)
		}
		if end.s.Info.RTT <= 0 {
			t.Errorf("%s: rtt %v, want > 0", end.name, end.s.Info.RTT)
		}
		if end.s.Cong == "" {
			t.Errorf("%s: no congestion control algorithm", end.name)
		}
		if end.name == "client" && end.s.Cong != cong {
			t.Errorf("client: congestion control %q, want %q", end.s.Cong, cong)
		}
	}
	i := cl.Info
	t.Logf("client: cwnd %d, ssthresh %d, rtt %v, rttvar %v, rto %v, mss %d, bytes_acked %d, bytes_sent %d, segs_out %d, cong %s, tcp_info %d bytes",
		i.SndCwnd, i.SndSsthresh, i.RTT, i.RTTVar, i.RTO, i.SndMSS, i.BytesAcked, i.BytesSent, i.SegsOut, cl.Cong, i.Len)
	t.Logf("server: bytes_received %d, rcv_space %d, rtt %v", sv.Info.BytesReceived, sv.Info.RcvSpace, sv.Info.RTT)
	if i.SndCwnd <= 10 {
		t.Errorf("client cwnd %d, want > 10 after slow start", i.SndCwnd)
	}
	if i.BytesAcked < size || i.BytesAcked > size+1 {
		t.Errorf("client bytes_acked %d, want %d (+1 for the SYN)", i.BytesAcked, size)
	}
	if sv.Info.BytesReceived != size {
		t.Errorf("server bytes_received %d, want %d", sv.Info.BytesReceived, size)
	}
	if d := Diff(Socket{}, cl).Text(0); d == "" {
		t.Error("Diff of a socket from nothing is empty")
	} else {
		t.Logf("the client from nothing: %s", d)
	}
}

// setCongestion sets the congestion control algorithm of c to name
// (TCP_CONGESTION) and returns it, or the algorithm c keeps if the kernel
// lacks name.
func setCongestion(tb testing.TB, c *net.TCPConn, name string) string {
	tb.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var got string
	var serr error
	err = raw.Control(func(fd uintptr) {
		if serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, name); serr != nil {
			tb.Logf("cannot use %s: %v", name, serr)
		}
		got, serr = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		tb.Fatalf("TCP_CONGESTION: %v", err)
	}
	return got
}

// TestReceiverNotReading: the server never reads. The client writes until
// a write blocks: the server's receive queue and the client's send queue
// fill, the server advertises a zero window, and the client's persist
// timer probes it.
func TestReceiverNotReading(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	ln := listen(t, "tcp4", "127.0.0.1:0")
	c := dial(t, ln, "tcp4", ln.Addr().String())
	s := newSampler(t, Config{})
	f := Filter{Tuples: []Tuple{{c.c, c.s}}}

	chunk := make([]byte, 64<<10)
	written := 0
	for i := 0; ; i++ {
		if i == 2000 {
			t.Fatalf("wrote %d bytes and no write blocked", written)
		}
		c.client.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.client.Write(chunk)
		written += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil && !errors.Is(err, io.ErrShortWrite) {
			t.Fatal(err)
		}
	}
	// The two sockets of one sample are read one after the other, and a
	// window update may move bytes between them in the meantime: wait for
	// a sample in which every byte written is in one of the queues.
	socks := until(t, s, f, "a zero window probed, all bytes queued", func(socks []Socket) bool {
		cl, _ := find(socks, c.c, c.s)
		sv, _ := find(socks, c.s, c.c)
		return cl.Timer == TimerPersist && cl.Info != nil && cl.Info.SndWnd == 0 &&
			int(sv.RecvQ)+int(cl.SendQ) == written
	})
	cl, _ := find(socks, c.c, c.s)
	sv, _ := find(socks, c.s, c.c)
	t.Logf("wrote %d bytes; server recv_q %d, rcv_wnd %d; client send_q %d, snd_wnd %d, timer %v (%v, %d probes), unacked %d",
		written, sv.RecvQ, sv.Info.RcvWnd, cl.SendQ, cl.Info.SndWnd, cl.Timer, cl.TimerExpires, cl.TimerRetrans, cl.Info.Unacked)
	if sv.RecvQ == 0 || cl.SendQ == 0 {
		t.Errorf("server recv_q %d, client send_q %d: want both > 0", sv.RecvQ, cl.SendQ)
	}
	if d := Diff(Socket{}, cl).Text(0); d != "" {
		t.Logf("client: %s", d)
	}
}
