package annotatecmd

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/capgen"
)

// sampledConns is capgen's capture of short connections, measuring the
// heap after a collection every sample frames.
type sampledConns struct {
	capgen.ShortConns
	sample, frames int
	peak           uint64
}

func (s *sampledConns) Close() error { return nil }
func (s *sampledConns) Interfaces() []capture.Point {
	return []capture.Point{{Link: s.LinkType()}}
}

func (s *sampledConns) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if s.sample > 0 && s.frames%s.sample == 0 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		s.peak = max(s.peak, ms.HeapAlloc)
	}
	s.frames++
	return s.ShortConns.ReadPacketData()
}

// summaryCheck reads annotate's output as it is written: it counts the
// summary lines (text "stream N" lines, or JSON objects with -json) and
// checks they come in stream order.
type summaryCheck struct {
	json    bool
	partial []byte
	n, next int
	bad     string
}

func (c *summaryCheck) Write(p []byte) (int, error) {
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.line(c.partial[:i])
		c.partial = c.partial[i+1:]
	}
	c.partial = append([]byte(nil), c.partial...)
	return len(p), nil
}

func (c *summaryCheck) line(l []byte) {
	var rest []byte
	switch {
	case c.json && bytes.HasPrefix(l, []byte(`{"stream":`)) && bytes.Contains(l, []byte(`"conn_state":"SF"`)):
		rest = l[len(`{"stream":`):]
	case !c.json && bytes.HasPrefix(l, []byte("stream ")):
		rest = l[len("stream "):]
	default:
		return
	}
	end := bytes.IndexAny(rest, ":,")
	n, err := strconv.Atoi(string(rest[:max(end, 0)]))
	if (err != nil || n != c.next) && c.bad == "" {
		c.bad = string(l)
	}
	c.n++
	c.next = n + 1
}

// TestMemoryBoundedEveryForm annotates a capture of 1,000,000 short
// connections, 1,000 open at a time, in every output form: the text, -o
// (with -summary), -summary and -summary -json. (-json alone keeps no
// summaries.) The heap stays within a bound that keeping
// every connection's summary to the end (about 1 KiB each) breaks many
// times over, and every connection's summary is printed, in stream order.
func TestMemoryBoundedEveryForm(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping test; a million connections take a minute (-short)")
	}
	const (
		n       = 1_000_000
		maxHeap = 128 << 20
	)
	forms := []struct {
		name string
		f    flags
	}{
		{"text", flags{}},
		// To /dev/null: a gigabyte of pcapng would prove nothing more.
		{"o", flags{out: os.DevNull, summary: true}},
		{"summary", flags{summary: true}},
		{"summary-json", flags{summary: true, asJSON: true}},
	}
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) {
			src := &sampledConns{ShortConns: capgen.ShortConns{N: n, Concurrent: 1000, Gap: 50 * time.Microsecond}, sample: 200_000}
			f := form.f
			f.stream, f.iface = -1, -1
			f.open = func(string) (captureFile, error) { return src, nil }
			out := &summaryCheck{json: f.asJSON}
			w := bufio.NewWriter(out)
			if err := annotate("short.pcap", "", nil, &f, w); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			if out.n != n || out.bad != "" {
				t.Errorf("%d summaries, want %d; out of order: %q", out.n, n, out.bad)
			}
			if src.peak > maxHeap {
				t.Errorf("heap reached %d MiB, want at most %d MiB", src.peak>>20, maxHeap>>20)
			}
			t.Logf("%s: %d connections, heap at most %.1f MiB", form.name, n, float64(src.peak)/(1<<20))
		})
	}
}

// TestSummaryStoreSpills: past runBytes the store spills sorted runs and
// merges them with what it holds, in stream order and, for one stream,
// in the order added; every line whole, whether it was a slice of its own
// or formatted into the store's arena (room), which a spill reuses.
func TestSummaryStoreSpills(t *testing.T) {
	for _, tc := range []struct {
		name string
		room bool
	}{{"own slices", false}, {"arena", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var s summaryStore
			buf := func() []byte {
				if tc.room {
					return s.room()
				}
				return nil
			}
			line := bytes.Repeat([]byte("x"), 1000)
			const streams = 20_000 // about 21 MB of lines: several runs
			// Streams added out of order: odd ones late, and stream 7 twice.
			for i := 0; i < streams; i += 2 {
				if err := s.add(i, append(append(append(strconv.AppendInt(buf(), int64(i), 10), ' '), line...), '\n')); err != nil {
					t.Fatal(err)
				}
			}
			for i := streams - 1; i > 0; i -= 2 {
				if err := s.add(i, append(strconv.AppendInt(buf(), int64(i), 10), " first\n"...)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.add(7, append(buf(), "7 second\n"...)); err != nil {
				t.Fatal(err)
			}
			if len(s.runs) < 2 {
				t.Fatalf("%d runs spilled, want several", len(s.runs))
			}
			var out bytes.Buffer
			if err := s.writeTo(&out); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(&out)
			sc.Buffer(nil, 1<<20)
			want := 0
			for sc.Scan() {
				f := bytes.Fields(sc.Bytes())
				n, _ := strconv.Atoi(string(f[0]))
				if want == 8 && n == 7 && string(f[1]) == "second" {
					continue
				}
				if n != want {
					t.Fatalf("line for stream %d, want %d", n, want)
				}
				if n == 7 {
					if string(f[1]) != "first" {
						t.Fatalf("stream 7's lines out of order")
					}
				}
				if len(f) != 2 || n%2 == 0 && !bytes.Equal(f[1], line) || n%2 == 1 && string(f[1]) != "first" {
					t.Fatalf("line for stream %d damaged: %.60q", n, sc.Bytes())
				}
				want++
			}
			if want != streams {
				t.Errorf("%d streams written, want %d", want, streams)
			}
		})
	}
}
