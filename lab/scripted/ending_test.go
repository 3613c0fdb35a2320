package scripted_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/scripted"
)

// The two endings no pair of well-behaved peers makes on demand: a lost
// last ACK and a FIN that reaches TIME_WAIT. The script leaves out or
// repeats a segment, the kernel answers as RFC 9293 says, and the capture
// of it tells the ending in capture.Ending's words, as every tcplab
// command does.

// openRecorded opens a scripted peer that records to a pcapng file, and
// returns the peer and a function that closes both and returns the file's
// path.
func openRecorded(t *testing.T) (*scripted.Peer, func() string) {
	t.Helper()
	return openRecordedWith(t, scripted.Config{})
}

// openRecordedWith is openRecorded of a peer with cfg (its Pcap set
// here).
func openRecordedWith(t *testing.T, cfg scripted.Config) (*scripted.Peer, func() string) {
	t.Helper()
	needTUN(t)
	path := filepath.Join(t.TempDir(), strings.ReplaceAll(t.Name(), "/", "_")+".pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pcap = f
	p, err := scripted.Open(measured(t, cfg))
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	closed := false
	done := func() string {
		if !closed {
			closed = true
			if err := p.Close(); err != nil {
				t.Errorf("close peer: %v", err)
			}
			if err := f.Close(); err != nil {
				t.Errorf("close pcapng: %v", err)
			}
		}
		return path
	}
	t.Cleanup(func() { done() })
	return p, done
}

// endingOf annotates the capture at path and returns its one connection's
// summary and its segments' annotations.
func endingOf(t *testing.T, path string) (capture.ConnSummary, []capture.Packet) {
	t.Helper()
	f, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := capture.NewAnnotator()
	var pkts []capture.Packet
	if _, err := capture.Walk(f, a, func(p *capture.Packet) error {
		if p.TCP {
			pkts = append(pkts, p.Keep())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	conns := a.Conns()
	if len(conns) != 1 {
		t.Fatalf("%d connections in the capture, want 1", len(conns))
	}
	return conns[0], pkts
}

// RFC 9293 3.6 (figure 12) and 3.10.7.4 (LAST-ACK): the script closes
// first and never acknowledges the kernel's FIN, so the kernel, in
// LAST_ACK, sends its FIN again when its retransmission timer fires; the
// script's ACK of the second then closes it.
func TestLostLastACK(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p, done := openRecorded(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	conn.Send(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK})
	// The kernel's socket reads the end of the stream, and its
	// application closes: its FIN, with the ACK of the script's FIN on it
	// or after an ACK of its own.
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after the script's FIN: %d, %v; want EOF", n, err)
	}
	c.Close()
	got := conn.Expect(t, scripted.TCP{Ack: scripted.Uint32(2), Seq: scripted.Uint32(1)}, time.Second)
	if got.Flags&scripted.FIN == 0 {
		conn.Expect(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(1), Ack: scripted.Uint32(2)}, time.Second)
	}
	// No ACK from the script: the FIN again, after the kernel's RTO
	// (200 ms at least on Linux).
	start := time.Now()
	conn.Expect(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(1), Ack: scripted.Uint32(2)}, 3*time.Second)
	if gap := time.Since(start); gap < 150*time.Millisecond {
		t.Errorf("the FIN came again %v later, sooner than any retransmission timeout", gap)
	}
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	conn.ExpectNone(t, 300*time.Millisecond)

	sum, pkts := endingOf(t, done())
	e := &sum.Ending
	if want := "the client closed first (FIN frame"; !strings.Contains(e.String(), want) || !e.Complete() {
		t.Errorf("ending %q, want it to say %q and both FINs acknowledged", e, want)
	}
	var resent int
	for i := range pkts {
		if pkts[i].Segment.Flags&capture.FIN != 0 && pkts[i].Annotation.Dir == capture.ServerToClient && pkts[i].Annotation.Labels.Has(capture.Retransmission) {
			resent++
		}
	}
	if resent != 1 {
		t.Errorf("%d of the server's FINs labelled retransmission, want 1", resent)
	}
	if sum.ServerState != capture.Closed {
		t.Errorf("the server ends in %v, want CLOSED after the last ACK", sum.ServerState)
	}
}

// RFC 9293 3.10.7.4 (TIME-WAIT): "The only thing that can arrive in this
// state is a retransmission of the remote FIN. Acknowledge it, and
// restart the 2 MSL timeout." The kernel's server closes first; the
// script acknowledges and closes too, the kernel's ACK of that takes it to
// TIME_WAIT; the script's FIN comes again, and the kernel acknowledges it.
// (The passive closer would not do so: after LAST_ACK it is CLOSED, and a
// FIN to a closed connection gets a RST.)
func TestTimeWaitAnswersLateFIN(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p, done := openRecorded(t)
	conn, c := handshake(t, p, scripted.Options{}, scripted.DefaultWindow)
	c.Close()
	conn.Expect(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(1), Ack: scripted.Uint32(1)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK}) // the kernel: FIN_WAIT_2
	conn.Send(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(2), Ack: scripted.Uint32(2), Len: scripted.Int(0)}, time.Second) // TIME_WAIT
	// The script's FIN again, as if the kernel's ACK had not come.
	conn.Send(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(1)})
	conn.Expect(t, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(2), Ack: scripted.Uint32(2), Len: scripted.Int(0)}, time.Second)

	sum, pkts := endingOf(t, done())
	e := &sum.Ending
	if want := "the server closed first (FIN frame"; !strings.Contains(e.String(), want) || !e.Complete() {
		t.Errorf("ending %q, want it to say %q and both FINs acknowledged", e, want)
	}
	last := pkts[len(pkts)-1]
	if last.Annotation.Dir != capture.ServerToClient || last.Annotation.Server != capture.TimeWait {
		t.Errorf("the last segment: %v, server %v; want the kernel's ACK from TIME_WAIT", last.Annotation.Dir, last.Annotation.Server)
	}
	if late := pkts[len(pkts)-2]; !late.Annotation.Labels.Has(capture.Retransmission) {
		t.Errorf("the late FIN is not labelled a retransmission: %v", late.Annotation.Labels)
	}
}
