package scripted

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
)

// TestBuildDecode: a segment the script builds decodes, with package
// capture's decoder, to the fields and options it was built with; the
// checksums are right (the live tests see the kernel accept them).
func TestBuildDecode(t *testing.T) {
	src, dst := netip.MustParseAddrPort("192.168.0.2:40000"), netip.MustParseAddrPort("192.168.0.101:8000")
	tests := []struct {
		name string
		w    wire
	}{
		{"bare SYN", wire{flags: SYN, seq: 7}},
		{"SYN with all", wire{flags: SYN, seq: 7, window: 64240, mss: Uint16(1400), wscale: Uint8(6), sackOK: true, ts: true, tsVal: 1000}},
		{"timestamps alone", wire{flags: ACK, seq: 8, ack: 9, ts: true, tsVal: 1, tsEcr: 2}},
		{"sackOK alone", wire{flags: SYN, sackOK: true}},
		{"data with SACK", wire{flags: PSH | ACK, seq: 8, ack: 9, ts: true, sack: []SACKBlock{{Left: 10, Right: 20}, {Left: 30, Right: 40}}, payload: []byte("abc")}},
		{"RST", wire{flags: RST, seq: 1 << 31}},
		{"urgent", wire{flags: PSH | ACK | URG, seq: 8, ack: 9, urgent: 1, payload: []byte("a")}},
	}
	dec, err := capture.NewDecoder(layers.LinkTypeRaw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			w.src, w.dst = src, dst
			b, err := w.frame()
			if err != nil {
				t.Fatal(err)
			}
			var seg capture.Segment
			if !dec.Decode(b, &seg) {
				t.Fatalf("%x does not decode as TCP", b)
			}
			if seg.Src != src || seg.Dst != dst || seg.Flags != w.flags || seg.Seq != w.seq || seg.Ack != w.ack || seg.Window != w.window || seg.Len != len(w.payload) {
				t.Errorf("decoded %+v; built %+v", seg, w)
			}
			if got := urgentOf(b); got != w.urgent {
				t.Errorf("urgent pointer %d; built %d", got, w.urgent)
			}
			if seg.Options != optionsOf(&w) {
				t.Errorf("options decode as %+v; built %+v", seg.Options, optionsOf(&w))
			}
			if len(b) < 40 || (b[32]>>4)*4%4 != 0 {
				t.Errorf("header length %d", b[32]>>4)
			}
		})
	}
	w := wire{src: src, dst: dst, ts: true, sack: make([]SACKBlock, 4)}
	if _, err := w.frame(); err == nil {
		t.Error("4 SACK blocks with timestamps built; want an error: 40 bytes of options at most")
	}
	w = wire{src: netip.MustParseAddrPort("[::1]:1"), dst: dst}
	if _, err := w.frame(); err == nil {
		t.Error("a segment from an IPv6 address to an IPv4 one built; want an error")
	}
	// IPv6: the frame decodes back with its addresses and fields.
	src6, dst6 := netip.MustParseAddrPort("[2001:db8::1]:8080"), netip.MustParseAddrPort("[fd3d:fa7b:d17d::1]:40000")
	w = wire{src: src6, dst: dst6, flags: SYN, seq: 7, window: 1000, mss: Uint16(1440), fastOpen: []byte{}, payload: []byte("hi")}
	b, err := w.frame()
	if err != nil {
		t.Fatal(err)
	}
	var seg capture.Segment
	if !dec.Decode(b, &seg) || b[0]>>4 != 6 {
		t.Fatalf("%x does not decode as TCP over IPv6", b)
	}
	if seg.Src != src6 || seg.Dst != dst6 || seg.Seq != 7 || seg.Len != 2 || seg.Options.MSS != 1440 || seg.Options.FastOpen != capture.FastOpenRequest {
		t.Errorf("decoded %+v; built %+v", seg, w)
	}
}
