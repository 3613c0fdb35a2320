package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
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

// shortConnsCheck is what one check of capgen's capture of 1,000,000
// short connections, 1,000 open at a time (6,000,000 frames over 300 s of
// capture time), for properties, shows: TestCheckBoundsMemory and
// TestCheckOutputBoundsMemory judge the same walk (checkShortConns), which
// takes a quarter of a minute or more, rather than one walk each. The walk
// writes check -json -junit FILE's output, each connection's verdict as it
// comes, and counts each verdict handed to OnConn on its way there.
type shortConnsCheck struct {
	err   error // setting the walk up or writing its report failed
	v     FileVerdict
	props int // properties checked on each connection

	// OnConn's account.
	verdicts, failed int
	outOfOrder       string // the first verdict out of stream order

	// The heap: at most during the walk, sampled every 100,000 frames
	// after a collection (heapWatch); in use, garbage included, at most,
	// sampled every 5 ms (heapPeak); after the report, after a collection.
	walkPeak, inUsePeak, after uint64

	// The output: the JSON's tail and count, the JUnit report's size,
	// first 200 bytes and last 32.
	stdout               jsonTail
	junitSize            int64
	junitHead, junitTail []byte
}

const (
	shortConnsN       = 1_000_000
	shortConnsMaxHeap = 128 << 20
)

// shortConns is the one run of checkShortConns in a run of the tests.
var shortConns struct {
	once sync.Once
	c    shortConnsCheck
}

// checkShortConns returns the check of the short connections' capture,
// walking it the first time it is asked.
func checkShortConns(t *testing.T) *shortConnsCheck {
	t.Helper()
	shortConns.once.Do(func() { shortConns.c = walkShortConns() })
	c := &shortConns.c
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c
}

// walkShortConns checks the short connections' capture as check -json
// -junit FILE does, through checkOutput's begin and end around
// checkSource, with an OnConn that counts each verdict before it is
// written.
func walkShortConns() (c shortConnsCheck) {
	props, err := property.Parse("handshake,no-rst,no-retransmission,closer=client,teardown=FIN,ACK,FIN,ACK")
	if err != nil {
		c.err = err
		return c
	}
	c.props = len(props)
	dir, err := os.MkdirTemp("", "tcplab-short-conns-")
	if err != nil {
		c.err = err
		return c
	}
	defer os.RemoveAll(dir)
	junit := filepath.Join(dir, "junit.xml")
	runtime.GC()
	peak := heapPeak()
	o, err := newCheckOutput(&c.stdout, true, junit)
	if err != nil {
		c.err = err
		return c
	}
	src := &heapWatch{Source: &capgen.ShortConns{N: shortConnsN, Concurrent: 1000, Gap: 50 * time.Microsecond}, max: shortConnsMaxHeap}
	const name = "short-conns"
	write := o.begin(name)
	req := CheckRequest{Properties: props, Stream: -1, OnConn: func(v ConnVerdict) {
		if v.Stream != c.verdicts && c.outOfOrder == "" {
			c.outOfOrder = fmt.Sprintf("verdict of stream %d after %d verdicts", v.Stream, c.verdicts)
		}
		c.verdicts++
		for _, r := range v.Results {
			if !r.Pass {
				c.failed++
			}
		}
		write(v)
	}}
	c.v = checkSource(name, src, req)
	o.end(&c.v)
	if err := o.close(false); err != nil {
		c.err = err
		return c
	}
	c.inUsePeak = peak()
	c.walkPeak = src.peak
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c.after = ms.HeapAlloc
	f, err := os.Open(junit)
	if err != nil {
		c.err = err
		return c
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		c.err = err
		return c
	}
	c.junitSize = fi.Size()
	c.junitHead = make([]byte, 200)
	if _, err := io.ReadFull(f, c.junitHead); err != nil {
		c.err = fmt.Errorf("%s: %w", junit, err)
		return c
	}
	c.junitTail = make([]byte, 32)
	if _, err := f.ReadAt(c.junitTail, fi.Size()-32); err != nil {
		c.err = fmt.Errorf("%s: %w", junit, err)
	}
	return c
}

// TestCheckBoundsMemory checks the capture of 1,000,000 short connections
// (checkShortConns) for properties, with the verdicts handed out as they
// come (OnConn): the heap stays under a bound that holding every
// connection, or every packet, would break many times over, and every
// connection gets its verdict, once, in stream order.
func TestCheckBoundsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping test; -short: it checks 6,000,000 frames")
	}
	c := checkShortConns(t)
	v, n := &c.v, shortConnsN
	t.Logf("%d connections, %d frames: heap at most %.1f MiB", c.verdicts, v.Frames, float64(c.walkPeak)/(1<<20))
	if c.outOfOrder != "" {
		t.Fatalf("%s: want stream order", c.outOfOrder)
	}
	if v.Error != "" || c.walkPeak > shortConnsMaxHeap {
		t.Fatalf("error %q, heap %d MiB: want at most %d MiB", v.Error, c.walkPeak>>20, shortConnsMaxHeap>>20)
	}
	if c.verdicts != n || v.judged != n || len(v.Conns) != 0 || v.Frames != n*capgen.ShortConnFrames {
		t.Errorf("%d verdicts handed out, %d judged, %d kept, %d frames; want %d, %d, 0, %d", c.verdicts, v.judged, len(v.Conns), v.Frames, n, n, n*capgen.ShortConnFrames)
	}
	if !v.Pass || c.failed != 0 {
		t.Errorf("pass %v, %d properties failed: every short connection has them all", v.Pass, c.failed)
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
// connection's verdict written as it comes (checkShortConns): the heap
// stays under the same bound during the walk and after the report is
// written (the heap in use is sampled every 5 ms too, and logged), though
// the JSON and the report hold every verdict (today's 957 MiB when kept),
// and both are whole: every connection in the JSON, a pass at its end,
// and the report's counts and closing tag.
func TestCheckOutputBoundsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping test; -short: it checks 6,000,000 frames")
	}
	c := checkShortConns(t)
	n, v, stdout := shortConnsN, &c.v, &c.stdout
	t.Logf("%d connections, %d frames, %.0f MiB of JSON, %.0f MiB of JUnit: heap at most %.1f MiB during the walk, %.1f MiB after the report; in use, garbage included, at most %.1f MiB",
		stdout.conns, v.Frames, float64(stdout.bytes)/(1<<20), float64(c.junitSize)/(1<<20), float64(c.walkPeak)/(1<<20), float64(c.after)/(1<<20), float64(c.inUsePeak)/(1<<20))
	if v.Error != "" || c.walkPeak > shortConnsMaxHeap || c.after > shortConnsMaxHeap {
		t.Fatalf("error %q, heap %d MiB during the walk, %d MiB after: want at most %d MiB", v.Error, c.walkPeak>>20, c.after>>20, shortConnsMaxHeap>>20)
	}
	if tail := fmt.Sprintf(`}]}],"pass":true,"frames":%d}],"pass":true}`+"\n", n*capgen.ShortConnFrames); stdout.conns != n || !bytes.HasSuffix(stdout.last, []byte(tail)) {
		t.Errorf("JSON of %d connections ending %q; want %d ending with a pass", stdout.conns, stdout.last, n)
	}
	want := fmt.Sprintf(`<testsuites name="tcplab check" tests="%d" failures="0" errors="0">`, n*c.props)
	if !bytes.Contains(c.junitHead, []byte(want)) || !bytes.HasSuffix(c.junitTail, []byte("</testsuite>\n</testsuites>\n")) {
		t.Errorf("JUnit begins %q, ends %q: want %s and the closing tags", c.junitHead, c.junitTail, want)
	}
}
