package capture

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// segmentDiff returns an aligned table of the Segment fields that differ
// between got and want, or "" when they are equal.
func segmentDiff(got, want Segment) string {
	var b strings.Builder
	var walk func(name string, g, w reflect.Value)
	walk = func(name string, g, w reflect.Value) {
		if g.Kind() == reflect.Struct && g.Type() != reflect.TypeOf(time.Time{}) && g.Type() != reflect.TypeOf(netip.AddrPort{}) {
			for i := range g.NumField() {
				walk(name+"."+g.Type().Field(i).Name, g.Field(i), w.Field(i))
			}
			return
		}
		if !reflect.DeepEqual(g.Interface(), w.Interface()) {
			fmt.Fprintf(&b, "\n  %-22s got %-28v want %v", strings.TrimPrefix(name, "."), g.Interface(), w.Interface())
		}
	}
	walk("", reflect.ValueOf(got), reflect.ValueOf(want))
	return b.String()
}

func mustDecoder(tb testing.TB, l link) *Decoder {
	tb.Helper()
	d, err := NewDecoder(l.linkType())
	if err != nil {
		tb.Fatalf("NewDecoder(%v): %v", l, err)
	}
	return d
}

// endpoints returns a client and a server address of the family.
func endpoints(v6 bool) (netip.AddrPort, netip.AddrPort) {
	if v6 {
		return client6, server6
	}
	return client4, server4
}

// TestDecodeLinkTypes decodes a SYN and a data segment with SACK blocks on
// every link type, over IPv4 and IPv6, with and without IP options or IPv6
// extension headers, and checks every field of the Segment.
func TestDecodeLinkTypes(t *testing.T) {
	for l := link(0); l < numLinks; l++ {
		for _, v6 := range []bool{false, true} {
			if !l.carries(v6) {
				continue
			}
			for _, extra := range []bool{false, true} {
				name := fmt.Sprintf("%v/ipv4", l)
				if v6 {
					name = fmt.Sprintf("%v/ipv6", l)
				}
				if extra {
					name += "+options"
				}
				t.Run(name, func(t *testing.T) {
					testDecodeLink(t, l, v6, ipHeaders{v4Options: extra && !v6, v6Ext: extra && v6})
				})
			}
		}
	}
}

func testDecodeLink(t *testing.T, l link, v6 bool, ip ipHeaders) {
	src, dst := endpoints(v6)
	d := mustDecoder(t, l)
	tests := []struct {
		name string
		in   seg
		want Segment
	}{{
		name: "syn",
		in: seg{src: src, dst: dst, flags: SYN | ECE | CWR, seq: 0xfffffff0, win: 64240,
			opts: []layers.TCPOption{optMSS(1460), optSACKPerm(), optTS(0xdeadbeef, 0), optNOP(), optWScale(7)}},
		want: Segment{Src: src, Dst: dst, Flags: SYN | ECE | CWR, Seq: 0xfffffff0, Window: 64240,
			Options: Options{MSS: 1460, WindowScale: 7, SACKPermitted: true, HasTimestamps: true, TSVal: 0xdeadbeef}},
	}, {
		name: "data+sack",
		in: seg{src: dst, dst: src, flags: PSH | ACK | URG, seq: 7, ack: 0x80000000, win: 501, len: 1000,
			opts: []layers.TCPOption{optNOP(), optNOP(), optTS(11, 22), optNOP(), optNOP(),
				optSACK(100, 200, 300, 400, 0xfffffff0, 16)}},
		want: Segment{Src: dst, Dst: src, Flags: PSH | ACK | URG, Seq: 7, Ack: 0x80000000, Window: 501, Len: 1000,
			Options: Options{WindowScale: -1, HasTimestamps: true, TSVal: 11, TSEcr: 22, NSACK: 3,
				SACK: [4]SACKBlock{{100, 200}, {300, 400}, {0xfffffff0, 16}}}},
	}, {
		name: "fin-rst-no-options",
		in:   seg{src: src, dst: dst, flags: FIN | RST | ACK, seq: 1, ack: 2, win: 0},
		want: Segment{Src: src, Dst: dst, Flags: FIN | RST | ACK, Seq: 1, Ack: 2, Options: Options{WindowScale: -1}},
	}, {
		// Four SACK blocks fill 34 bytes: the largest option area a
		// header has room for with nothing else.
		name: "four-sack-blocks",
		in:   seg{src: src, dst: dst, flags: ACK, seq: 1, ack: 2, win: 9, opts: []layers.TCPOption{optNOP(), optNOP(), optSACK(1, 2, 3, 4, 5, 6, 7, 8)}},
		want: Segment{Src: src, Dst: dst, Flags: ACK, Seq: 1, Ack: 2, Window: 9, Options: Options{WindowScale: -1, NSACK: 4,
			SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}},
	}}
	for _, tc := range tests {
		tc.in.link, tc.in.ip = l, ip
		frame := tc.in.frame(t)
		var got Segment
		if !d.Decode(frame, &got) {
			t.Errorf("%s: Decode(%d bytes) = false, want true", tc.name, len(frame))
			continue
		}
		if diff := segmentDiff(got, tc.want); diff != "" {
			t.Errorf("%s: decoded segment differs:%s", tc.name, diff)
		}
	}
}

// TestDecodeTruncated cuts frames inside the TCP header, as a small snap
// length does. A cut in the fixed 20 bytes still yields a segment, marked
// Truncated, with the fields that were captured; a cut among the options
// loses only those options. Either way the payload length is the one the
// IP header states.
func TestDecodeTruncated(t *testing.T) {
	for _, tc := range []struct {
		l  link
		v6 bool
		ip ipHeaders
	}{
		{linkEthernet, false, ipHeaders{}},
		{linkEthernet, false, ipHeaders{v4Options: true}},
		{linkEthernet, true, ipHeaders{}},
		{linkEthernet, true, ipHeaders{v6Ext: true}},
		{linkSLL, false, ipHeaders{}},
		{linkSLL2, true, ipHeaders{}},
		{linkRaw, true, ipHeaders{v6Ext: true}},
		{linkNullLE, false, ipHeaders{}},
	} {
		src, dst := endpoints(tc.v6)
		s := seg{link: tc.l, ip: tc.ip, src: src, dst: dst, flags: PSH | ACK, seq: 1000, ack: 2000, win: 512, len: 300,
			opts: []layers.TCPOption{optNOP(), optNOP(), optTS(1, 2)}}
		full := s.frame(t)
		// The TCP header is the 32 bytes before the payload.
		tcpAt := len(full) - s.len - 32
		for _, cut := range []int{0, 3, 4, 12, 14, 16, 20, 31} {
			t.Run(fmt.Sprintf("%v/v6=%v/ext=%v/cut=%d", tc.l, tc.v6, tc.ip != ipHeaders{}, cut), func(t *testing.T) {
				var got Segment
				ok := mustDecoder(t, tc.l).DecodeFrame(full[:tcpAt+cut], gopacket.CaptureInfo{CaptureLength: tcpAt + cut, Length: len(full)}, &got)
				if cut < 4 {
					// Less than the ports: no segment, as tshark analyses none.
					if ok {
						t.Fatalf("Decode = true (%+v), want false", got)
					}
					return
				}
				if !ok {
					t.Fatalf("Decode = false, want a truncated segment")
				}
				want := Segment{Src: src, Dst: dst,
					Options: Options{WindowScale: -1}, Problem: HeaderCut, HeaderBytes: cut, Len: 300 + 32 - 20}
				if cut >= 8 {
					want.Seq = 1000
				}
				if cut >= 12 {
					want.Ack = 2000
				}
				if cut >= 14 {
					want.Flags, want.Len = PSH|ACK, 300
				}
				if cut >= 16 {
					want.Window = 512
				}
				if cut >= 20 {
					// Only options were cut; the timestamps option
					// (bytes 22-31) is whole only without a cut.
					want.Problem, want.HeaderBytes = OptionsCut, 0
				}
				if diff := segmentDiff(got, want); diff != "" {
					t.Errorf("segment cut %d bytes into the TCP header differs:%s", cut, diff)
				}
			})
		}
	}
}

// TestDecodeNotTCP checks the frames Decode must refuse: other protocols,
// later fragments, frames cut before the IP header ends, garbage.
func TestDecodeNotTCP(t *testing.T) {
	mac1, mac2 := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: et}
	}
	udp4 := func() []byte {
		ip, nl := ipLayers(client4.Addr(), server4.Addr(), layers.IPProtocolUDP, ipHeaders{})
		u := &layers.UDP{SrcPort: 5353, DstPort: 53}
		u.SetNetworkLayerForChecksum(nl)
		return serialize(t, append(append([]gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4)}, ip...), u, gopacket.Payload("query"))...)
	}
	udp6 := func() []byte {
		ip, nl := ipLayers(client6.Addr(), server6.Addr(), layers.IPProtocolUDP, ipHeaders{v6Ext: true})
		u := &layers.UDP{SrcPort: 5353, DstPort: 53}
		u.SetNetworkLayerForChecksum(nl)
		return serialize(t, append(ip, u, gopacket.Payload("query"))...)
	}
	icmp4 := func() []byte {
		ip, _ := ipLayers(client4.Addr(), server4.Addr(), layers.IPProtocolICMPv4, ipHeaders{})
		return serialize(t, append(append([]gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4)}, ip...),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1})...)
	}
	icmp6 := func() []byte {
		ip, nl := ipLayers(client6.Addr(), server6.Addr(), layers.IPProtocolICMPv6, ipHeaders{})
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
		ic.SetNetworkLayerForChecksum(nl)
		return serialize(t, append(append([]gopacket.SerializableLayer{eth(layers.EthernetTypeIPv6)}, ip...), ic, gopacket.Payload("ping"))...)
	}
	arp := func() []byte {
		return serialize(t, eth(layers.EthernetTypeARP), &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: mac1, SourceProtAddress: []byte{10, 0, 0, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}})
	}
	// A later fragment of a TCP segment: its first bytes are payload, not
	// a TCP header.
	frag4 := func() []byte {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, FragOffset: 185,
			SrcIP: client4.Addr().AsSlice(), DstIP: server4.Addr().AsSlice()}
		return serialize(t, eth(layers.EthernetTypeIPv4), ip, gopacket.Payload(payloadBytes(64)))
	}
	frag6 := func() []byte {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Fragment,
			SrcIP: client6.Addr().AsSlice(), DstIP: server6.Addr().AsSlice()}
		// Fragment header: next header TCP, offset 185 (8-byte units), M=0.
		fh := rawBytes{byte(layers.IPProtocolTCP), 0, 185 >> 5, (185 << 3) & 0xff, 0, 0, 0, 1}
		return serialize(t, eth(layers.EthernetTypeIPv6), ip, fh, gopacket.Payload(payloadBytes(64)))
	}
	tcp := seg{link: linkEthernet, src: client4, dst: server4, flags: ACK, seq: 1, ack: 1, win: 1}.frame(t)
	// A data offset of 4 words: shorter than the fixed header (found by
	// FuzzDecode; it used to panic).
	badOffset := seg{link: linkEthernet, src: client4, dst: server4, flags: ACK, seq: 1, ack: 1, win: 1, len: 20}.frame(t)
	badOffset[14+20+12] = 4 << 4
	tests := []struct {
		name string
		l    link
		data []byte
	}{
		{"udp", linkEthernet, udp4()},
		{"udp6-raw", linkRaw, udp6()},
		{"icmp", linkEthernet, icmp4()},
		{"icmp6", linkEthernet, icmp6()},
		{"arp", linkEthernet, arp()},
		{"ipv4-later-fragment", linkEthernet, frag4()},
		{"ipv6-later-fragment", linkEthernet, frag6()},
		{"empty", linkEthernet, nil},
		{"empty-raw", linkRaw, nil},
		{"ethernet-only", linkEthernet, tcp[:14]},
		{"ip-header-cut", linkEthernet, tcp[:14+12]},
		{"raw-not-ip", linkRaw, []byte{0x50, 1, 2, 3}},
		{"garbage", linkEthernet, []byte("this is not a frame at all, it is text")},
		{"tcp-data-offset-below-5", linkEthernet, badOffset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Segment
			if mustDecoder(t, tc.l).Decode(tc.data, &s) {
				t.Errorf("Decode(%s) = true (%+v), want false", tc.name, s)
			}
		})
	}
}

// TestDecodeEthernetExtras covers Ethernet details: a VLAN tag, and the
// padding of a short frame, which must not count as payload.
func TestDecodeEthernetExtras(t *testing.T) {
	s := seg{link: linkEthernet, src: client4, dst: server4, flags: ACK, seq: 5, ack: 6, win: 7}
	want := Segment{Src: client4, Dst: server4, Flags: ACK, Seq: 5, Ack: 6, Window: 7, Options: Options{WindowScale: -1}}

	padded := append(s.frame(t), make([]byte, 6)...) // 54 bytes padded to the minimum of 60
	var got Segment
	if !mustDecoder(t, linkEthernet).Decode(padded, &got) {
		t.Fatal("padded frame: Decode = false")
	}
	if diff := segmentDiff(got, want); diff != "" {
		t.Errorf("padded frame differs:%s", diff)
	}

	ip, nl := ipLayers(client4.Addr(), server4.Addr(), layers.IPProtocolTCP, ipHeaders{})
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 5, Ack: 6, ACK: true, Window: 7}
	tcp.SetNetworkLayerForChecksum(nl)
	vlan := serialize(t, append([]gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4},
	}, append(ip, tcp)...)...)
	got = Segment{}
	if !mustDecoder(t, linkEthernet).Decode(vlan, &got) {
		t.Fatal("VLAN frame: Decode = false")
	}
	if diff := segmentDiff(got, want); diff != "" {
		t.Errorf("VLAN frame differs:%s", diff)
	}
}

// TestNewDecoderUnsupported checks the error for a link type tcplab does
// not read, and that every framing of the tests is supported.
func TestNewDecoderUnsupported(t *testing.T) {
	for _, lt := range []layers.LinkType{layers.LinkTypeTokenRing, 195, 147} {
		_, err := NewDecoder(lt)
		if !errors.Is(err, ErrUnsupportedLinkType) {
			t.Errorf("NewDecoder(%d) error = %v, want ErrUnsupportedLinkType", lt, err)
			continue
		}
		// One line naming the link type and listing the supported ones.
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, fmt.Sprintf(" %d ", lt)) {
			t.Errorf("NewDecoder(%d) error %q: want one line naming the link type", lt, msg)
		}
		for _, name := range []string{"Ethernet", "FDDI", "PPP", "Null/Loop", "raw IP", "SLL2", "NFLOG", "InfiniBand"} {
			if !strings.Contains(msg, name) {
				t.Errorf("NewDecoder(%d) error %q does not list %s", lt, msg, name)
			}
		}
	}
	for l := link(0); l < numLinks; l++ {
		if _, err := NewDecoder(l.linkType()); err != nil {
			t.Errorf("NewDecoder(%d) for %v: %v", l.linkType(), l, err)
		}
	}
}

// TestDecodeAllocs checks that decoding allocates nothing, on every link
// type and family, once the decoder has seen a frame of the shape.
func TestDecodeAllocs(t *testing.T) {
	for l := link(0); l < numLinks; l++ {
		for _, v6 := range []bool{false, true} {
			if !l.carries(v6) {
				continue
			}
			src, dst := endpoints(v6)
			d := mustDecoder(t, l)
			frames := [][]byte{
				seg{link: l, src: src, dst: dst, flags: SYN, seq: 1, win: 9, opts: synOptions()}.frame(t),
				seg{link: l, src: src, dst: dst, flags: ACK, seq: 1, ack: 1, win: 9, len: 1448,
					opts: []layers.TCPOption{optNOP(), optNOP(), optTS(1, 2)}}.frame(t),
				seg{link: l, src: src, dst: dst, flags: ACK, seq: 1, ack: 1, win: 9, ip: ipHeaders{v4Options: !v6, v6Ext: v6},
					opts: []layers.TCPOption{optNOP(), optNOP(), optTS(1, 2), optNOP(), optNOP(), optSACK(5, 6, 7, 8)}}.frame(t),
			}
			truncated := frames[1][:len(frames[1])-1448-10]
			var s Segment
			for _, f := range frames {
				d.Decode(f, &s)
			}
			i := 0
			allocs := testing.AllocsPerRun(1000, func() {
				if !d.Decode(frames[i%len(frames)], &s) {
					t.Fatal("Decode = false")
				}
				i++
			})
			if allocs != 0 {
				t.Errorf("%v v6=%v: Decode allocates %.1f times a frame, want 0", l, v6, allocs)
			}
			// A cut header takes the error path of gopacket's TCP layer,
			// which builds a new error value each time: known, logged.
			if a := testing.AllocsPerRun(100, func() { d.Decode(truncated, &s) }); a != 0 && l == linkEthernet {
				t.Logf("v6=%v: Decode of a frame cut in the TCP options allocates %.1f times (gopacket's error value)", v6, a)
			}
		}
	}
}

// TestAnnotateAllocs checks that annotating a segment of a known connection
// allocates nothing.
func TestAnnotateAllocs(t *testing.T) {
	c := conv{steps: handshake()}
	got, a := c.annotate(t)
	cl, sv := got[2].seg, got[1].seg
	data := cl
	data.Flags, data.Len = PSH|ACK, 100
	ack := sv
	ack.Flags = ACK
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		data.Seq += 100
		data.Time = data.Time.Add(time.Millisecond)
		a.Annotate(&data)
		ack.Ack = data.Seq + 100
		ack.Time = data.Time
		if i%3 == 0 {
			a.Annotate(&ack)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("Annotate on an existing connection allocates %.1f times, want 0", allocs)
	}
}

func init() {
	// Let a panic in Decode through, so that tests and the fuzzer see it
	// instead of a frame without TCP.
	letPanicsThrough = true
}
