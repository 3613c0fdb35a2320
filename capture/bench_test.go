package capture

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/tcplab/tcplab/internal/capgen"
)

var (
	benchCapture = flag.String("benchcapture", "", "TestWriteBenchCapture writes the benchmark capture to `FILE`")
	benchPackets = flag.Int("benchpackets", 1_000_000, "packets in the benchmark capture")
)

// The benchmark capture is capgen's Bulk capture with its defaults:
// benchConcurrent connections open at any time, bulk transfers with fast
// retransmissions and request/response exchanges, cut at 96 bytes.
const (
	benchConcurrent = 2000
	benchVersion    = 1 // bump when the generator changes, so cached files are remade
)

// writeBenchCapture writes a capture of at least packets frames to path.
func writeBenchCapture(tb testing.TB, path string, packets int) {
	tb.Helper()
	if err := capgen.WriteBulk(path, capgen.Bulk{Packets: packets, Concurrent: benchConcurrent}); err != nil {
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

// BenchmarkAppend formats annotated segments as annotate's forms write
// them: the text line, the JSON object, and the pcapng comment of -o, on
// the first segments of the benchmark capture.
func BenchmarkAppend(b *testing.B) {
	f, err := Open(benchCaptureFile(b))
	if err != nil {
		b.Fatal(err)
	}
	var pkts []Packet
	_, err = Walk(f, NewAnnotator(), func(p *Packet) error {
		if len(pkts) == 20000 {
			return io.EOF
		}
		if p.TCP {
			pkts = append(pkts, *p)
		}
		return nil
	})
	f.Close()
	if !errors.Is(err, io.EOF) {
		b.Fatal(err)
	}
	start := pkts[0].Segment.Time
	buf := make([]byte, 0, 1<<20)
	for _, form := range []struct {
		name string
		f    func([]byte, *Packet) []byte
	}{
		{"line", func(b []byte, p *Packet) []byte { return AppendLine(b, p, start) }},
		{"json", func(b []byte, p *Packet) []byte { return AppendJSON(b, p, start) }},
		{"comment", AppendComment},
	} {
		b.Run(form.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = buf[:0]
				for i := range pkts {
					buf = form.f(buf, &pkts[i])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pkts)), "ns/pkt")
		})
	}
}
