package ktrace

import (
	"net"
	"net/netip"
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
				s.doB(b, func() error {
					c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
					if err != nil {
						return err
					}
					srv, err := ln.AcceptTCP()
					if err != nil {
						return err
					}
					c.Close()
					srv.Close()
					return nil
				})
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
