package annotatecmd

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tcplab/tcplab/capture"
)

// BenchmarkRealCapture runs annotate's output forms, in process, on the
// real-shape capture that make bench keeps (out/bench-real.pcap, or the
// file given with -realcapture), with the output discarded: the whole
// command but the process's start, for profiling what make bench times.
func BenchmarkRealCapture(b *testing.B) {
	path := *realCapture
	if path == "" {
		path = filepath.Join("..", "..", "out", "bench-real.pcap")
	}
	if _, err := os.Stat(path); err != nil {
		b.Skipf("skipping benchmark; no real-shape capture (make bench makes %s): %v", path, err)
	}
	f, err := capture.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	counts, err := capture.Walk(f, capture.NewAnnotator(), func(*capture.Packet) error { return nil })
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "out.pcapng")
	for _, form := range []struct {
		name string
		f    flags
	}{
		{"text", flags{}},
		{"json", flags{asJSON: true}},
		{"o", flags{out: out}},
		{"summary", flags{summary: true}},
		{"summary-json", flags{summary: true, asJSON: true}},
	} {
		b.Run(form.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f := form.f
				f.stream, f.iface = -1, -1
				if err := annotate(path, "", nil, &f, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(counts.Frames)*float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(counts.Frames), "ns/pkt")
		})
	}
}
