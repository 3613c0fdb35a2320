package scenarios

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
)

// The tests of this file judge captures of soak rounds whose segments
// came in an order TCP allows and a scenario did not, and the same
// captures rewritten into orders it must still refuse.

// judge checks the capture file against sc's expected sequence and fails
// unless its verdict is pass.
func judge(t *testing.T, file string, sc *lab.Scenario, pass bool) {
	t.Helper()
	v, err := lab.CheckFile(file, sc, lab.Options{}, expect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Pass != pass {
		t.Fatalf("%s: pass = %v, want %v; mismatches: %+v", file, v.Pass, pass, v.Mismatches)
	}
}

// TestBulkLateDuplicate checks bulk's close on soak round 152's ending
// (load average 25 to 30): after the last ACK, the client's tail-loss
// probe of data the server had acknowledged, and the closed server's
// RST. Bulk's close accepts it; the plain close does not; the same
// segment moved to end past the FIN (a retransmission, but of data the
// server never acknowledged all of: not spurious) fails, and so does the
// segment as new data after the FIN.
func TestBulkLateDuplicate(t *testing.T) {
	const fixture = "testdata/bulk-late-duplicate.pcapng"
	// Frame 2 is the client's FIN, frame 5 the late duplicate.
	fin := frameSeq(t, fixture, 2)
	tests := []struct {
		name string
		file string
		late bool
		pass bool
	}{
		{"bulk's close", fixture, true, true},
		{"the plain close", fixture, false, false},
		// 50 ms later: a retransmission, not out of order (Wireshark
		// calls a segment out of order within 3 ms of the last).
		{"a resend the server had not all acknowledged", withSeq(t, fixture, 5, fin-400, 50*time.Millisecond), true, false},
		{"new data after the FIN", withSeq(t, fixture, 5, fin+1, 0), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := append([]expect.Step{expect.C2S(ack).Length(0)}, expect.ClientCloses()...)
			if tt.late {
				steps = append(steps, lateDuplicate())
			}
			judge(t, tt.file, &lab.Scenario{Name: "bulk-close", Steps: func(lab.Options) []expect.Step { return steps }}, tt.pass)
		})
	}
}

// tcpAt returns the offset of the TCP header in a frame of the fixtures'
// link types: raw IPv4 (the delay line's devices), or Linux loopback's
// 14-byte Ethernet header (its zero MAC address first) and IPv4.
func tcpAt(t *testing.T, b []byte) int {
	t.Helper()
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		return int(b[0]&0x0f) * 4
	case len(b) >= 34 && b[14]>>4 == 4:
		return 14 + int(b[14]&0x0f)*4
	}
	t.Fatalf("frame of %d bytes is neither IPv4 nor IPv4 over Ethernet", len(b))
	return 0
}

// openNg reads the pcapng file name, gzipped when it ends in .gz.
func openNg(t *testing.T, name string) *pcapgo.NgReader {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var in io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		in = z
	}
	r, err := pcapgo.NewNgReader(in, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// frameSeq is frame n's TCP sequence number.
func frameSeq(t *testing.T, name string, n int) uint32 {
	t.Helper()
	r := openNg(t, name)
	for i := 1; ; i++ {
		b, _, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if i == n {
			return binary.BigEndian.Uint32(b[tcpAt(t, b)+4:])
		}
	}
}

// frame is one record of a capture: its bytes and its capture info.
type frame struct {
	data []byte
	info gopacket.CaptureInfo
}

// readFrames reads every frame of the capture name, and its link type.
func readFrames(t *testing.T, name string) ([]frame, layers.LinkType) {
	t.Helper()
	r := openNg(t, name)
	var frames []frame
	for {
		b, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return frames, r.LinkType()
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, frame{append([]byte(nil), b...), ci})
	}
}

// writeFrames writes frames as a pcapng file of link type lt, base in the
// test's temporary folder, and returns its name.
func writeFrames(t *testing.T, base string, lt layers.LinkType, frames []frame) string {
	t.Helper()
	outName := filepath.Join(t.TempDir(), base)
	out, err := os.Create(outName)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := pcapgo.NewNgWriter(out, lt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := w.WritePacket(f.info, f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return outName
}

// withSeq writes a copy of the capture whose frame n has sequence number
// seq, and it and the frames after it come later by d; it returns the
// copy's name.
func withSeq(t *testing.T, name string, n int, seq uint32, d time.Duration) string {
	t.Helper()
	frames, lt := readFrames(t, name)
	for i := range frames {
		if i+1 == n {
			binary.BigEndian.PutUint32(frames[i].data[tcpAt(t, frames[i].data)+4:], seq)
		}
		if i+1 >= n {
			frames[i].info.Timestamp = frames[i].info.Timestamp.Add(d)
		}
	}
	return writeFrames(t, fmt.Sprintf("seq-%d.pcapng", seq), lt, frames)
}

// TestRTTSlowSecondAnswer checks rtt on soak round 481 (load 15 to 20):
// the server's application took 1.17 s to begin the second answer, past
// its keep-alive idle time, and its kernel probed the connection (frame
// 12, one below its next byte) and the client answered. TCP sends such a
// probe on any connection idle that long: rtt accepts it. Moved to the
// server's next byte, frame 12 is a duplicate ACK, no probe, and fails.
func TestRTTSlowSecondAnswer(t *testing.T) {
	const fixture = "testdata/rtt-late-answer.pcapng.gz"
	next := frameSeq(t, fixture, 11)
	tests := []struct {
		name string
		file string
		pass bool
	}{
		{"a probe while the server is slow", fixture, true},
		{"a duplicate ACK instead", withSeq(t, fixture, 12, next, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { judge(t, tt.file, RTT(), tt.pass) })
	}
}

// TestHandshakeLateACK checks the close on soak round 875 of handshake:
// the server's ACK of the client's FIN, built before its own FIN, reached
// the wire after the last ACK (frame 7, with the sequence number its FIN
// took: a keep-alive to Wireshark); the client in TIME_WAIT answered it
// and the closed server sent a RST. TCP does not order the two segments;
// the close accepts it. The same ACK at the server's next sequence
// number is no such ACK and fails.
func TestHandshakeLateACK(t *testing.T) {
	const fixture = "testdata/handshake-late-ack.pcapng"
	next := frameSeq(t, fixture, 5) + 1 // past the server's FIN
	tests := []struct {
		name string
		file string
		pass bool
	}{
		{"the server's ACK after its FIN", fixture, true},
		{"an ACK at the next sequence number", withSeq(t, fixture, 7, next, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { judge(t, tt.file, Handshake(), tt.pass) })
	}
}

// reordered writes a copy of the capture with its frames in order, a
// list of frame numbers (the frames left out are dropped, a frame listed
// twice is written twice); the k-th frame written keeps the k-th frame's
// timestamp, so time still runs forward, and a frame written past the
// last comes a microsecond after the one before it. It returns the
// copy's name.
func reordered(t *testing.T, name string, order ...int) string {
	t.Helper()
	frames, lt := readFrames(t, name)
	last := len(frames) - 1
	out := make([]frame, len(order))
	for k, n := range order {
		out[k] = frames[n-1]
		out[k].info.Timestamp = frames[min(k, last)].info.Timestamp.Add(time.Duration(max(k-last, 0)) * time.Microsecond)
	}
	return writeFrames(t, "reordered.pcapng", lt, out)
}

// TestHalfCloseLateACK checks halfclose's ending as CI saw it once: the
// server wrote its answer and closed at once, its FIN left before the
// client's stack had run, and the client then acknowledged the answer
// (ack 521) and the FIN (ack 522) each in turn, so the ACK of the answer
// came after the FIN. TCP does not order the two; halfclose accepts it.
// The fixture is the README's run (frame 8 the answer, 9 its ACK, 10 the
// server's FIN, 11 the last ACK) with frames moved; an ACK of the answer
// after the last ACK still fails, as does a last ACK that acknowledges
// only the answer. check's steps for anyone's peers accept the late ACK
// too.
func TestHalfCloseLateACK(t *testing.T) {
	const fixture = "testdata/readme-halfclose.pcapng"
	tests := []struct {
		name string
		file string
		pass bool
	}{
		{"the README's run", fixture, true},
		{"the ACK of the answer after the FIN", reordered(t, fixture, 1, 2, 3, 4, 5, 6, 7, 8, 10, 9, 11), true},
		{"the ACK of the answer after the last ACK", reordered(t, fixture, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 9), false},
		{"no ACK of the FIN", reordered(t, fixture, 1, 2, 3, 4, 5, 6, 7, 8, 10, 9), false},
	}
	for _, tt := range tests {
		// Run's steps for its own peers, and check's for a capture of
		// anyone's where it passes: those take no byte counts, so they
		// cannot tell which ACK acknowledges what.
		opts := []lab.Options{{}}
		if tt.pass {
			opts = append(opts, lab.Options{AnyPeers: true})
		}
		for _, opt := range opts {
			t.Run(fmt.Sprintf("%s/any peers %v", tt.name, opt.AnyPeers), func(t *testing.T) {
				v, err := lab.CheckFile(tt.file, HalfClose(), opt, expect.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if v.Pass != tt.pass {
					t.Fatalf("pass = %v, want %v; mismatches: %+v", v.Pass, tt.pass, v.Mismatches)
				}
			})
		}
	}
}

// TestOffloadLateServerACKs checks offload on soak round 402 (two busy
// loops beside it): the server's one-byte answer (frame 307) overtook
// its last pure ACKs on the way to the client, the client acknowledged it
// (frame 308), and answered the first late ACK, below its window now,
// with the same ACK again (frame 309, a duplicate ACK). Offload accepts
// it; two such duplicates, more than one late ACK in 500 ms can draw
// from the kernel, fail, and so does that ACK moved before the answer,
// where it is no duplicate.
func TestOffloadLateServerACKs(t *testing.T) {
	const fixture = "testdata/offload-late-acks.pcapng.gz"
	order := func(frames ...int) []int {
		var o []int
		for n := 1; n <= 312; n++ {
			o = append(o, n)
		}
		return append(o[:306], frames...)
	}
	tests := []struct {
		name string
		file string
		pass bool
	}{
		{"the soak round", fixture, true},
		{"no duplicate", reordered(t, fixture, order(307, 308, 310, 311, 312)...), true},
		{"two duplicates", reordered(t, fixture, order(307, 308, 309, 309, 310, 311, 312)...), false},
		{"the duplicate before the answer", reordered(t, fixture, order(309, 307, 308, 310, 311, 312)...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { judge(t, tt.file, Offload(), tt.pass) })
	}
}
