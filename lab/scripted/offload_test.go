package scripted_test

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/scripted"
)

// A write of five MSS after a handshake with MSS 1000: a device with
// Offload (packetdrill's tun0) takes the kernel's TSO segment whole, one
// segment of 5000 bytes; a plain one gets it cut at the MSS. Aggregate
// lets one expectation take the pieces, as packetdrill does without
// --strict_segments. The kernel's segment size is pinned with
// tcp_min_tso_segs (the namespace's own), so that its TSO autosizing,
// which follows the handshake's RTT, does not decide.
func TestOffload(t *testing.T) {
	tests := []struct {
		name string
		cfg  scripted.Config
		len  int // the expectation's length
		// fail is the report's row of the length, got and want, when
		// the expectation must fail; "" passes.
		fail string
		// frames is how many data segments the kernel's write makes in
		// the capture.
		frames int
	}{
		{name: "offload: one segment of five MSS", cfg: scripted.Config{Offload: true}, len: 5000, frames: 1},
		{name: "offload: a piece of one MSS fails", cfg: scripted.Config{Offload: true}, len: 1000, fail: "len 5000 1000", frames: 1},
		{name: "offload, aggregate: a longer segment still fails", cfg: scripted.Config{Offload: true, Aggregate: true}, len: 1000, fail: "len 5000 1000", frames: 1},
		{name: "plain device: cut at the MSS", cfg: scripted.Config{}, len: 1000, frames: 5},
		{name: "plain device: one segment of five MSS fails", cfg: scripted.Config{}, len: 5000, fail: "len 1000 5000", frames: 5},
		{name: "plain device, aggregate: the pieces make one", cfg: scripted.Config{Aggregate: true}, len: 5000, frames: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case in a namespace of its own: no connection of
			// another's on the same ports.
			if !inNamespace(t) {
				return
			}
			pinTSO(t)
			p, done := openRecordedWith(t, tt.cfg)
			conn, c := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1000)}, 65535)
			if _, err := c.Write(make([]byte, 5000)); err != nil {
				t.Fatal(err)
			}
			want := scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(1), Len: scripted.Int(tt.len)}
			if tt.len == 5000 {
				want.Flags |= scripted.PSH
			}
			msg := failure(func(ft scripted.TB) { conn.Expect(ft, want, time.Second) })
			switch {
			case tt.fail == "" && msg != "":
				t.Fatalf("expectation failed: %s", msg)
			case tt.fail != "" && !hasRow(msg, tt.fail):
				t.Fatalf("expectation's report %q; want it to fail with %q", msg, tt.fail)
			}
			if tt.fail == "" && conn.NextAck() != 1+uint32(tt.len) {
				t.Errorf("the script's next ack is %d, want %d", conn.NextAck(), 1+tt.len)
			}
			// Every frame reaches the tap before the peer closes.
			time.Sleep(50 * time.Millisecond)
			frames, bad := kernelData(t, done(), p)
			if frames != tt.frames {
				t.Errorf("the capture holds %d data segments of the kernel, want %d", frames, tt.frames)
			}
			if bad > 0 {
				t.Errorf("%d frames of the kernel with a wrong TCP checksum in the capture", bad)
			}
		})
	}
}

// pinTSO makes the namespace's TCP send five MSS in one TSO segment
// whatever the RTT: tcp_min_tso_segs 10, and reno, which leaves it be
// (BBR, a host's default, sets its own), as any namespace may choose.
func pinTSO(t *testing.T) {
	t.Helper()
	for name, v := range map[string]string{"tcp_congestion_control": "reno", "tcp_min_tso_segs": "10"} {
		if err := os.WriteFile("/proc/sys/net/ipv4/"+name, []byte(v), 0); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestChecksumOffload: with Offload the kernel leaves its TCP checksums
// to the device (CHECKSUM_PARTIAL); the peer completes them, so that
// every frame of the kernel in the capture, the handshake's and a large
// segment's, has a right checksum, and the script does not reject them.
func TestChecksumOffload(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	p, done := openRecordedWith(t, scripted.Config{Offload: true})
	conn, c := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1460)}, 65535)
	if _, err := c.Write(make([]byte, 2*1460+7)); err != nil {
		t.Fatal(err)
	}
	conn.Expect(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Len: scripted.Int(2*1460 + 7)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK})
	c.Close()
	conn.Expect(t, scripted.TCP{Flags: scripted.FIN | scripted.ACK}, time.Second)
	time.Sleep(50 * time.Millisecond)
	path := done()
	n, bad := 0, 0
	eachKernelFrame(t, path, p, func(data []byte, seg *capture.Segment) {
		n++
		if !scripted.ChecksumOK(data) {
			bad++
		}
	})
	if n < 3 || bad > 0 {
		t.Errorf("%d frames of the kernel, %d with a wrong TCP checksum; want 3 or more, none wrong", n, bad)
	}
}

// TestQueue: with Queue a send goes while a segment of the kernel waits
// that no expectation took, and the next expectation takes it, as
// packetdrill leaves the kernel's packets for its next outbound line;
// without, the send fails on it.
func TestQueue(t *testing.T) {
	for _, queue := range []bool{true, false} {
		t.Run(map[bool]string{true: "queue", false: "default"}[queue], func(t *testing.T) {
			if !inNamespace(t) {
				return
			}
			p, _ := openRecordedWith(t, scripted.Config{Queue: queue})
			conn, c := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1000)}, 65535)
			if _, err := c.Write(make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			msg := failure(func(ft scripted.TB) { conn.Send(ft, scripted.TCP{Flags: scripted.ACK, Window: scripted.Uint16(1000)}) })
			if !queue {
				if !strings.Contains(msg, "want nothing before the script sends") {
					t.Fatalf("send's report %q; want it to fail on the kernel's segment", msg)
				}
				return
			}
			if msg != "" {
				t.Fatalf("send failed: %s", msg)
			}
			conn.Expect(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Len: scripted.Int(100)}, time.Second)
		})
	}
}

// hasRow reports whether a mismatch report has the table row whose
// fields are those of row.
func hasRow(report, row string) bool {
	for _, l := range strings.Split(report, "\n") {
		if strings.Join(strings.Fields(l), " ") == row {
			return true
		}
	}
	return false
}

// kernelData counts the kernel's data segments in the capture at path,
// and those with a wrong TCP checksum among all the kernel's frames.
func kernelData(t *testing.T, path string, p *scripted.Peer) (data, bad int) {
	t.Helper()
	eachKernelFrame(t, path, p, func(b []byte, seg *capture.Segment) {
		if seg.Len > 0 {
			data++
		}
		if !scripted.ChecksumOK(b) {
			bad++
		}
	})
	return data, bad
}

// eachKernelFrame calls f with each frame of the capture at path that
// the kernel sent to the script.
func eachKernelFrame(t *testing.T, path string, p *scripted.Peer, f func([]byte, *capture.Segment)) {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dec, err := capture.NewDecoder(r.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var seg capture.Segment
		if dec.Decode(data, &seg) && seg.Src.Addr() == p.KernelAddr() && seg.Dst.Addr() == p.Addr() {
			f(data, &seg)
		}
	}
}
