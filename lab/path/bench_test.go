package path

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks run in the test process itself (not re-executed like the
// tests): they make their two namespaces on threads of their own, which
// needs root. Nothing reaches the host's namespace.

// BenchmarkLine measures the packets per second a line forwards at delay
// 0: 1200-byte UDP datagrams from the client to the server, at most 64 in
// flight so that no socket or device queue overflows and every datagram
// is counted.
func BenchmarkLine(b *testing.B) {
	const (
		size   = 1200
		window = 64
	)
	l := startLab(b, Path{}, 1, 0)
	srv := l.listenUDP(b, 9000)
	cli := l.dialUDP(b, 9000)
	var received atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for received.Load() < int64(b.N) {
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := srv.Read(buf); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	buf := make([]byte, size)
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		if int64(sent)-received.Load() >= window {
			stall := time.Now()
			for int64(sent)-received.Load() >= window {
				if time.Since(stall) > 5*time.Second {
					b.Fatalf("stalled: %d sent, %d received; line %+v", sent, received.Load(), l.line.Stats())
				}
				time.Sleep(20 * time.Microsecond)
			}
		}
		if _, err := cli.Write(buf); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	<-done
	took := time.Since(start)
	b.StopTimer()
	if got := received.Load(); got != int64(b.N) {
		b.Fatalf("%d of %d datagrams received; line %+v", got, b.N, l.line.Stats())
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "pkts/s")
	b.ReportMetric(float64(b.N)*size*8/took.Seconds()/1e6, "Mbit/s")
}

// BenchmarkLineLatency measures how much later than configured the line
// delivers: UDP probes, one per millisecond each way, whose one-way delay
// (on the process's one clock) less the configured delay is the error; its
// median and 99th percentile in microseconds. It includes both kernels'
// UDP paths and the wake-ups of the line's goroutines, which is what a
// scenario's packets see.
func BenchmarkLineLatency(b *testing.B) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%v", delay), func(b *testing.B) {
			l := startLab(b, Path{C2S: Conditions{Delay: delay}, S2C: Conditions{Delay: delay}}, 1, 0)
			b.ResetTimer()
			c2s, s2c := probes(b, l, 9000, b.N, time.Millisecond)
			b.StopTimer()
			if len(c2s) != b.N {
				b.Fatalf("%d of %d probes came back", len(c2s), b.N)
			}
			errs := make([]time.Duration, 0, 2*b.N)
			for _, d := range append(c2s, s2c...) {
				errs = append(errs, d-delay)
			}
			if lo := quantile(errs, 0); lo < 0 {
				b.Errorf("a probe arrived %v before the configured delay", -lo)
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(quantile(errs, 0.5))/1e3, "p50-µs")
			b.ReportMetric(float64(quantile(errs, 0.99))/1e3, "p99-µs")
		})
	}
}
