package sockstat

import "testing"

// BenchmarkSample samples one connection and its listener on loopback in
// the current network namespace, which needs no privilege: by port (the
// listener and both ends: 3 sockets) and by 4-tuple (both ends). The
// kernel still walks every TCP socket of the namespace to apply the
// filter, so the figures grow with the namespace's socket count; inside a
// scenario's namespace there are only the scenario's sockets.
func BenchmarkSample(b *testing.B) {
	ln := listen(b, "tcp4", "127.0.0.1:0")
	c := dial(b, ln, "tcp4", ln.Addr().String())
	s := newSampler(b, Config{})
	for _, bc := range []struct {
		name string
		f    Filter
		want int
	}{
		{"port", Filter{Port: c.s.Port()}, 3},
		{"tuple", Filter{Tuples: []Tuple{{c.c, c.s}}}, 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				socks, err := s.Sample(bc.f)
				if err != nil {
					b.Fatal(err)
				}
				if len(socks) != bc.want {
					b.Fatalf("%d sockets, want %d", len(socks), bc.want)
				}
			}
		})
	}
}
