package lab

import (
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/capgen"
	"github.com/tcplab/tcplab/lab/property"
)

// BenchmarkCheck checks a million-packet capture against properties
// that many of its connections fail: "many" has thousands of short
// connections, 2000 open at a time, with a fast retransmission every 20
// steps of a bulk transfer; "long" has 4 connections that never close and
// retransmit every other step, tens of thousands of failing segments each.
// It reports the peak of the heap in use (sampled every 5 ms) beside the
// time and the bytes allocated.
func BenchmarkCheck(b *testing.B) {
	props, err := property.Parse("handshake,no-rst,no-retransmission,closer=client,teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK,half-close,max-syn-retries=0")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		gen  capgen.Bulk
	}{
		{"many", capgen.Bulk{Packets: 1_000_000}},
		{"long", capgen.Bulk{Packets: 1_000_000, Concurrent: 4, Steps: 1 << 30, LossEvery: 2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), bc.name+".pcap")
			if err := capgen.WriteBulk(path, bc.gen); err != nil {
				b.Fatal(err)
			}
			req := CheckRequest{Properties: props, Stream: -1}
			b.ReportAllocs()
			runtime.GC()
			peak := heapPeak()
			var v FileVerdict
			for b.Loop() {
				v = Check(path, req)
			}
			b.ReportMetric(float64(peak()>>20), "peak-heap-MiB")
			if v.Pass || v.Error != "" || v.Frames < bc.gen.Packets {
				b.Fatalf("pass %v, error %q, %d frames: want a failure on %d frames", v.Pass, v.Error, v.Frames, bc.gen.Packets)
			}
		})
		// The same as check -json -junit FILE writes it: every verdict
		// written as it comes, the JSON thrown away, the report spilled
		// and written.
		b.Run(bc.name+"-json-junit", func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, bc.name+".pcap")
			if err := capgen.WriteBulk(path, bc.gen); err != nil {
				b.Fatal(err)
			}
			req := CheckRequest{Properties: props, Stream: -1}
			b.ReportAllocs()
			runtime.GC()
			peak := heapPeak()
			var v FileVerdict
			for b.Loop() {
				o, err := newCheckOutput(io.Discard, true, filepath.Join(dir, "junit.xml"))
				if err != nil {
					b.Fatal(err)
				}
				v = o.check(path, req)
				if err := o.close(false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(peak()>>20), "peak-heap-MiB")
			if v.Pass || v.Error != "" || v.Frames < bc.gen.Packets {
				b.Fatalf("pass %v, error %q, %d frames: want a failure on %d frames", v.Pass, v.Error, v.Frames, bc.gen.Packets)
			}
		})
	}
}

// heapPeak samples the heap in use until the function it returns is
// called, which returns the largest sample.
func heapPeak() func() uint64 {
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}
