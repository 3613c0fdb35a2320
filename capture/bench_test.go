package capture

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var (
	benchCapture = flag.String("benchcapture", "", "TestWriteBenchCapture writes the benchmark capture to `FILE`")
	benchPackets = flag.Int("benchpackets", 1_000_000, "packets in the benchmark capture")
)

// The benchmark capture: benchConcurrent connections open at any time,
// each a handshake, then either a bulk transfer (two 1448-byte segments and
// an ACK per step, now and then a lost segment with two duplicate ACKs and
// a fast retransmission) or request/response exchanges (100 bytes, 300
// bytes, an ACK), then a FIN teardown. Frames are cut at a snap length of
// 96 bytes: headers only, as a capture for TCP analysis is usually taken.
const (
	benchConcurrent = 2000
	benchSnaplen    = 96
	benchVersion    = 1 // bump when the generator changes, so cached files are remade
)

// benchFrameBuilder writes Ethernet/IPv4/TCP headers with a timestamps
// option into a reused buffer: a million gopacket serializations would
// take longer than the benchmark.
type benchFrameBuilder struct {
	buf [14 + 20 + 32]byte
}

func newBenchFrameBuilder() *benchFrameBuilder {
	b := &benchFrameBuilder{}
	copy(b.buf[0:], []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := b.buf[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	tcp := b.buf[34:]
	tcp[12] = 8 << 4 // 32-byte header
	copy(tcp[20:], []byte{1, 1, 8, 10})
	return b
}

// frame returns the headers of a segment and the length of the whole
// frame on the wire.
func (b *benchFrameBuilder) frame(src, dst netip.AddrPort, flags Flags, seq, ack uint32, win uint16, n int, tsval uint32) ([]byte, int) {
	ip, tcp := b.buf[14:34], b.buf[34:]
	binary.BigEndian.PutUint16(ip[2:], uint16(20+32+n))
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	ip[10], ip[11] = 0, 0
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[13] = byte(flags)
	binary.BigEndian.PutUint16(tcp[14:], win)
	binary.BigEndian.PutUint32(tcp[24:], tsval)
	binary.BigEndian.PutUint32(tcp[28:], tsval-1)
	return b.buf[:], len(b.buf) + n
}

// benchConn is one connection of the generator.
type benchConn struct {
	cli, srv   netip.AddrPort
	cseq, sseq uint32 // next seq of client and server
	bulk       bool
	step, left int
}

// writeBenchCapture writes a capture of at least packets frames to path.
func writeBenchCapture(tb testing.TB, path string, packets int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(benchSnaplen, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	fb := newBenchFrameBuilder()
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	written := 0
	emit := func(src, dst netip.AddrPort, flags Flags, seq, ack uint32, n int) {
		now = now.Add(time.Microsecond)
		hdr, wire := fb.frame(src, dst, flags, seq, ack, 1024, n, uint32(now.UnixMilli()))
		captured := min(wire, benchSnaplen)
		if captured > len(hdr) {
			// Payload bytes within the snap length: zeros.
			hdr = append(hdr[:len(hdr):len(hdr)], make([]byte, captured-len(hdr))...)
		}
		ci := gopacket.CaptureInfo{Timestamp: now, CaptureLength: captured, Length: wire}
		if err := w.WritePacket(ci, hdr[:captured]); err != nil {
			tb.Fatal(err)
		}
		written++
	}
	serial := 0
	newConn := func() *benchConn {
		serial++
		// 200 client addresses × 20000 ports: no 4-tuple is reused.
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(serial / 20000 / 256), byte(serial / 20000)}), uint16(30000+serial%20000))
		srv := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, 0, byte(serial % 16)}), 443)
		c := &benchConn{cli: cli, srv: srv, cseq: uint32(serial) * 2654435761, sseq: uint32(serial) * 40503 << 8, bulk: serial%2 == 0}
		c.left = 30
		if c.bulk {
			c.left = 60
		}
		return c
	}
	conns := make([]*benchConn, benchConcurrent)
	for i := range conns {
		conns[i] = newConn()
	}
	for written < packets {
		for i, c := range conns {
			switch {
			case c.step == 0:
				emit(c.cli, c.srv, SYN, c.cseq, 0, 0)
				emit(c.srv, c.cli, SYN|ACK, c.sseq, c.cseq+1, 0)
				c.cseq++
				c.sseq++
				emit(c.cli, c.srv, ACK, c.cseq, c.sseq, 0)
			case c.left == 0:
				emit(c.cli, c.srv, FIN|ACK, c.cseq, c.sseq, 0)
				emit(c.srv, c.cli, ACK, c.sseq, c.cseq+1, 0)
				emit(c.srv, c.cli, FIN|ACK, c.sseq, c.cseq+1, 0)
				emit(c.cli, c.srv, ACK, c.cseq+1, c.sseq+1, 0)
				conns[i] = newConn()
				continue
			case c.bulk && c.step%20 == 3:
				// The first of three segments is lost before the
				// capture point: two duplicate ACKs, a fast retransmit.
				lost := c.sseq
				emit(c.srv, c.cli, ACK, lost+1448, c.cseq, 1448)
				emit(c.cli, c.srv, ACK, c.cseq, lost, 0)
				emit(c.srv, c.cli, ACK, lost+2*1448, c.cseq, 1448)
				emit(c.cli, c.srv, ACK, c.cseq, lost, 0)
				emit(c.srv, c.cli, ACK, lost, c.cseq, 1448)
				c.sseq += 3 * 1448
				emit(c.cli, c.srv, ACK, c.cseq, c.sseq, 0)
			case c.bulk:
				emit(c.srv, c.cli, ACK, c.sseq, c.cseq, 1448)
				emit(c.srv, c.cli, PSH|ACK, c.sseq+1448, c.cseq, 1448)
				c.sseq += 2 * 1448
				emit(c.cli, c.srv, ACK, c.cseq, c.sseq, 0)
			default:
				emit(c.cli, c.srv, PSH|ACK, c.cseq, c.sseq, 100)
				c.cseq += 100
				emit(c.srv, c.cli, PSH|ACK, c.sseq, c.cseq, 300)
				c.sseq += 300
				emit(c.cli, c.srv, ACK, c.cseq, c.sseq, 0)
			}
			c.step++
			c.left--
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// benchCaptureFile returns the path of the benchmark capture in the
// temporary directory, writing it the first time.
func benchCaptureFile(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("tcplab-bench-v%d-%d.pcap", benchVersion, *benchPackets))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".tmp"
	writeBenchCapture(tb, tmp, *benchPackets)
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestWriteBenchCapture writes the benchmark capture to the file given
// with -benchcapture, for timing other tools on it (make bench). It is a
// generator, not a test: without the flag it skips.
func TestWriteBenchCapture(t *testing.T) {
	if *benchCapture == "" {
		t.Skip("skipping; -benchcapture=FILE writes the benchmark capture")
	}
	writeBenchCapture(t, *benchCapture, *benchPackets)
}

// TestBenchCaptureShape checks a small benchmark capture: every frame is
// TCP, the connections open and close, and the planned losses give
// duplicate ACKs and fast retransmissions.
func TestBenchCaptureShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.pcap")
	writeBenchCapture(t, path, 250_000)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := NewAnnotator()
	var counts [numLabels]int
	n, err := Walk(f, a, func(p *Packet) error {
		for l := Label(0); l < numLabels; l++ {
			if p.Annotation.Labels.Has(l) {
				counts[l]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n.TCP != n.Frames || n.Frames < 250_000 || n.Truncated != 0 {
		t.Errorf("counts %+v", n)
	}
	closed := 0
	for _, c := range a.Conns() {
		if c.ClientState == TimeWait && c.ServerState == Closed {
			closed++
		}
	}
	if closed == 0 || len(a.Conns()) < benchConcurrent {
		t.Errorf("%d connections, %d closed", len(a.Conns()), closed)
	}
	if counts[DupACK] == 0 || counts[FastRetransmission] == 0 || counts[LostSegment] == 0 {
		t.Errorf("label counts %v: want dup-acks, fast retransmissions and lost segments", counts)
	}
}

// reportRate reports packets per second and allocations per packet of a
// benchmark that handled pkts packets per iteration.
func reportRate(b *testing.B, pkts int, before *runtime.MemStats) {
	b.Helper()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	total := float64(pkts) * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/pkt")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/pkt")
}

// BenchmarkAnnotate opens the benchmark capture and walks it, decoding and
// annotating every packet: what `tcplab annotate` costs without printing.
func BenchmarkAnnotate(b *testing.B) {
	path := benchCaptureFile(b)
	pkts := 0
	b.ReportAllocs()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		n, err := Walk(f, NewAnnotator(), func(*Packet) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		pkts = n.Frames
	}
	reportRate(b, pkts, &before)
}

// benchFrames reads the benchmark capture into memory.
func benchFrames(b *testing.B) [][]byte {
	b.Helper()
	f, err := Open(benchCaptureFile(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var frames [][]byte
	for {
		data, _, err := f.ReadPacketData()
		if err != nil {
			break
		}
		frames = append(frames, append([]byte(nil), data...))
	}
	return frames
}

// BenchmarkDecode decodes every frame of the capture, held in memory.
func BenchmarkDecode(b *testing.B) {
	frames := benchFrames(b)
	d, err := NewDecoder(layers.LinkTypeEthernet)
	if err != nil {
		b.Fatal(err)
	}
	var s Segment
	b.ReportAllocs()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		for _, fr := range frames {
			if !d.Decode(fr, &s) {
				b.Fatal("not TCP")
			}
		}
	}
	reportRate(b, len(frames), &before)
}

// BenchmarkAnnotateOnly annotates the capture's segments, decoded in
// advance: the Annotator's share of BenchmarkAnnotate.
func BenchmarkAnnotateOnly(b *testing.B) {
	frames := benchFrames(b)
	d, err := NewDecoder(layers.LinkTypeEthernet)
	if err != nil {
		b.Fatal(err)
	}
	segs := make([]Segment, len(frames))
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, fr := range frames {
		d.Decode(fr, &segs[i])
		segs[i].Frame, segs[i].Time = i+1, t0.Add(time.Duration(i)*time.Microsecond)
	}
	frames = nil
	b.ReportAllocs()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		a := NewAnnotator()
		for i := range segs {
			a.Annotate(&segs[i])
		}
	}
	reportRate(b, len(segs), &before)
}
