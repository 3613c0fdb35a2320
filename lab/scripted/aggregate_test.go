package scripted

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
)

// TestAggregateHeader: an expectation that joins the kernel's segments
// checks them as packetdrill does: the parts may differ in FIN, PSH and
// CWR only, and the joined segment has the last part's header (flags,
// window) with the first's sequence number and CWR flag. The parts here
// are frames queued by hand, as the tap would queue them.
func TestAggregateHeader(t *testing.T) {
	type part struct {
		flags capture.Flags
		n     int
		win   uint16
	}
	tests := []struct {
		name  string
		parts []part
		want  TCP
		fail  string // a row's field, or "" when it must match
	}{
		{"PSH on the parts but the last, as the kernel's TSO pieces",
			[]part{{ACK | PSH, 2000, 100}, {ACK | PSH, 2000, 100}, {ACK, 1000, 100}},
			TCP{Flags: ACK, Len: Int(5000)}, ""},
		{"the last part's PSH is the joined segment's",
			[]part{{ACK, 1000, 100}, {ACK | PSH, 1000, 100}},
			TCP{Flags: ACK, Len: Int(2000)}, "flags"},
		{"CWR is the first part's",
			[]part{{ACK | CWR, 1000, 100}, {ACK | PSH, 1000, 100}},
			TCP{Flags: ACK | PSH | CWR, Len: Int(2000)}, ""},
		{"a part of another window is not joined",
			[]part{{ACK, 1000, 100}, {ACK, 1000, 200}},
			TCP{Flags: ACK, Len: Int(2000)}, "len"},
		{"a part with ECE is not joined",
			[]part{{ACK, 1000, 100}, {ACK | ECE, 1000, 100}},
			TCP{Flags: ACK, Len: Int(2000)}, "len"},
		{"the window is the last part's",
			[]part{{ACK, 1000, 100}, {ACK, 1000, 100}},
			TCP{Flags: ACK, Len: Int(2000), Window: Uint16(100)}, ""},
	}
	dec, err := capture.NewDecoder(layers.LinkTypeRaw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Peer{cfg: Config{Kernel: netip.MustParsePrefix("192.168.0.101/24"), Addr: netip.MustParseAddr("192.168.0.2"), Aggregate: true}, inbox: make(chan frame)}
			c := &Conn{p: p, local: 40000, remote: 8080, synced: true}
			seq := uint32(1)
			for _, pt := range tt.parts {
				w := wire{src: netip.MustParseAddrPort("192.168.0.101:8080"), dst: netip.MustParseAddrPort("192.168.0.2:40000"),
					flags: pt.flags, seq: seq, window: pt.win, payload: make([]byte, pt.n)}
				b, err := w.frame()
				if err != nil {
					t.Fatal(err)
				}
				f := frame{data: b, at: time.Now()}
				if f.tcp = dec.Decode(b, &f.seg); !f.tcp {
					t.Fatal("part does not decode")
				}
				p.pending = append(p.pending, f)
				seq += uint32(pt.n)
			}
			f, _, ok := c.take(time.Now())
			if !ok {
				t.Fatal("no segment")
			}
			got, _, _ := c.aggregate(f, c.relative(f), *tt.want.Len, time.Now().Add(10*time.Millisecond))
			rows := diff(tt.want, got)
			var fields []string
			for _, r := range rows {
				fields = append(fields, r.Field)
			}
			if strings.Join(fields, ",") != tt.fail {
				t.Errorf("rows %v, want %q", rows, tt.fail)
			}
		})
	}
}
