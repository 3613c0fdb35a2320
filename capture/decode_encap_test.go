package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// testEncaps returns the tunnel stacks the tests run: every tunnel alone,
// then mixes of them, up to a stack nine deep.
func testEncaps() []encap {
	var out []encap
	for t := tunnel(0); t < numTunnels; t++ {
		out = append(out, encap{t})
	}
	return append(out,
		encap{tunQinQ, tunVLAN},
		encap{tunVLAN, tunQinQ},
		encap{tunVLAN, tunLLC},
		encap{tunVLAN, tunMPLS},
		encap{tunQinQ, tunVLAN, tunPPPoE},
		encap{tunLLC, tunVLAN},
		encap{tunMPLS, tunGRE},
		encap{tunVLAN, tunGRE, tunMPLS},
		encap{tunVXLAN, tunVLAN},
		encap{tunGRETEB, tunQinQ, tunVLAN},
		encap{tunERSPAN2, tunVLAN, tunMPLS},
		encap{tunERSPAN3, tunPPPoE},
		encap{tunGeneve, tunVXLAN},
		encap{tunIPv6, tunGRE6, tunIPv4},
		encap{tunVLAN, tunMPLS, tunGTPU},
		encap{tunIPv4, tunIPv4, tunIPv6},
		encap{tunFabricPath, tunVLAN},
		encap{tunVLAN, tunFabricPath},
		encap{tunETag, tunVLAN, tunMPLS},
		encap{tunVXLAN, tunFabricPath},
		encap{tunAruba, tunVLAN},
		encap{tunCAPWAP, tunMPLS},
		encap{tunCAPWAP3, tunETag},
		encap{tunQinQ, tunVLAN, tunMPLS, tunIPv4, tunGRETEB, tunVLAN, tunIPv6, tunVXLAN, tunVLAN},
	)
}

// outerNext returns what the link header of a frame with the stack e
// announces, for an inner packet of the family.
func outerNext(tb testing.TB, e encap, v6 bool) next {
	inner := nextIPv4
	if v6 {
		inner = nextIPv6
	}
	_, n := e.layers(tb, inner, false)
	return n
}

// linksFor returns the framings a stack is tested on: Ethernet, and one
// more that carries what the stack starts with, chosen by i so that every
// framing gets its turn.
func linksFor(tb testing.TB, e encap, v6 bool, i int) []link {
	n := outerNext(tb, e, v6)
	if len(e) > 1 && e[0] == tunVLAN && e[1] == tunFabricPath {
		// Wireshark finds FabricPath behind an 802.1Q tag only in an
		// Ethernet header.
		return []link{linkEthernet}
	}
	var other []link
	for l := linkEthernet + 1; l < numLinks; l++ {
		if l.carriesNext(n) {
			other = append(other, l)
		}
	}
	if len(other) == 0 {
		return []link{linkEthernet}
	}
	return []link{linkEthernet, other[i%len(other)]}
}

// TestDecodeEncapsulations decodes a SYN and a data segment with SACK
// blocks inside every tunnel stack, over IPv4 and IPv6 with IP options or
// IPv6 extension headers, and checks every field: the addresses are the
// inner IP header's, the payload length the inner IP header's.
func TestDecodeEncapsulations(t *testing.T) {
	for i, e := range testEncaps() {
		for _, v6 := range []bool{false, true} {
			for _, l := range linksFor(t, e, v6, i) {
				t.Run(fmt.Sprintf("%v/%v/v6=%v", e, l, v6), func(t *testing.T) {
					src, dst := endpoints(v6)
					d := mustDecoder(t, l)
					ip := ipHeaders{v4Options: !v6, v6Ext: v6}
					for _, tc := range []struct {
						in   seg
						want Segment
					}{{
						in: seg{src: src, dst: dst, flags: SYN, seq: 0xfffffff0, win: 64240, opts: synOptions()},
						want: Segment{Src: src, Dst: dst, Flags: SYN, Seq: 0xfffffff0, Window: 64240,
							Options: Options{MSS: 1460, WindowScale: 7, SACKPermitted: true, HasTimestamps: true, TSVal: 1}},
					}, {
						in: seg{src: dst, dst: src, flags: PSH | ACK, seq: 7, ack: 9, win: 501, len: 1000, back: true,
							opts: []layers.TCPOption{optNOP(), optNOP(), optSACK(100, 200)}},
						want: Segment{Src: dst, Dst: src, Flags: PSH | ACK, Seq: 7, Ack: 9, Window: 501, Len: 1000,
							Options: Options{WindowScale: -1, NSACK: 1, SACK: [4]SACKBlock{{100, 200}}}},
					}} {
						tc.in.link, tc.in.encap, tc.in.ip = l, e, ip
						frame := tc.in.frame(t)
						var got Segment
						if !d.Decode(frame, &got) {
							t.Fatalf("%v: Decode(%d bytes) = false, want true", tc.in.flags, len(frame))
						}
						if diff := segmentDiff(got, tc.want); diff != "" {
							t.Errorf("%v: decoded segment differs:%s", tc.in.flags, diff)
						}
					}
				})
			}
		}
	}
}

// TestDecodeEncapTruncated cuts encapsulated frames inside the inner TCP
// header: the segment is marked truncated, has the inner addresses and the
// payload length of the inner IP header.
func TestDecodeEncapTruncated(t *testing.T) {
	for _, e := range testEncaps() {
		for _, v6 := range []bool{false, true} {
			src, dst := endpoints(v6)
			s := seg{encap: e, src: src, dst: dst, flags: PSH | ACK, seq: 1000, ack: 2000, win: 512, len: 300,
				opts: []layers.TCPOption{optNOP(), optNOP(), optTS(1, 2)}}
			full := s.frame(t)
			tcpAt := len(full) - e.trailer() - s.len - 32
			for _, cut := range []int{0, 3, 4, 13, 16, 20} {
				var got Segment
				ok := mustDecoder(t, linkEthernet).DecodeFrame(full[:tcpAt+cut], gopacket.CaptureInfo{CaptureLength: tcpAt + cut, Length: len(full)}, &got)
				if cut < 4 {
					if ok {
						t.Errorf("%v v6=%v cut %d: Decode = true, want false (less than the ports)", e, v6, cut)
					}
					continue
				}
				if !ok {
					t.Errorf("%v v6=%v cut %d: Decode = false, want a segment", e, v6, cut)
					continue
				}
				want := Segment{Src: src, Dst: dst,
					Options: Options{WindowScale: -1}, Problem: OptionsCut, Len: 300 + 32 - 20}
				if cut < 20 {
					want.Problem, want.HeaderBytes = HeaderCut, cut
				}
				if cut >= 8 {
					want.Seq, want.Ack = 1000, 2000
				}
				if cut >= 16 {
					want.Flags, want.Len, want.Window = PSH|ACK, 300, 512
				}
				if diff := segmentDiff(got, want); diff != "" {
					t.Errorf("%v v6=%v cut %d: segment differs:%s", e, v6, cut, diff)
				}
			}
		}
	}
}

// icmpError returns an ICMP (ICMPv6 for an IPv6 packet) destination
// unreachable message from a router that quotes packet, an IP packet with
// its TCP header, as an error does: with outer IP header, no link header.
func icmpError(t testing.TB, packet []byte, v6 bool) []gopacket.SerializableLayer {
	if v6 {
		ip, nl := ipLayers(netip.MustParseAddr("2001:db8::fe"), client6.Addr(), layers.IPProtocolICMPv6, ipHeaders{})
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeDestinationUnreachable, layers.ICMPv6CodePortUnreachable)}
		if err := ic.SetNetworkLayerForChecksum(nl); err != nil {
			t.Fatal(err)
		}
		return append(ip, ic, rawBytes{0, 0, 0, 0}, gopacket.Payload(packet))
	}
	ip, _ := ipLayers(netip.MustParseAddr("10.0.0.254"), client4.Addr(), layers.IPProtocolICMPv4, ipHeaders{})
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded), Seq: 1400}
	return append(ip, ic, gopacket.Payload(packet))
}

// frameCase is a frame of a framing, for table tests and fuzz seeds.
type frameCase struct {
	name string
	l    link
	data []byte
	v6   bool // the segment in it is IPv6
}

// refusedFrames returns frames Decode must refuse although they hold a TCP
// header or look like a tunnel: TCP quoted in ICMP errors, UDP to other
// ports, tunnel messages that carry no packet, payloads that are not IP,
// headers cut short, nesting too deep.
func refusedFrames(t testing.TB) []frameCase {
	tcp4 := seg{link: linkRaw, src: client4, dst: server4, flags: PSH | ACK, seq: 1, ack: 1, win: 1, len: 100}.frame(t)
	tcp6 := seg{link: linkRaw, src: client6, dst: server6, flags: PSH | ACK, seq: 1, ack: 1, win: 1, len: 100}.frame(t)
	eth4 := append([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}, tcp4...)
	outer := func(proto layers.IPProtocol, ls ...gopacket.SerializableLayer) []byte {
		ip, _, _ := outerIP(false, false, proto)
		return serialize(t, append([]gopacket.SerializableLayer{ethernet(nextIPv4), ip}, ls...)...)
	}
	udp := func(sport, dport layers.UDPPort, payload ...gopacket.SerializableLayer) []byte {
		ip, nl, _ := outerIP(false, false, layers.IPProtocolUDP)
		u := &layers.UDP{SrcPort: sport, DstPort: dport}
		u.SetNetworkLayerForChecksum(nl)
		return serialize(t, append([]gopacket.SerializableLayer{ethernet(nextIPv4), ip, u}, payload...)...)
	}
	gtp := func(flags, msgType byte) gopacket.SerializableLayer {
		h := []byte{flags, msgType, 0, 0, 0, 0, 0, 1}
		if flags&0x07 != 0 {
			h = append(h, 0, 1, 0, 0) // sequence number 1, no extension header
		}
		binary.BigEndian.PutUint16(h[2:], uint16(len(h)-8+len(tcp4)))
		return rawBytes(append(h, tcp4...))
	}
	gre := func(proto uint16, body ...byte) gopacket.SerializableLayer {
		return rawBytes(append(binary.BigEndian.AppendUint16([]byte{0x10, 0}, proto), append([]byte{0, 0, 0, 1}, body...)...))
	}
	withEth := func(et uint16, body []byte) []byte {
		return append(binary.BigEndian.AppendUint16([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}, uint16(et)), body...)
	}
	llc := func(b ...byte) []byte {
		body := append(b, tcp4...)
		return withEth(uint16(len(body)), body)
	}
	laterFragment := outer(layers.IPProtocolGRE, gre(0x0800), gopacket.Payload(tcp4))
	laterFragment[14+6] = 0x00
	laterFragment[14+7] = 0x10 // fragment offset 16 (128 bytes)
	nested := tcp4
	for range maxHeaders {
		nested = serialize(t, ipLayersOf(t, layers.IPProtocolIPv4), gopacket.Payload(nested))
	}
	nflogLE := func(family byte, tlvs ...[]byte) []byte {
		b := []byte{family, 0, 0, 5}
		for _, tlv := range tlvs {
			b = append(b, tlv...)
		}
		return b
	}
	tlv := func(typ uint16, v []byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, uint16(4+len(v)))
		b = binary.LittleEndian.AppendUint16(b, typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	return []frameCase{
		{"icmp-quoting-tcp", linkEthernet, serialize(t, append([]gopacket.SerializableLayer{ethernet(nextIPv4)}, icmpError(t, tcp4, false)...)...), false},
		{"icmp6-quoting-tcp", linkEthernet, serialize(t, append([]gopacket.SerializableLayer{ethernet(nextIPv6)}, icmpError(t, tcp6, true)...)...), false},
		{"icmp-quoting-tcp-in-gre", linkEthernet, outer(layers.IPProtocolGRE, append([]gopacket.SerializableLayer{gre(0x0800)}, icmpError(t, tcp4, false)...)...), false},
		{"udp-other-port", linkEthernet, udp(40000, 4790, &layers.VXLAN{ValidIDFlag: true, VNI: 1}, gopacket.Payload(eth4)), false},
		{"gtp-echo", linkEthernet, udp(2152, 2152, gtp(0x32, 1)), false},
		{"gtpv2", linkEthernet, udp(2152, 2152, gtp(0x48, 0xff)), false},
		{"gtp-prime", linkEthernet, udp(2152, 2152, gtp(0x20, 0xff)), false},
		{"gtp-bad-extension", linkEthernet, udp(2152, 2152, rawBytes(append([]byte{0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 0, 0, 0, 0}, tcp4...))), false},
		{"mpls-ethernet-payload", linkEthernet, withEth(0x8847, append([]byte{0, 1, 0x11, 64}, eth4...)), false},
		{"mpls-no-bottom", linkEthernet, withEth(0x8847, []byte{0, 1, 0x10, 64, 0, 2, 0x10, 64}), false},
		{"erspan3-frame-type-ip", linkEthernet, outer(layers.IPProtocolGRE, gre(0x22eb, 0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x08, 0), gopacket.Payload(eth4)), false},
		{"erspan-version-0", linkEthernet, outer(layers.IPProtocolGRE, gre(0x88be, 0x00, 10, 0, 1, 0, 0, 0, 0), gopacket.Payload(eth4)), false},
		{"gre-unknown-protocol", linkEthernet, outer(layers.IPProtocolGRE, gre(0x0001), gopacket.Payload(tcp4)), false},
		{"gre-cut-in-key", linkEthernet, outer(layers.IPProtocolGRE, rawBytes{0x20, 0, 0x08, 0, 0, 0}), false},
		{"gre-routing-cut", linkEthernet, outer(layers.IPProtocolGRE, rawBytes{0x40, 0, 0x08, 0, 0, 0, 0, 0, 0x08, 0, 0, 8, 1, 2}), false},
		{"outer-later-fragment", linkEthernet, laterFragment, false},
		{"pppoe-discovery", linkEthernet, withEth(0x8863, append([]byte{0x11, 0, 0, 1, 0, 102, 0, 0x21}, tcp4...)), false},
		{"ppp-lcp", linkPPP, append([]byte{0xc0, 0x21}, tcp4...), false},
		{"ppp-empty", linkPPPHDLC, []byte{0xff}, false},
		{"cisco-hdlc-vlan", linkCiscoHDLC, append([]byte{0x0f, 0, 0x81, 0, 0, 5, 0x08, 0}, tcp4...), false},
		{"llc-stp", linkEthernet, llc(0x42, 0x42, 0x03), false},
		{"snap-cisco-oui", linkEthernet, llc(0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x08, 0x00), false},
		{"ipv6-ethertype-ipv4-packet", linkEthernet, withEth(0x86dd, tcp4), false},
		{"ipv4-version-5", linkEthernet, withEth(0x0800, append([]byte{0x55}, tcp4[1:]...)), false},
		{"vxlan-cut", linkEthernet, udp(40000, 4789, rawBytes{8, 0, 0}), false},
		{"geneve-options-cut", linkEthernet, udp(40000, 6081, rawBytes{0x3f, 0, 0x65, 0x58, 0, 0, 1, 0}), false},
		{"nesting-too-deep", linkRaw, nested, false},
		{"nflog-no-payload", linkNFLOG, nflogLE(2, tlv(1, []byte{8, 0, 3, 0}), tlv(10, []byte("x\x00"))), false},
		{"nflog-short-tlv", linkNFLOG, nflogLE(2, tlv(9, tcp4), []byte{2, 0, 5, 0}), false},
		{"nflog-bridge-family", linkNFLOG, nflogLE(7, tlv(9, tcp4)), false},
		{"fddi-smt-frame", linkFDDI, append([]byte{0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xaa, 3, 0, 0, 0, 8, 0}, tcp4...), false},
		{"ipoib-arp", linkIPoIB, append(append(make([]byte, 40), 0x08, 0x06, 0, 0), tcp4...), false},
		{"ipoib-cut", linkIPoIB, make([]byte, 43), false},
	}
}

// TestDecodeEncapNotTCP checks that Decode refuses the refusedFrames.
func TestDecodeEncapNotTCP(t *testing.T) {
	for _, tc := range refusedFrames(t) {
		t.Run(tc.name, func(t *testing.T) {
			var s Segment
			if mustDecoder(t, tc.l).Decode(tc.data, &s) {
				t.Errorf("Decode(%s) = true (%+v), want false", tc.name, s)
			}
		})
	}
}

// ipLayersOf returns an IPv4 header between the test tunnel ends carrying
// proto.
func ipLayersOf(t testing.TB, proto layers.IPProtocol) gopacket.SerializableLayer {
	ip, _, _ := outerIP(false, false, proto)
	return ip
}

// TestDecodeNesting nests IP in IP as deep as Decode follows and one level
// deeper: the first yields the segment, the second nothing, and neither
// loops.
func TestDecodeNesting(t *testing.T) {
	packet := seg{link: linkRaw, src: client4, dst: server4, flags: ACK, seq: 1, ack: 1, win: 1}.frame(t)
	for depth := 1; depth <= maxHeaders; depth++ {
		packet = serialize(t, ipLayersOf(t, layers.IPProtocolIPv4), gopacket.Payload(packet))
		var s Segment
		// maxHeaders headers in all: depth outer IPv4, the inner IPv4,
		// and the TCP header take depth+2 steps.
		want := depth+1 < maxHeaders
		if got := mustDecoder(t, linkRaw).Decode(packet, &s); got != want || got && (s.Src != client4 || s.Dst != server4) {
			t.Errorf("%d headers of IP in IP: Decode = %v (%v > %v), want %v", depth, got, s.Src, s.Dst, want)
		}
	}
}

// variantFrames returns frames that exercise choices inside the headers:
// each holds a segment from client4 to server4 (client6 to server6 when
// v6) with PSH and ACK, seq and ack 1, window 1 and 100 bytes of payload.
func variantFrames(t testing.TB) []frameCase {
	tcp4 := seg{link: linkRaw, src: client4, dst: server4, flags: PSH | ACK, seq: 1, ack: 1, win: 1, len: 100}.frame(t)
	tcp6 := seg{link: linkRaw, src: client6, dst: server6, flags: PSH | ACK, seq: 1, ack: 1, win: 1, len: 100}.frame(t)
	eth := func(et int, body ...byte) []byte {
		return append(binary.BigEndian.AppendUint16([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}, uint16(et)), body...)
	}
	eth4 := eth(0x0800, tcp4...)
	outer := func(proto layers.IPProtocol, ls ...gopacket.SerializableLayer) []byte {
		ip, _, _ := outerIP(false, false, proto)
		return serialize(t, append([]gopacket.SerializableLayer{ethernet(nextIPv4), ip}, ls...)...)
	}
	udp := func(sport, dport layers.UDPPort, payload ...gopacket.SerializableLayer) []byte {
		ip, nl, _ := outerIP(false, false, layers.IPProtocolUDP)
		u := &layers.UDP{SrcPort: sport, DstPort: dport}
		u.SetNetworkLayerForChecksum(nl)
		return serialize(t, append([]gopacket.SerializableLayer{ethernet(nextIPv4), ip, u}, payload...)...)
	}
	be16 := func(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
	le16 := func(v int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(v)) }
	cat := func(bs ...[]byte) []byte { return slices.Concat(bs...) }
	sllGRE := make([]byte, 20)
	binary.BigEndian.PutUint16(sllGRE[0:], 0x0800) // protocol: a GRE protocol type
	binary.BigEndian.PutUint16(sllGRE[8:], 778)    // ARPHRD_IPGRE
	return []frameCase{
		// Wireshark's IPv4 dissector hands a version 6 packet to IPv6.
		{"ipv4-ethertype-ipv6-packet", linkEthernet, eth(0x0800, tcp6...), true},
		{"qinq-9100", linkEthernet, eth(0x9100, cat([]byte{0, 5, 0x81, 0}, []byte{0, 6, 0x08, 0}, tcp4)...), false},
		{"pppoe-padding", linkEthernet, eth(0x8864, cat([]byte{0x11, 0, 0, 1}, be16(2+len(tcp4)), []byte{0, 0x21}, tcp4, make([]byte, 12))...), false},
		{"pppoe-compressed-protocol", linkEthernet, eth(0x8864, cat([]byte{0x11, 0, 0, 1}, be16(1+len(tcp6)), []byte{0x57}, tcp6)...), true},
		{"ppp-uncompressed", linkPPP, cat([]byte{0, 0x21}, tcp4), false},
		{"ppp-hdlc-address-control", linkPPP, cat([]byte{0xff, 0x03, 0, 0x57}, tcp6), true},
		{"ppp-cisco-hdlc", linkPPP, cat([]byte{0x8f, 0, 0x86, 0xdd}, tcp6), true},
		{"cisco-hdlc-teb", linkCiscoHDLC, cat([]byte{0x0f, 0, 0x65, 0x58}, eth(0x0800, tcp4...)), false},
		{"ppp-mpls", linkPPPHDLC, cat([]byte{0xff, 0x03, 0x02, 0x81, 0, 1, 0x11, 64}, tcp4), false},
		{"ppp-dir-compressed", linkPPPDir, cat([]byte{1, 0x21}, tcp4), false},
		{"mpls-three-labels-ipv6", linkEthernet, eth(0x8848, cat([]byte{0, 1, 0x10, 64, 0, 2, 0x10, 64, 0, 3, 0x11, 64}, tcp6)...), true},
		{"llc-sap-ip", linkEthernet, eth(3+len(tcp4), cat([]byte{0x06, 0x06, 0x03}, tcp4)...), false},
		{"snap-cisco-90", linkEthernet, eth(8+len(tcp4), cat([]byte{0xaa, 0xaa, 0x03, 0, 0, 0xf8, 0x08, 0}, tcp4)...), false},
		{"ethernet-teb-ethertype", linkEthernet, eth(0x6558, eth4...), false},
		{"gre-routing", linkEthernet, outer(layers.IPProtocolGRE, rawBytes{0x40, 0, 0x08, 0, 0, 0, 0, 0, 0x08, 0, 0, 4, 1, 2, 3, 4, 0, 0, 0, 0}, gopacket.Payload(tcp4)), false},
		{"gre-v0-ack-bit-ignored", linkEthernet, outer(layers.IPProtocolGRE, rawBytes{0, 0x80, 0x08, 0}, gopacket.Payload(tcp4)), false},
		{"gre-pptp", linkEthernet, outer(layers.IPProtocolGRE, rawBytes(cat([]byte{0x30, 0x81, 0x88, 0x0b}, be16(len(tcp4)+4), []byte{0, 7, 0, 0, 0, 1, 0, 0, 0, 0}, []byte{0xff, 0x03, 0, 0x21})), gopacket.Payload(tcp4)), false},
		{"gre-pptp-no-address", linkEthernet, outer(layers.IPProtocolGRE, rawBytes(cat([]byte{0x20, 0x01, 0x88, 0x0b}, be16(len(tcp4)+1), []byte{0, 7, 0x21})), gopacket.Payload(tcp4)), false},
		{"erspan3-no-gre-seq", linkEthernet, outer(layers.IPProtocolGRE, rawBytes{0, 0, 0x22, 0xeb, 0x20, 10, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0}, gopacket.Payload(eth4)), false},
		{"erspan3-in-88be", linkEthernet, outer(layers.IPProtocolGRE, rawBytes{0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x20, 10, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0}, gopacket.Payload(eth4)), false},
		{"vxlan-source-port", linkEthernet, udp(4789, 50000, &layers.VXLAN{ValidIDFlag: true, VNI: 1}, gopacket.Payload(eth4)), false},
		{"vxlan-no-i-flag", linkEthernet, udp(50000, 4789, rawBytes{0, 0, 0, 0, 0, 0, 1, 0}, gopacket.Payload(eth4)), false},
		{"geneve-ip-payload", linkEthernet, udp(50000, 6081, rawBytes{0x01, 0, 0x86, 0xdd, 0, 0, 7, 0, 1, 2, 0x80, 0}, gopacket.Payload(tcp6)), true},
		{"gtpu-two-extensions", linkEthernet, udp(2152, 2152, rawBytes(cat([]byte{0x34, 0xff}, be16(4+8+len(tcp6)), []byte{0, 0, 0, 1, 0, 0, 0, 0x85}, []byte{1, 0x10, 9, 0x40, 1, 1, 0, 0})), gopacket.Payload(tcp6)), true},
		{"gtpu-padding-after-length", linkEthernet, udp(2152, 2152, rawBytes(cat([]byte{0x30, 0xff}, be16(len(tcp4)), []byte{0, 0, 0, 1}, tcp4, []byte{0, 0, 0, 0}))), false},
		{"ip-in-ipv6", linkRaw, serialize(t, outerIP6(t, layers.IPProtocolIPv4), gopacket.Payload(tcp4)), false},
		{"mpls-in-ip", linkRaw, serialize(t, ipLayersOf(t, 137), rawBytes{0, 1, 0x11, 64}, gopacket.Payload(tcp6)), true},
		{"sll2-ipgre", linkSLL2, cat(sllGRE, tcp4), false},
		{"nflog-big-endian", linkNFLOG, cat([]byte{10, 0, 0, 5}, be16(8), be16(1), []byte{0x86, 0xdd, 3, 0}, be16(4+len(tcp6)), be16(9), tcp6), true},
		{"nflog-hw-protocol-over-family", linkNFLOG, cat([]byte{2, 0, 0, 5}, le16(8), le16(1), []byte{0x86, 0xdd, 3, 0}, le16(4+len(tcp6)), le16(9), tcp6), true},
		{"nflog-family-only", linkNFLOG, cat([]byte{2, 0, 0, 5}, le16(4+len(tcp4)), le16(9), tcp4), false},
		{"nflog-nested-flag", linkNFLOG, cat([]byte{2, 0, 0, 5}, le16(4+len(tcp4)), le16(0x8009), tcp4), false},
		{"nflog-payload-cut", linkNFLOG, cat([]byte{2, 0, 0, 5}, le16(4+len(tcp4)+50), le16(9), tcp4), false},
		{"fddi-llc-5f", linkFDDI, cat([]byte{0x5f}, make([]byte, 12), []byte{0xaa, 0xaa, 3, 0, 0, 0, 8, 0}, tcp4), false},
	}
}

// TestDecodeEncapVariants decodes the variantFrames.
func TestDecodeEncapVariants(t *testing.T) {
	for _, tc := range variantFrames(t) {
		t.Run(tc.name, func(t *testing.T) {
			want := Segment{Src: client4, Dst: server4, Flags: PSH | ACK, Seq: 1, Ack: 1, Window: 1, Len: 100, Options: Options{WindowScale: -1}}
			if tc.v6 {
				want.Src, want.Dst = client6, server6
			}
			var got Segment
			if !mustDecoder(t, tc.l).Decode(tc.data, &got) {
				t.Fatalf("Decode = false, want a segment")
			}
			if diff := segmentDiff(got, want); diff != "" {
				t.Errorf("segment differs:%s", diff)
			}
		})
	}
}

// outerIP6 returns an IPv6 header between the test tunnel ends carrying
// proto.
func outerIP6(t testing.TB, proto layers.IPProtocol) gopacket.SerializableLayer {
	ip, _, _ := outerIP(true, false, proto)
	return ip
}

// TestDecodeEncapAllocs checks that decoding encapsulated frames allocates
// nothing, stack by stack, once the decoder has seen a frame of the shape.
func TestDecodeEncapAllocs(t *testing.T) {
	for _, e := range testEncaps() {
		for _, v6 := range []bool{false, true} {
			src, dst := endpoints(v6)
			d := mustDecoder(t, linkEthernet)
			frames := [][]byte{
				seg{encap: e, src: src, dst: dst, flags: SYN, seq: 1, win: 9, opts: synOptions()}.frame(t),
				seg{encap: e, src: dst, dst: src, back: true, flags: ACK, seq: 1, ack: 1, win: 9, len: 1200, ip: ipHeaders{v4Options: !v6, v6Ext: v6},
					opts: []layers.TCPOption{optNOP(), optNOP(), optTS(1, 2), optNOP(), optNOP(), optSACK(5, 6, 7, 8)}}.frame(t),
			}
			var s Segment
			for _, f := range frames {
				d.Decode(f, &s)
			}
			i := 0
			allocs := testing.AllocsPerRun(200, func() {
				if !d.Decode(frames[i%len(frames)], &s) {
					t.Fatal("Decode = false")
				}
				i++
			})
			if allocs != 0 {
				t.Errorf("%v v6=%v: Decode allocates %.1f times a frame, want 0", e, v6, allocs)
			}
		}
	}
}

// TestDecodeEncapUsedDecoder decodes every stack with a decoder that just
// decoded a deeper one, and the other way round: nothing of a frame's
// headers may leak into the next frame's segment.
func TestDecodeEncapUsedDecoder(t *testing.T) {
	encaps := testEncaps()
	frames := make([][]byte, 0, 2*len(encaps))
	for _, e := range encaps {
		frames = append(frames,
			seg{encap: e, src: client4, dst: server4, flags: ACK, seq: 1, ack: 1, win: 9, len: 10}.frame(t),
			seg{encap: e, src: server6, dst: client6, back: true, flags: ACK, seq: 1, ack: 1, win: 9, len: 10, ip: ipHeaders{v6Ext: true}}.frame(t))
	}
	used := mustDecoder(t, linkEthernet)
	for i, f := range frames {
		var want, got Segment
		if !mustDecoder(t, linkEthernet).Decode(f, &want) {
			t.Fatalf("frame %d: Decode = false", i)
		}
		used.Decode(frames[len(frames)-1-i], &got)
		if !used.Decode(f, &got) || got != want {
			t.Errorf("frame %d (%v): used decoder gives %+v, a fresh one %+v", i, encaps[i/2], got, want)
		}
	}
}

// BenchmarkDecodeEncap decodes a data segment's headers in each tunnel
// stack, and plain Ethernet for reference.
func BenchmarkDecodeEncap(b *testing.B) {
	for _, e := range append([]encap{nil}, testEncaps()...) {
		name := e.String()
		if name == "" {
			name = "none"
		}
		b.Run(name, func(b *testing.B) {
			frame := seg{encap: e, src: client4, dst: server4, flags: ACK, seq: 1, ack: 1, win: 9, len: 1200,
				opts: []layers.TCPOption{optNOP(), optNOP(), optTS(1, 2)}}.frame(b)
			d := mustDecoder(b, linkEthernet)
			var s Segment
			b.ReportAllocs()
			for b.Loop() {
				if !d.Decode(frame, &s) {
					b.Fatal("Decode = false")
				}
			}
		})
	}
}

// TestDecodeRecoversPanics checks that a panic while decoding (of a layer
// decoder on hostile bytes) makes a frame without TCP, outside the tests
// that let panics through.
func TestDecodeRecoversPanics(t *testing.T) {
	defer func(was bool) { letPanicsThrough = was }(letPanicsThrough)
	letPanicsThrough = false
	d := mustDecoder(t, linkEthernet)
	ok := func() (ok bool) {
		defer d.recoverPanic(&ok)
		ok = true
		panic("hostile bytes")
	}()
	if ok {
		t.Error("a panic while decoding left ok = true")
	}
}
