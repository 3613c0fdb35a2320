package scripted_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/scripted"
)

// inNamespace runs the test again, alone, in a private network namespace,
// and reports whether this is that run.
func inNamespace(t *testing.T) bool {
	t.Helper()
	return testenv.InNamespace(t, time.Minute)
}

// RFC 9293 3.7.1 and 3.5, RFC 7323 2.2 and 3.2, RFC 2018 2: the kernel as
// the server answers a SYN with MSS, window scale, SACK-permitted and
// timestamps with a SYN/ACK that carries all four, echoes the script's
// TSval, and sends at most the script's MSS less the timestamps' 12 bytes.
func TestHandshakeServerOptions(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	ln := listen(t, p)
	conn := p.Dial(serverPort)
	conn.Send(t, scripted.TCP{Flags: scripted.SYN, Options: synOptions()})
	synack := conn.Expect(t, scripted.TCP{
		Flags: scripted.SYN | scripted.ACK, Seq: scripted.Uint32(0), Ack: scripted.Uint32(1),
		Options: scripted.Options{MSS: scripted.Uint16(1460), SACKPermitted: true, TSEcr: scripted.Uint32(1000), Present: scripted.OptWindowScale},
	}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	c := accept(t, ln)
	info := tcpInfo(t, c)
	if info.Snd_mss != 1400-12 {
		t.Errorf("the kernel's send MSS is %d, want the script's 1400 less 12 bytes of timestamps", info.Snd_mss)
	}
	// TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK and TCPI_OPT_WSCALE of
	// linux/tcp.h.
	const want = 1 | 2 | 4
	if info.Options&want != want {
		t.Errorf("TCP_INFO options %#x, want SACK, timestamps and window scale (%#x)", info.Options, want)
	}
	t.Logf("SYN/ACK: window %d, options %+v", synack.Window, synack.Options)
}

// RFC 7323 2.2 and 3.2, RFC 2018 2, RFC 9293 3.7.1: a SYN without options
// gets a SYN/ACK without window scale, SACK-permitted or timestamps (each
// may be sent only in answer to the same option), and the kernel sends at
// most the default MSS of 536 bytes.
func TestHandshakeServerNoOptions(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	ln := listen(t, p)
	conn := p.Dial(serverPort)
	conn.Send(t, scripted.TCP{Flags: scripted.SYN})
	conn.Expect(t, scripted.TCP{
		Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1),
		Options: scripted.Options{Present: scripted.OptMSS, Absent: scripted.OptWindowScale | scripted.OptSACKPermitted | scripted.OptTimestamps},
	}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	c := accept(t, ln)
	if info := tcpInfo(t, c); info.Snd_mss != 536 {
		t.Errorf("the kernel's send MSS is %d, want the default 536", info.Snd_mss)
	}
}

// RFC 9293 3.5 (figure 6): the kernel as the client. Its SYN carries its
// options; the script's SYN/ACK completes the handshake, the kernel's ACK
// acknowledges the script's SYN, and connect returns; then the kernel's
// data comes with seq 1.
func TestHandshakeClient(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	for _, veth := range []bool{false, true} {
		t.Run(map[bool]string{false: "tun", true: "veth"}[veth], func(t *testing.T) { handshakeClient(t, veth) })
	}
}

// handshakeClient is TestHandshakeClient's script, on a peer behind a TUN
// device or a veth pair.
func handshakeClient(t *testing.T, veth bool) {
	p := startWith(t, scripted.Config{Veth: veth})
	if got, want := p.LinkHeaderLen(), map[bool]int{false: 0, true: 14}[veth]; got != want {
		t.Errorf("link header %d bytes, want %d", got, want)
	}
	conn := p.Listen(80)
	type dialed struct {
		c   *net.TCPConn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		d := net.Dialer{Timeout: 2 * time.Second}
		c, err := d.Dial("tcp4", conn.AddrPort().String())
		tc, _ := c.(*net.TCPConn)
		done <- dialed{tc, err}
	}()
	conn.Expect(t, scripted.TCP{
		Flags: scripted.SYN, Seq: scripted.Uint32(0), Len: scripted.Int(0),
		Options: scripted.Options{MSS: scripted.Uint16(1460), Present: scripted.OptWindowScale | scripted.OptSACKPermitted | scripted.OptTimestamps},
	}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Options: synOptions()})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(1), Ack: scripted.Uint32(1), Options: scripted.Options{TSEcr: scripted.Uint32(1000)}}, time.Second)
	d := <-done
	if d.err != nil {
		t.Fatalf("connect: %v", d.err)
	}
	t.Cleanup(func() { d.c.Close() })
	write(t, d.c, "hello")
	conn.Expect(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Ack: scripted.Uint32(1), Payload: []byte("hello")}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	if conn.NextAck() != 6 {
		t.Errorf("the script's next ack is %d after 5 bytes, want 6", conn.NextAck())
	}
}

// RFC 5961 3.2 (and RFC 9293 3.10.7.4, second check): a RST whose
// sequence number is in the window but not RCV.NXT does not reset the
// connection; the kernel answers with a challenge ACK whose ack is
// RCV.NXT, and the connection carries data afterwards.
func TestRSTInWindowGetsChallengeACK(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	conn.Send(t, scripted.TCP{Flags: scripted.RST, Seq: scripted.Uint32(conn.NextSeq() + 1000)})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(conn.NextAck()), Ack: scripted.Uint32(conn.NextSeq()), Len: scripted.Int(0)}, time.Second)
	write(t, c, "still here")
	conn.Expect(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Payload: []byte("still here")}, time.Second)
}

// RFC 9293 3.10.7.4 (second check) and RFC 5961 3.2: a RST at exactly
// RCV.NXT resets the connection: the kernel answers nothing and the
// application's read fails with ECONNRESET.
func TestExactRSTResets(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	conn.Send(t, scripted.TCP{Flags: scripted.RST, Seq: scripted.Uint32(conn.NextSeq())})
	conn.ExpectNone(t, 100*time.Millisecond)
	if _, err := readFor(c, time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after the RST: %v, want ECONNRESET", err)
	}
}

// RFC 5961 4.2 and RFC 9293 3.10.7.4 (fourth check): a SYN on an
// established connection gets a challenge ACK, with ack RCV.NXT, and does
// not reset the connection.
func TestSYNOnEstablishedGetsChallengeACK(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	conn.Send(t, scripted.TCP{Flags: scripted.SYN, Seq: scripted.Uint32(conn.NextSeq() + 5000)})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(conn.NextAck()), Ack: scripted.Uint32(conn.NextSeq()), Len: scripted.Int(0)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Payload: []byte("ping")})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(conn.NextSeq())}, time.Second)
	if got, err := readFor(c, time.Second); got != "ping" {
		t.Errorf("read after the SYN: %q, %v; want ping: the connection lives on", got, err)
	}
}

// RFC 9293 3.10.7.4 (first check): a segment outside the receive window is
// dropped and answered by an ACK of RCV.NXT; the application never reads
// its bytes, only those of the next segment in the window.
func TestOutOfWindowGetsACK(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	rcvNxt := conn.NextSeq()
	conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(rcvNxt + 1<<30), Payload: []byte("outside")})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(rcvNxt), Len: scripted.Int(0)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Payload: []byte("inside")})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(rcvNxt + 6)}, time.Second)
	if got, err := readFor(c, time.Second); got != "inside" {
		t.Errorf("read: %q, %v; want only the segment in the window", got, err)
	}
}

// RFC 9293 3.6.1 and RFC 1122 4.2.2.13: once the application has closed
// (its FIN sent, nothing more to read), new data from the peer is answered
// by a RST, at the sequence number the data acknowledges.
func TestDataAfterCloseGetsRST(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	conn.Expect(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(1), Ack: scripted.Uint32(1)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Payload: []byte("late")})
	conn.Expect(t, scripted.TCP{Flags: scripted.RST, Seq: scripted.Uint32(2), Len: scripted.Int(0)}, time.Second)
}

// RFC 6298 5.4 and 5.5: unacknowledged data is retransmitted when the
// timer expires, after RTO, and the timer backs off: the second
// retransmission comes twice the RTO after the first. No SACK, so no tail
// loss probe comes first.
func TestRetransmissionBackoff(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1460)}, scripted.DefaultWindow)
	write(t, c, "hello")
	data := scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Payload: []byte("hello")}
	first := conn.Expect(t, data, time.Second)
	rto := time.Duration(tcpInfo(t, c).Rto) * time.Microsecond
	if rto < 200*time.Millisecond || rto > time.Second {
		t.Fatalf("the kernel's RTO is %v, want the minimum 200 ms plus a loopback RTT", rto)
	}
	r1 := conn.ExpectAfter(t, data, rto)
	r2 := conn.ExpectAfter(t, data, 2*rto)
	gap1, gap2 := r1.At.Sub(first.At), r2.At.Sub(r1.At)
	t.Logf("RTO %v; retransmissions after %v, then %v (ratio %.2f)", rto, gap1, gap2, float64(gap2)/float64(gap1))
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	conn.ExpectNone(t, 2*rto+100*time.Millisecond)
}

// RFC 9293 3.8.6.1: with the script's window shut, the kernel probes it;
// Linux's probe is a segment with no data one below SND.UNA, and its
// interval backs off (twice, then four times the first). Opening the
// window lets the data go.
func TestZeroWindowProbes(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{}, 0)
	write(t, c, "hello")
	probe := scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(conn.NextAck() - 1), Len: scripted.Int(0)}
	p1 := conn.Expect(t, probe, time.Second)
	rto := time.Duration(tcpInfo(t, c).Rto) * time.Microsecond
	p2 := conn.ExpectAfter(t, probe, 2*rto)
	p3 := conn.ExpectAfter(t, probe, 4*rto)
	t.Logf("RTO %v; probes %v, then %v apart", rto, p2.At.Sub(p1.At), p3.At.Sub(p2.At))
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	conn.Expect(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Payload: []byte("hello")}, time.Second)
}

// RFC 2018 4 (and RFC 9293 3.10.7.4, out-of-order data): data past a hole
// is kept and acknowledged at once with ack RCV.NXT and a SACK block
// saying what came; the segment that fills the hole is acknowledged up to
// the end of both, and the application reads the bytes in order.
func TestOutOfOrderGetsSACK(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p := start(t)
	conn, c := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1460), SACKPermitted: true}, scripted.DefaultWindow)
	hole := conn.NextSeq()
	conn.Send(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(hole + 5), Payload: []byte("world")})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(hole), Len: scripted.Int(0),
		Options: scripted.Options{SACK: []scripted.SACKBlock{{Left: hole + 5, Right: hole + 10}}}}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK, Payload: []byte("hello")})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(hole + 10), Options: scripted.Options{Absent: scripted.OptSACK}}, time.Second)
	if conn.NextSeq() != hole+10 {
		t.Errorf("the script's next seq is %d after the kernel acknowledged %d", conn.NextSeq(), hole+10)
	}
	var got []byte
	for len(got) < 10 {
		s, err := readFor(c, time.Second)
		if err != nil {
			t.Fatalf("read: %q, %v", got, err)
		}
		got = append(got, s...)
	}
	if string(got) != "helloworld" {
		t.Errorf("read %q, want helloworld", got)
	}
}
