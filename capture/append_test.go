package capture

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// randomPackets makes annotated segments with every field varied: flags,
// labels, states, options, IPv4 and IPv6, times from microseconds to
// hours.
func randomPackets(n int) []Packet {
	r := rand.New(rand.NewPCG(1, 2))
	start := time.Unix(1700000000, 0)
	addrs := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("10.1.2.3:443"),
		netip.MustParseAddrPort("[::1]:8000"), netip.MustParseAddrPort("[2001:db8::5]:51234"),
	}
	pkts := make([]Packet, n)
	for i := range pkts {
		p := &pkts[i]
		p.TCP = true
		s, a := &p.Segment, &p.Annotation
		s.Frame = i + 1
		s.Time = start.Add(time.Duration(r.Int64N(int64(3 * time.Hour)))).Add(-time.Duration(r.IntN(2)) * time.Hour)
		if i%7 == 0 {
			s.Time = start.Add(time.Duration(r.IntN(1000))) // below a microsecond
		}
		s.Src, s.Dst = addrs[r.IntN(4)], addrs[r.IntN(4)]
		s.Flags = Flags(r.IntN(256))
		s.Seq, s.Ack = r.Uint32(), r.Uint32()
		s.Len = r.IntN(70000)
		o := &s.Options
		o.WindowScale = int8(r.IntN(16) - 1)
		if r.IntN(2) == 0 {
			o.MSS = uint16(r.IntN(65536))
		}
		o.SACKPermitted = r.IntN(2) == 0
		o.HasTimestamps = r.IntN(2) == 0
		o.TSVal, o.TSEcr = r.Uint32(), r.Uint32()
		o.NSACK = uint8(r.IntN(5))
		for k := range o.SACK {
			o.SACK[k] = SACKBlock{r.Uint32(), r.Uint32()}
		}
		a.Stream = r.IntN(100000)
		a.Dir = Dir(r.IntN(2))
		a.RelSeq, a.RelAck = r.Uint32(), r.Uint32()
		a.Win = r.IntN(1 << 30)
		a.Labels = Labels(r.IntN(1 << numLabels))
		a.Client, a.Server = State(r.IntN(12)), State(r.IntN(12))
	}
	return pkts
}

// TestAppendMatchesFmt: the allocation-free formatters write exactly what
// Line and MarshalLine (fmt and encoding/json) write.
func TestAppendMatchesFmt(t *testing.T) {
	start := time.Unix(1700000000, 0)
	for i, p := range randomPackets(20000) {
		if got, want := string(AppendLine(nil, &p, start)), Line(&p, start)+"\n"; got != want {
			t.Fatalf("packet %d: AppendLine\n%q\nLine\n%q", i, got, want)
		}
		if got, want := string(AppendComment(nil, &p)), Comment(&p); got != want {
			t.Fatalf("packet %d: AppendComment\n%q\nComment\n%q", i, got, want)
		}
		want, err := NewRecord(&p, start).MarshalLine()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(AppendJSON(nil, &p, start)); got != string(want) {
			t.Fatalf("packet %d: AppendJSON\n%s\nMarshalLine\n%s", i, got, want)
		}
	}
}

func TestAppendAllocates(t *testing.T) {
	start := time.Unix(1700000000, 0)
	pkts := randomPackets(100)
	buf := make([]byte, 0, 1<<16)
	for name, f := range map[string]func([]byte, *Packet, time.Time) []byte{
		"AppendLine": AppendLine, "AppendJSON": AppendJSON,
		"AppendComment": func(b []byte, p *Packet, _ time.Time) []byte { return AppendComment(b, p) },
	} {
		if n := testing.AllocsPerRun(100, func() {
			b := buf[:0]
			for i := range pkts {
				b = f(b, &pkts[i], start)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per run of 100 packets", name, n)
		}
	}
}
