package ktrace

import (
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// BenchmarkDecode: turning one record into an Event allocates nothing.
func BenchmarkDecode(b *testing.B) {
	rec := record{boot: time.Second, src: netip.MustParseAddrPort("10.0.0.1:1"), dst: netip.MustParseAddrPort("10.0.0.2:2"),
		kind: 7, flags: evHaveSeq, seq: 1, end: 2, reason: 12}.bytes()
	n := &names{drop: map[uint32]string{12: "NETFILTER_DROP"}}
	var e Event
	b.ReportAllocs()
	for b.Loop() {
		if err := decode(rec, 0, n, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnection: one connection on lo, made and closed, without
// and with a Tracer on its namespace; with one, it reports the events of
// a connection and the kernel's own count of the time its programs ran
// (BPF_ENABLE_STATS), per program run.
func BenchmarkConnection(b *testing.B) {
	for _, traced := range []bool{false, true} {
		name := "untraced"
		if traced {
			name = "traced"
		}
		b.Run(name, func(b *testing.B) {
			s := newBenchSpace(b)
			var tr *Tracer
			var events int
			done := make(chan struct{})
			if traced {
				stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
				if err != nil {
					b.Skipf("skipping benchmark; needs root for BPF: %v", err)
				}
				defer stats.Close()
				tr, err = Open(Config{NetNS: []uint64{s.inode}})
				if err != nil {
					b.Skipf("skipping benchmark; needs root for BPF: %v", err)
				}
				go func() {
					for range tr.Events() {
						events++
					}
					close(done)
				}()
			}
			var ln *net.TCPListener
			s.doB(b, func() (err error) {
				ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
				return err
			})
			defer ln.Close()
			b.ResetTimer()
			for b.Loop() {
				s.doB(b, func() error { return connectOnce(ln) })
			}
			b.StopTimer()
			if tr == nil {
				return
			}
			var runtime time.Duration
			var runs uint64
			for _, p := range tr.coll.Programs {
				st, err := p.Stats()
				if err != nil {
					b.Fatal(err)
				}
				if st.RunCount > 0 {
					b.Logf("%s: %d runs, %v each", p, st.RunCount, st.Runtime/time.Duration(st.RunCount))
				}
				runtime += st.Runtime
				runs += st.RunCount
			}
			tr.Close()
			<-done
			if runs > 0 {
				b.ReportMetric(float64(runtime.Nanoseconds())/float64(runs), "bpf-ns/run")
			}
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
			b.ReportMetric(float64(tr.Lost()), "lost")
		})
	}
}

// BenchmarkStream: 64 MiB over lo in 64 KiB writes, without a Tracer,
// with one that follows no segment (Follow 0), and with one that follows
// DefaultFollow segments, whose path programs stay attached for the whole
// transfer (it takes less than their grace): throughput, and the kernel's
// own count of the time the programs ran (BPF_ENABLE_STATS) per MiB.
func BenchmarkStream(b *testing.B) {
	const total, chunk = 64 << 20, 64 << 10
	for _, tc := range []struct {
		name   string
		traced bool
		follow int
	}{{"untraced", false, 0}, {"traced", true, 0}, {"path", true, DefaultFollow}} {
		b.Run(tc.name, func(b *testing.B) {
			s := newBenchSpace(b)
			var tr *Tracer
			done := make(chan struct{})
			if tc.traced {
				stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
				if err != nil {
					b.Skipf("skipping benchmark; needs root for BPF: %v", err)
				}
				defer stats.Close()
				tr, err = Open(Config{NetNS: []uint64{s.inode}, Hosts: []*os.File{s.file}, Follow: tc.follow})
				if err != nil {
					b.Skipf("skipping benchmark; needs root for BPF: %v", err)
				}
				go func() {
					for range tr.Events() {
					}
					close(done)
				}()
			}
			var ln *net.TCPListener
			s.doB(b, func() (err error) {
				ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
				return err
			})
			defer ln.Close()
			buf := make([]byte, chunk)
			b.SetBytes(total)
			b.ResetTimer()
			for b.Loop() {
				s.doB(b, func() error {
					c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
					if err != nil {
						return err
					}
					srv, err := ln.AcceptTCP()
					if err != nil {
						return err
					}
					read := make(chan error, 1)
					go func() {
						_, err := io.Copy(io.Discard, srv)
						read <- err
					}()
					for n := 0; n < total; n += chunk {
						if _, err := c.Write(buf); err != nil {
							return err
						}
					}
					c.Close()
					err = <-read
					srv.Close()
					return err
				})
			}
			b.StopTimer()
			if tr == nil {
				return
			}
			var runtime time.Duration
			for name, p := range tr.coll.Programs {
				if st, err := p.Stats(); err == nil {
					runtime += st.Runtime
					if st.RunCount > 0 {
						b.Logf("%s: %d runs, %v each", name, st.RunCount, st.Runtime/time.Duration(st.RunCount))
					}
				}
			}
			tr.Close()
			<-done
			b.ReportMetric(float64(runtime.Microseconds())/float64(b.N)/float64(total>>20), "bpf-µs/MiB")
		})
	}
}
