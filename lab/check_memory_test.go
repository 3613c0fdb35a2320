package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/capgen"
	"github.com/tcplab/tcplab/lab/property"
)

// heapWatch is a Source that measures the heap every 100,000 frames of
// the Source it wraps, and ends the walk with errHeap once the heap is
// over max: a check that holds every connection stops there rather than
// eat the machine's memory.
type heapWatch struct {
	capture.Source
	frames int
	max    uint64
	peak   uint64
}

var errHeap = errors.New("heap over its bound")

func (h *heapWatch) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	h.frames++
	if h.frames%100_000 == 0 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
		if ms.HeapAlloc > h.max {
			return nil, gopacket.CaptureInfo{}, errHeap
		}
	}
	return h.Source.ReadPacketData()
}

func (h *heapWatch) LinkType() layers.LinkType { return h.Source.LinkType() }

// TestCheckBoundsMemory checks a capture of 1,000,000 short connections,
// 1,000 open at a time (6,000,000 frames over 300 s of capture time),
// for properties, with the verdicts printed as they come (OnConn): the
// heap stays under a bound that holding every connection, or every
// packet, would break many times over, and every connection gets its
// verdict, once, in stream order.
func TestCheckBoundsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping test; -short: it checks 6,000,000 frames")
	}
	const (
		n       = 1_000_000
		maxHeap = 128 << 20
	)
	props, err := property.Parse("handshake,no-rst,no-retransmission,closer=client,teardown=FIN,ACK,FIN,ACK")
	if err != nil {
		t.Fatal(err)
	}
	src := &heapWatch{Source: &capgen.ShortConns{N: n, Concurrent: 1000, Gap: 50 * time.Microsecond}, max: maxHeap}
	got, failed := 0, 0
	req := CheckRequest{Properties: props, Stream: -1, OnConn: func(c ConnVerdict) {
		if c.Stream != got {
			t.Fatalf("verdict of stream %d after %d verdicts: want stream order", c.Stream, got)
		}
		got++
		for _, r := range c.Results {
			if !r.Pass {
				failed++
			}
		}
	}}
	v := checkSource("short-conns", src, req)
	t.Logf("%d connections, %d frames: heap at most %.1f MiB", got, v.Frames, float64(src.peak)/(1<<20))
	if v.Error != "" || src.peak > maxHeap {
		t.Fatalf("error %q, heap %d MiB: want at most %d MiB", v.Error, src.peak>>20, maxHeap>>20)
	}
	if got != n || v.judged != n || len(v.Conns) != 0 || v.Frames != n*capgen.ShortConnFrames {
		t.Errorf("%d verdicts handed out, %d judged, %d kept, %d frames; want %d, %d, 0, %d", got, v.judged, len(v.Conns), v.Frames, n, n, n*capgen.ShortConnFrames)
	}
	if !v.Pass || failed != 0 {
		t.Errorf("pass %v, %d properties failed: every short connection has them all", v.Pass, failed)
	}
}

// jsonTail counts the connections check -json writes, each in one write,
// and keeps the last bytes written, throwing the rest away.
type jsonTail struct {
	conns, bytes int
	last         []byte
}

func (w *jsonTail) Write(b []byte) (int, error) {
	w.conns += bytes.Count(b, []byte(`{"name":"stream `))
	w.bytes += len(b)
	w.last = append(w.last, b...)
	if len(w.last) > 64 {
		w.last = append(w.last[:0], w.last[len(w.last)-64:]...)
	}
	return len(b), nil
}

// TestCheckOutputBoundsMemory checks the capture of TestCheckBoundsMemory
// (1,000,000 short connections) as check -json -junit FILE does, each
// connection's verdict written as it comes: the heap stays under the same
// bound during the walk and after the report is written (the heap in use
// is sampled every 5 ms too, and logged), though the JSON and the report
// hold every verdict (today's 957 MiB when kept), and both are
// whole: every connection in the JSON, a pass at its end, and the
// report's counts and closing tag.
func TestCheckOutputBoundsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping test; -short: it checks 6,000,000 frames")
	}
	const (
		n       = 1_000_000
		maxHeap = 128 << 20
	)
	props, err := property.Parse("handshake,no-rst,no-retransmission,closer=client,teardown=FIN,ACK,FIN,ACK")
	if err != nil {
		t.Fatal(err)
	}
	junit := filepath.Join(t.TempDir(), "junit.xml")
	var stdout jsonTail
	runtime.GC()
	peak := heapPeak()
	o, err := newCheckOutput(&stdout, true, junit)
	if err != nil {
		t.Fatal(err)
	}
	src := &heapWatch{Source: &capgen.ShortConns{N: n, Concurrent: 1000, Gap: 50 * time.Microsecond}, max: maxHeap}
	v := o.checkSource("short-conns", src, CheckRequest{Properties: props, Stream: -1})
	if err := o.close(false); err != nil {
		t.Fatal(err)
	}
	all := peak()
	fi, err := os.Stat(junit)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d connections, %d frames, %.0f MiB of JSON, %.0f MiB of JUnit: heap at most %.1f MiB during the walk, %.1f MiB after the report; in use, garbage included, at most %.1f MiB",
		stdout.conns, v.Frames, float64(stdout.bytes)/(1<<20), float64(fi.Size())/(1<<20), float64(src.peak)/(1<<20), float64(ms.HeapAlloc)/(1<<20), float64(all)/(1<<20))
	if v.Error != "" || src.peak > maxHeap || ms.HeapAlloc > maxHeap {
		t.Fatalf("error %q, heap %d MiB during the walk, %d MiB after: want at most %d MiB", v.Error, src.peak>>20, ms.HeapAlloc>>20, maxHeap>>20)
	}
	if tail := fmt.Sprintf(`}]}],"pass":true,"frames":%d}],"pass":true}`+"\n", n*capgen.ShortConnFrames); stdout.conns != n || !bytes.HasSuffix(stdout.last, []byte(tail)) {
		t.Errorf("JSON of %d connections ending %q; want %d ending with a pass", stdout.conns, stdout.last, n)
	}
	f, err := os.Open(junit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 200)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	tail := make([]byte, 32)
	if _, err := f.ReadAt(tail, fi.Size()-32); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`<testsuites name="tcplab check" tests="%d" failures="0" errors="0">`, n*len(props))
	if !bytes.Contains(head, []byte(want)) || !bytes.HasSuffix(tail, []byte("</testsuite>\n</testsuites>\n")) {
		t.Errorf("JUnit begins %q, ends %q: want %s and the closing tags", head, tail, want)
	}
}
