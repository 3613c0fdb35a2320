package capture

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Test frames are built with gopacket's serializer, one link type at a time,
// so the decoder is checked against bytes it did not write itself. A frame
// can carry a stack of tunnels (VLAN tags, MPLS, PPPoE, LLC/SNAP, GRE,
// ERSPAN, VXLAN, Geneve, GTP-U, IP in IP) between its link header and its
// IP packet. A test
// describes a conversation as a list of steps (direction, flags, relative
// numbers, length, window, options, time) and either writes it into a pcap
// file (for tshark, Open and Walk) or feeds it straight to Walk through an
// in-memory Source.

// The default endpoints of test conversations.
var (
	client4 = netip.MustParseAddrPort("10.0.0.1:40000")
	server4 = netip.MustParseAddrPort("10.0.0.2:80")
	client6 = netip.MustParseAddrPort("[2001:db8::1]:40000")
	server6 = netip.MustParseAddrPort("[2001:db8::2]:80")
)

// testEpoch is the capture time of the first frame of a test conversation.
var testEpoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// link is a framing the Decoder supports. Its zero value is Ethernet, the
// default of test conversations.
type link int

const (
	linkEthernet   link = iota
	linkNullLE          // BSD loopback, family in little-endian (a little-endian host's capture)
	linkNullBE          // BSD loopback, family in big-endian
	linkLoop            // OpenBSD loopback: family always big-endian
	linkRaw             // LINKTYPE_RAW (101): IPv4 or IPv6, nothing in front
	linkRawOpenBSD      // DLT_RAW as OpenBSD numbers it (12)
	linkIPv4            // LINKTYPE_IPV4 (228)
	linkIPv6            // LINKTYPE_IPV6 (229)
	linkSLL             // Linux cooked capture v1
	linkSLL2            // Linux cooked capture v2
	linkPPP             // LINKTYPE_PPP (9): PPP, address and control and the protocol's high byte compressed away
	linkPPPHDLC         // LINKTYPE_PPP_HDLC (50): 0xff 0x03, then PPP
	linkCiscoHDLC       // LINKTYPE_PPP_HDLC (50) holding Cisco HDLC: address 0x0f, control, EtherType
	linkPPPDir          // LINKTYPE_PPP_WITH_DIR (204): a direction byte, 0xff 0x03, then PPP
	linkFDDI            // LINKTYPE_FDDI (10): frame control, addresses, LLC/SNAP
	linkNFLOG           // LINKTYPE_NFLOG (239): Linux netfilter log, TLVs in little-endian
	linkIPoIB           // LINKTYPE_IPOIB (242): 40-byte pseudo-header, EtherType, reserved
	linkWLAN            // LINKTYPE_IEEE802_11 (105): QoS data with HT control, LLC/SNAP
	linkRadiotap        // LINKTYPE_IEEE802_11_RADIOTAP (127): radiotap with TSFT and flags (FCS, data pad), QoS data, FCS
	linkPPI             // LINKTYPE_PPI (192): PPI with 802.11-Common (FCS present), data, FCS
	linkCHDLC           // LINKTYPE_C_HDLC (104): address 0x0f, control, EtherType
	linkARCNET          // LINKTYPE_ARCNET_LINUX (129): offset, RFC 1201 protocol ID, split flag, sequence
	linkSLLIB           // Linux cooked capture v1 on InfiniBand: a 20-byte address, longer than its field
	linkSLL2IB          // Linux cooked capture v2 on InfiniBand: a 20-byte address
	numLinks
)

var linkNames = [numLinks]string{"ethernet", "null-le", "null-be", "loop", "raw", "raw-openbsd", "ipv4", "ipv6", "sll", "sll2",
	"ppp", "ppp-hdlc", "cisco-hdlc", "ppp-dir", "fddi", "nflog", "ipoib",
	"wlan", "radiotap", "ppi", "chdlc", "arcnet", "sll-ib", "sll2-ib"}

func (l link) String() string { return linkNames[l] }

// linkType returns the link type a capture file of this framing declares.
func (l link) linkType() layers.LinkType {
	return [numLinks]layers.LinkType{
		layers.LinkTypeEthernet, layers.LinkTypeNull, layers.LinkTypeNull, layers.LinkTypeLoop,
		layers.LinkTypeRaw, 12, layers.LinkTypeIPv4, layers.LinkTypeIPv6,
		layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
		layers.LinkTypePPP, layers.LinkTypePPP_HDLC, layers.LinkTypePPP_HDLC, 204, layers.LinkTypeFDDI, 239, 242,
		105, 127, 192, 104, 129, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
	}[l]
}

// carries reports whether the framing can carry IP packets of that family:
// LINKTYPE_IPV4 and LINKTYPE_IPV6 carry only their own.
func (l link) carries(v6 bool) bool {
	switch l {
	case linkIPv4:
		return !v6
	case linkIPv6:
		return v6
	}
	return true
}

// next is what follows a header of a test frame: an IP packet, or a tag
// or tunnel header that an EtherType announces.
type next int

const (
	nextIPv4 next = iota
	nextIPv6
	nextVLAN  // 802.1Q tag
	nextQinQ  // 802.1ad service tag
	nextMPLS  // MPLS label stack
	nextPPPoE // PPPoE session
	nextLLC   // 802.2 LLC/SNAP: behind Ethernet, a length instead of an EtherType
	nextFabricPath
	nextETag
)

// etherType returns the EtherType that announces n.
func (n next) etherType() layers.EthernetType {
	return [...]layers.EthernetType{
		layers.EthernetTypeIPv4, layers.EthernetTypeIPv6, layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ,
		layers.EthernetTypeMPLSUnicast, layers.EthernetTypePPPoESession, layers.EthernetTypeLLC,
		etherTypeFabricPath, etherTypeETag,
	}[n]
}

// isIP reports whether n is an IP packet.
func (n next) isIP() bool { return n == nextIPv4 || n == nextIPv6 }

// pppProtocol returns the PPP protocol number of n.
func (n next) pppProtocol(tb testing.TB) uint16 {
	switch n {
	case nextIPv4:
		return 0x0021
	case nextIPv6:
		return 0x0057
	case nextMPLS:
		return 0x0281
	}
	tb.Fatalf("PPP cannot carry %d", n)
	return 0
}

// Test MAC addresses.
var (
	mac1 = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	mac2 = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// ethernet returns an Ethernet header in front of n.
func ethernet(n next) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: n.etherType()}
}

// carriesNext reports whether the framing can carry n: IP as carries
// says; the Ethernet-like ones anything an EtherType announces; PPP and
// Cisco HDLC also MPLS.
func (l link) carriesNext(n next) bool {
	switch {
	case n.isIP():
		return l.carries(n == nextIPv6)
	case n == nextFabricPath:
		// Wireshark looks for FabricPath in an Ethernet header only.
		return l == linkEthernet
	case l == linkEthernet, l == linkSLL, l == linkSLL2, l == linkFDDI, l == linkSLLIB, l == linkSLL2IB:
		return true
	case l == linkWLAN, l == linkRadiotap, l == linkPPI:
		return n != nextLLC
	case l == linkPPP, l == linkPPPHDLC, l == linkPPPDir, l == linkCiscoHDLC, l == linkCHDLC:
		return n == nextMPLS
	}
	return false
}

// header returns the layers in front of n (none for the raw link types).
// back says the frame goes from server to client (the PPP direction byte).
func (l link) header(tb testing.TB, n next, back bool) []gopacket.SerializableLayer {
	tb.Helper()
	if !l.carriesNext(n) {
		tb.Fatalf("link %v cannot carry next header %d", l, n)
	}
	family := uint32(layers.ProtocolFamilyIPv4)
	if n == nextIPv6 {
		family = uint32(layers.ProtocolFamilyIPv6BSD)
	}
	protocol := uint16(n.etherType())
	if n == nextLLC {
		protocol = 0x0004 // LINUX_SLL_P_802_2
	}
	switch l {
	case linkEthernet:
		return []gopacket.SerializableLayer{ethernet(n)}
	case linkNullLE:
		// gopacket writes the family in little-endian, as a little-endian
		// host's libpcap does.
		return []gopacket.SerializableLayer{&layers.Loopback{Family: layers.ProtocolFamily(family)}}
	case linkNullBE, linkLoop:
		return []gopacket.SerializableLayer{rawBytes(binary.BigEndian.AppendUint32(nil, family))}
	case linkSLL:
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[0:], 0)     // packet type: to us
		binary.BigEndian.PutUint16(h[2:], 1)     // ARPHRD_ETHER
		binary.BigEndian.PutUint16(h[4:], 6)     // address length
		copy(h[6:], []byte{0x02, 0, 0, 0, 0, 1}) // source MAC, padded to 8
		binary.BigEndian.PutUint16(h[14:], protocol)
		return []gopacket.SerializableLayer{rawBytes(h)}
	case linkSLL2:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], protocol)
		binary.BigEndian.PutUint32(h[4:], 1) // interface index
		binary.BigEndian.PutUint16(h[8:], 1) // ARPHRD_ETHER
		h[10] = 0                            // packet type: to us
		h[11] = 6                            // address length
		copy(h[12:], []byte{0x02, 0, 0, 0, 0, 1})
		return []gopacket.SerializableLayer{rawBytes(h)}
	case linkPPP:
		// Protocol field compression: an odd first byte is the whole field.
		if p := n.pppProtocol(tb); p < 0x100 {
			return []gopacket.SerializableLayer{rawBytes{byte(p)}}
		}
		return []gopacket.SerializableLayer{&layers.PPP{PPPType: layers.PPPType(n.pppProtocol(tb))}}
	case linkPPPHDLC:
		return []gopacket.SerializableLayer{&layers.PPP{PPPType: layers.PPPType(n.pppProtocol(tb)), HasPPTPHeader: true}}
	case linkCiscoHDLC, linkCHDLC:
		return []gopacket.SerializableLayer{rawBytes(binary.BigEndian.AppendUint16([]byte{0x0f, 0x00}, protocol))}
	case linkSLLIB:
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[2:], 32) // ARPHRD_INFINIBAND
		binary.BigEndian.PutUint16(h[4:], 20) // address length: more than the 8 bytes of its field
		copy(h[6:], []byte{0, 0, 0x48, 0xfe, 0x80, 0, 0, 0})
		binary.BigEndian.PutUint16(h[14:], protocol)
		return []gopacket.SerializableLayer{rawBytes(h)}
	case linkSLL2IB:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], protocol)
		binary.BigEndian.PutUint32(h[4:], 3)  // interface index
		binary.BigEndian.PutUint16(h[8:], 32) // ARPHRD_INFINIBAND
		h[11] = 20
		copy(h[12:], []byte{0, 0, 0x48, 0xfe, 0x80, 0, 0, 0})
		return []gopacket.SerializableLayer{rawBytes(h)}
	case linkWLAN:
		return []gopacket.SerializableLayer{rawBytes(wlanData(n, back, wlanQoS|wlanHTC))}
	case linkRadiotap:
		return []gopacket.SerializableLayer{radiotap{}, rawBytes(wlanData(n, back, wlanQoS|wlanPadded))}
	case linkPPI:
		return []gopacket.SerializableLayer{ppi{}, rawBytes(wlanData(n, back, 0))}
	case linkARCNET:
		src, dst := byte(1), byte(2)
		if back {
			src, dst = dst, src
		}
		proto := byte(arcnetIP1201)
		if n == nextIPv6 {
			proto = arcnetIPv6
		}
		return []gopacket.SerializableLayer{rawBytes{src, dst, 0, 0, proto, 0, 0, 7}}
	case linkPPPDir:
		dir := rawBytes{0} // received
		if back {
			dir[0] = 1 // sent
		}
		return []gopacket.SerializableLayer{dir, &layers.PPP{PPPType: layers.PPPType(n.pppProtocol(tb)), HasPPTPHeader: true}}
	case linkFDDI:
		h := append([]byte{0x50}, append(slices.Clone(mac2), mac1...)...) // frame control: async LLC
		h = append(h, 0xaa, 0xaa, 0x03, 0, 0, 0)                          // LLC, SNAP: encapsulated Ethernet
		return []gopacket.SerializableLayer{rawBytes(binary.BigEndian.AppendUint16(h, protocol))}
	case linkNFLOG:
		family := byte(2) // NFPROTO_IPV4
		if n == nextIPv6 {
			family = 10 // NFPROTO_IPV6
		}
		return []gopacket.SerializableLayer{nflog{family: family, hw: uint16(n.etherType())}}
	case linkIPoIB:
		h := make([]byte, 44)
		h[21], h[22], h[23] = 0, 0x00, 0x48 // destination QPN
		copy(h[24:40], net.ParseIP("fe80::2"))
		binary.BigEndian.PutUint16(h[40:], protocol)
		return []gopacket.SerializableLayer{rawBytes(h)}
	}
	return nil
}

// nflog is a LINKTYPE_NFLOG header as a little-endian host's libpcap writes
// it: family, version, resource ID, then TLVs: the packet header (hardware
// protocol, hook), a prefix, and the payload TLV holding what follows,
// padded to four bytes.
type nflog struct {
	family byte
	hw     uint16 // 0: no packet header TLV
	be     bool   // TLV lengths and types in big-endian (a big-endian host's file)
}

func (n nflog) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func (n nflog) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	payload := len(b.Bytes())
	if pad := (4 - payload%4) % 4; pad > 0 {
		p, err := b.AppendBytes(pad)
		if err != nil {
			return err
		}
		clear(p)
	}
	var order binary.AppendByteOrder = binary.LittleEndian
	if n.be {
		order = binary.BigEndian
	}
	tlv := func(h []byte, typ uint16, value ...byte) []byte {
		h = order.AppendUint16(h, uint16(4+len(value)))
		h = order.AppendUint16(h, typ)
		h = append(h, value...)
		for len(h)%4 != 0 {
			h = append(h, 0)
		}
		return h
	}
	h := []byte{n.family, 0, 0, 5} // version 0, resource ID 5 (the log group)
	if n.hw != 0 {
		h = tlv(h, 1, byte(n.hw>>8), byte(n.hw), 3, 0) // hardware protocol, hook: local out
	}
	h = tlv(h, 10, []byte("tcplab\x00")...)
	h = order.AppendUint16(h, uint16(4+payload))
	h = order.AppendUint16(h, 9)
	dst, err := b.PrependBytes(len(h))
	if err != nil {
		return err
	}
	copy(dst, h)
	return nil
}

// How an 802.11 data frame of wlanData looks.
const (
	wlanQoS     = 1 << iota // QoS data: a QoS control field
	wlanHTC                 // the order bit set, and an HT control field after QoS control
	wlanPadded              // the header padded to 4 bytes, as radiotap's data pad flag says
	wlanSwapped             // the frame control bytes swapped, as Wireshark reads CAPWAP
)

// wlanData returns an 802.11 data frame's header and the LLC/SNAP header in
// front of n: to the access point, from it when back.
func wlanData(n next, back bool, how int) []byte {
	fc, flags := byte(0x08), byte(0x01) // data, to DS
	if back {
		flags = 0x02 // from DS
	}
	if how&wlanQoS != 0 {
		fc = 0x88
	}
	if how&wlanHTC != 0 {
		flags |= 0x80
	}
	h := []byte{fc, flags, 0x2c, 0}
	bssid := []byte{0x02, 0, 0, 0, 0, 0xaa}
	if back {
		h = slices.Concat(h, mac1, bssid, mac2)
	} else {
		h = slices.Concat(h, bssid, mac1, mac2)
	}
	h = append(h, 0x10, 0x00) // sequence number 1
	if how&wlanQoS != 0 {
		h = append(h, 0x05, 0) // TID 5
	}
	if how&wlanHTC != 0 {
		h = append(h, 0, 0, 0, 0)
	}
	if how&wlanPadded != 0 {
		for len(h)%4 != 0 {
			h = append(h, 0)
		}
	}
	if how&wlanSwapped != 0 {
		h[0], h[1] = h[1], h[0]
	}
	return binary.BigEndian.AppendUint16(append(h, 0xaa, 0xaa, 0x03, 0, 0, 0), uint16(n.etherType()))
}

// radiotap is a radiotap header as Linux's mac80211 writes one: two
// present words (the first says another follows), TSFT, flags saying the
// frame ends with its FCS and the 802.11 header is padded, rate, channel,
// signal; and the FCS at the end of the frame (zero: nothing checks it).
type radiotap struct{}

func (radiotap) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func (radiotap) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	fcs, err := b.AppendBytes(4)
	if err != nil {
		return err
	}
	clear(fcs)
	h := []byte{0, 0, 0, 0}
	h = binary.LittleEndian.AppendUint32(h, 1<<31|1<<5|1<<3|1<<2|1<<1|1<<0)
	h = binary.LittleEndian.AppendUint32(h, 0)
	h = append(h, 0, 0, 0, 0)                                   // align TSFT to 8
	h = binary.LittleEndian.AppendUint64(h, 0x0102030405060708) // TSFT
	h = append(h, radiotapFCS|radiotapDataPad, 12)              // flags, rate 6 Mb/s
	h = binary.LittleEndian.AppendUint16(h, 5180)               // channel 36
	h = binary.LittleEndian.AppendUint16(h, 0x0140)             // 5 GHz, OFDM
	h = append(h, 0xc4)                                         // -60 dBm
	h[2] = byte(len(h))
	dst, err := b.PrependBytes(len(h))
	if err != nil {
		return err
	}
	copy(dst, h)
	return nil
}

// ppi is a PPI header with an 802.11-Common field that says the 802.11
// frame behind it ends with its FCS, which it appends.
type ppi struct{}

func (ppi) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func (ppi) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	fcs, err := b.AppendBytes(4)
	if err != nil {
		return err
	}
	clear(fcs)
	h := []byte{0, 0, 32, 0}
	h = binary.LittleEndian.AppendUint32(h, 105)
	h = binary.LittleEndian.AppendUint16(h, ppi80211Common)
	h = binary.LittleEndian.AppendUint16(h, 20)
	h = binary.LittleEndian.AppendUint64(h, 0x0102030405060708) // TSF timer
	h = binary.LittleEndian.AppendUint16(h, ppiFCSPresent)
	h = binary.LittleEndian.AppendUint16(h, 10)   // rate: 5 Mb/s
	h = binary.LittleEndian.AppendUint16(h, 2437) // channel 6
	h = binary.LittleEndian.AppendUint16(h, 0x00c0)
	h = append(h, 0, 0, 0xc4, 0xa0) // FHSS, signal, noise
	dst, err := b.PrependBytes(len(h))
	if err != nil {
		return err
	}
	copy(dst, h)
	return nil
}

// trailer is a layer of the given bytes that appends the given number of
// zero bytes at the end of the frame, for a FabricPath FCS.
type trailer struct {
	head []byte
	n    int
}

func (t trailer) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func (t trailer) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	tail, err := b.AppendBytes(t.n)
	if err != nil {
		return err
	}
	clear(tail)
	return rawBytes(t.head).SerializeTo(b, opts)
}

// rawBytes is a layer serialized as the given bytes, for headers gopacket
// cannot write: Linux cooked headers, a big-endian loopback family, IPv6
// extension headers laid out by hand.
type rawBytes []byte

func (r rawBytes) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func (r rawBytes) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	dst, err := b.PrependBytes(len(r))
	if err != nil {
		return err
	}
	copy(dst, r)
	return nil
}

// ipHeaders says how the IP header of a frame looks beyond its addresses.
type ipHeaders struct {
	// v4Options adds IPv4 options (a record-route option and padding),
	// making a 32-byte header.
	v4Options bool
	// v6Ext adds a hop-by-hop and a destination options header (8 bytes
	// each) between the IPv6 header and TCP.
	v6Ext bool
	// ah adds an IPsec authentication header (24 bytes, with a 12-byte
	// ICV) in front of TCP (of IPComp).
	ah bool
	// ipcomp compresses the TCP segment with DEFLATE behind an IPComp
	// header.
	ipcomp bool
}

// seg describes one TCP frame to build.
type seg struct {
	link     link
	src, dst netip.AddrPort
	flags    Flags
	seq, ack uint32
	win      uint16
	opts     []layers.TCPOption
	len      int // payload bytes
	ip       ipHeaders
	encap    encap // headers between the link header and the IP packet
	back     bool  // server to client: outer tunnel addresses swapped
}

// ipLayers returns the network layers of a frame from src to dst carrying
// proto, and the layer TCP and UDP checksums are computed against.
func ipLayers(src, dst netip.Addr, proto layers.IPProtocol, h ipHeaders) ([]gopacket.SerializableLayer, gopacket.NetworkLayer) {
	if h.ipcomp {
		proto = ipProtocolIPComp
	}
	var ah []gopacket.SerializableLayer
	if h.ah {
		// SPI 0x100, sequence number 1, an ICV of 12 bytes.
		ah = []gopacket.SerializableLayer{rawBytes(slices.Concat([]byte{byte(proto), 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, payloadBytes(12)))}
		proto = layers.IPProtocolAH
	}
	if src.Is4() {
		ip := &layers.IPv4{
			Version: 4, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment,
			Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
		}
		if h.v4Options {
			// Record route with room for two addresses (11 bytes), then an
			// end-of-options byte: 12 bytes of options, IHL 8.
			ip.Options = []layers.IPv4Option{
				{OptionType: 7, OptionLength: 11, OptionData: []byte{4, 0, 0, 0, 0, 0, 0, 0, 0}},
				{OptionType: 0, OptionLength: 1},
			}
		}
		return append([]gopacket.SerializableLayer{ip}, ah...), ip
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	out := []gopacket.SerializableLayer{ip}
	if h.v6Ext {
		// gopacket folds hop-by-hop into its IPv6 layer and pads options
		// its own way, so both headers are laid out here: next header,
		// length 0 (8 bytes), one PadN option of 4 bytes.
		ip.NextHeader = layers.IPProtocolIPv6HopByHop
		out = append(out,
			rawBytes{byte(layers.IPProtocolIPv6Destination), 0, 1, 4, 0, 0, 0, 0},
			rawBytes{byte(proto), 0, 1, 4, 0, 0, 0, 0})
	}
	return append(out, ah...), ip
}

// serialize builds a frame from the layers, with lengths and checksums
// filled in.
func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	b, err := Serialize(ls...)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// payloadBytes returns n bytes of printable payload.
func payloadBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// frame builds s as a frame of its link type.
func (s seg) frame(tb testing.TB) []byte {
	tb.Helper()
	v6 := s.src.Addr().Is6()
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(s.src.Port()), DstPort: layers.TCPPort(s.dst.Port()),
		Seq: s.seq, Ack: s.ack, Window: s.win, Options: s.opts,
		FIN: s.flags.Has(FIN), SYN: s.flags.Has(SYN), RST: s.flags.Has(RST), PSH: s.flags.Has(PSH),
		ACK: s.flags.Has(ACK), URG: s.flags.Has(URG), ECE: s.flags.Has(ECE), CWR: s.flags.Has(CWR),
	}
	ip, nl := ipLayers(s.src.Addr(), s.dst.Addr(), layers.IPProtocolTCP, s.ip)
	if err := tcp.SetNetworkLayerForChecksum(nl); err != nil {
		tb.Fatal(err)
	}
	inner := nextIPv4
	if v6 {
		inner = nextIPv6
	}
	tunnels, n := s.encap.layers(tb, inner, s.back)
	ls := append(s.link.header(tb, n, s.back), tunnels...)
	ls = append(ls, ip...)
	l4 := []gopacket.SerializableLayer{tcp}
	if s.len > 0 {
		l4 = append(l4, gopacket.Payload(payloadBytes(s.len)))
	}
	if s.ip.ipcomp {
		// CPI 2: DEFLATE (RFC 2394).
		l4 = []gopacket.SerializableLayer{rawBytes(append([]byte{byte(layers.IPProtocolTCP), 0, 0, 2}, deflate(tb, serialize(tb, l4...))...))}
	}
	return serialize(tb, append(ls, l4...)...)
}

// deflate compresses b with DEFLATE, as IPComp does.
func deflate(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	w, err := flate.NewWriter(&out, flate.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// tunnel is one header (or group of headers) a test frame can carry
// between its link header and its IP packet.
type tunnel int

const (
	tunVLAN       tunnel = iota // 802.1Q tag, VLAN 10
	tunQinQ                     // 802.1ad service tag, VLAN 20
	tunMPLS                     // two MPLS labels
	tunPPPoE                    // PPPoE session and PPP
	tunLLC                      // 802.2 LLC and SNAP
	tunGRE                      // IPv4, GRE with checksum, key and sequence number
	tunGRE6                     // IPv6, GRE without options
	tunGRETEB                   // IPv4, GRE with key (transparent Ethernet bridging), Ethernet
	tunERSPAN1                  // IPv4, GRE, Ethernet (ERSPAN type I)
	tunERSPAN2                  // IPv4, GRE with sequence number, ERSPAN type II, Ethernet
	tunERSPAN3                  // IPv4, GRE with sequence number, ERSPAN type III with platform subheader, Ethernet
	tunVXLAN                    // IPv4, UDP 4789, VXLAN, Ethernet
	tunGeneve                   // IPv6, UDP 6081, Geneve with an option, Ethernet
	tunGTPU                     // IPv4, UDP 2152, GTP-U with sequence number and an extension header
	tunIPv4                     // IPv4 (IP in IP, 6in4)
	tunIPv6                     // IPv6 (4in6, IPv6 in IPv6)
	tunFabricPath               // Cisco FabricPath: FTag and TTL, an Ethernet frame, the FCS
	tunETag                     // 802.1BR E-Tag
	tunAruba                    // IPv4, GRE 0x8210 (Aruba), 802.11 data, LLC/SNAP
	tunCAPWAP                   // IPv4, UDP 5247, CAPWAP with a radio MAC address, 802.11 (frame control swapped), LLC/SNAP
	tunCAPWAP3                  // IPv4, UDP 5247, CAPWAP, Ethernet (802.3, T bit clear)
	numTunnels
)

var tunnelNames = [numTunnels]string{"vlan", "qinq", "mpls", "pppoe", "llc-snap", "gre", "gre6", "gre-teb",
	"erspan1", "erspan2", "erspan3", "vxlan", "geneve", "gtpu", "ipip4", "ipip6",
	"fabricpath", "etag", "aruba", "capwap", "capwap-8023"}

func (t tunnel) String() string { return tunnelNames[t] }

// encap is the stack of tunnels of a test frame, outermost first.
type encap []tunnel

func (e encap) String() string {
	var names []string
	for _, t := range e {
		names = append(names, t.String())
	}
	return strings.Join(names, "+")
}

// Outer addresses of the tunnels: the client's end, the server's end.
var (
	tunnel4 = [2]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	tunnel6 = [2]netip.Addr{netip.MustParseAddr("2001:db8:ffff::1"), netip.MustParseAddr("2001:db8:ffff::2")}
)

// layers returns the headers of the stack in front of a packet of kind
// inner, and what the link header must announce. back swaps the outer
// addresses, for the server's segments.
func (e encap) layers(tb testing.TB, inner next, back bool) ([]gopacket.SerializableLayer, next) {
	tb.Helper()
	var out []gopacket.SerializableLayer
	n := inner
	for i := len(e) - 1; i >= 0; i-- {
		var ls []gopacket.SerializableLayer
		ls, n = e[i].wrap(tb, n, back)
		out = append(ls, out...)
	}
	return out, n
}

// outerIP returns an outer IP header of the family, from the client's end
// of the tunnel (the server's when back), carrying proto.
func outerIP(v6, back bool, proto layers.IPProtocol) (gopacket.SerializableLayer, gopacket.NetworkLayer, next) {
	ends := tunnel4
	if v6 {
		ends = tunnel6
	}
	src, dst := ends[0], ends[1]
	if back {
		src, dst = dst, src
	}
	ls, nl := ipLayers(src, dst, proto, ipHeaders{})
	if v6 {
		return ls[0], nl, nextIPv6
	}
	return ls[0], nl, nextIPv4
}

// udpTunnel returns an outer IP header and a UDP header to port.
func udpTunnel(tb testing.TB, v6, back bool, port layers.UDPPort) []gopacket.SerializableLayer {
	ip, nl, _ := outerIP(v6, back, layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: 49152 + port%1000, DstPort: port}
	if port == 2152 {
		u.SrcPort = port
	}
	if err := u.SetNetworkLayerForChecksum(nl); err != nil {
		tb.Fatal(err)
	}
	return []gopacket.SerializableLayer{ip, u}
}

// wrap returns the headers of t in front of n, and what they are.
func (t tunnel) wrap(tb testing.TB, n next, back bool) ([]gopacket.SerializableLayer, next) {
	tb.Helper()
	needIP := func() {
		if !n.isIP() {
			tb.Fatalf("tunnel %v cannot carry next header %d", t, n)
		}
	}
	ipProto := layers.IPProtocolIPv4
	if n == nextIPv6 {
		ipProto = layers.IPProtocolIPv6
	}
	switch t {
	case tunVLAN, tunQinQ:
		tag, tagged := &layers.Dot1Q{VLANIdentifier: 10, Type: n.etherType()}, nextVLAN
		if t == tunQinQ {
			tag.VLANIdentifier, tag.Priority, tagged = 20, 3, nextQinQ
		}
		if n == nextLLC {
			return []gopacket.SerializableLayer{dot1qLength{tag}}, tagged
		}
		return []gopacket.SerializableLayer{tag}, tagged
	case tunMPLS:
		needIP()
		return []gopacket.SerializableLayer{&layers.MPLS{Label: 1000, TTL: 64}, &layers.MPLS{Label: 17, TTL: 64, StackBottom: true}}, nextMPLS
	case tunPPPoE:
		needIP()
		return []gopacket.SerializableLayer{
			&layers.PPPoE{Version: 1, Type: 1, Code: layers.PPPoECodeSession, SessionId: 0x1234},
			&layers.PPP{PPPType: layers.PPPType(n.pppProtocol(tb))},
		}, nextPPPoE
	case tunLLC:
		return []gopacket.SerializableLayer{
			&layers.LLC{DSAP: 0xaa, SSAP: 0xaa, Control: 3},
			&layers.SNAP{OrganizationalCode: []byte{0, 0, 0}, Type: n.etherType()},
		}, nextLLC
	case tunGRE, tunGRE6:
		ip, _, outer := outerIP(t == tunGRE6, back, layers.IPProtocolGRE)
		g := &layers.GRE{Protocol: n.etherType()}
		if t == tunGRE {
			g.ChecksumPresent, g.KeyPresent, g.Key, g.SeqPresent, g.Seq = true, true, 0xcafe, true, 7
		}
		return []gopacket.SerializableLayer{ip, g}, outer
	case tunGRETEB, tunERSPAN1, tunERSPAN2, tunERSPAN3:
		ip, _, outer := outerIP(false, back, layers.IPProtocolGRE)
		g := &layers.GRE{Protocol: 0x88be}
		ls := []gopacket.SerializableLayer{ip, g}
		switch t {
		case tunGRETEB:
			g.Protocol, g.KeyPresent, g.Key = layers.EthernetTypeTransparentEthernetBridging, true, 42
		case tunERSPAN2:
			g.SeqPresent, g.Seq = true, 1
			ls = append(ls, &layers.ERSPANII{Version: 1, VLANIdentifier: 10, SessionID: 5, Index: 3})
		case tunERSPAN3:
			g.Protocol, g.SeqPresent, g.Seq = 0x22eb, true, 1
			// Version 2, VLAN 10; session 5; timestamp; SGT; hardware ID 1,
			// granularity 3, O set; then an 8-byte platform subheader.
			h := []byte{0x20, 10, 0, 5, 0, 0, 0x12, 0x34, 0, 0, 0x00, 0x17, 0x0c, 0, 0, 0, 0, 0, 0, 1}
			ls = append(ls, rawBytes(h))
		}
		return append(ls, ethernet(n)), outer
	case tunVXLAN:
		return append(udpTunnel(tb, false, back, 4789), &layers.VXLAN{ValidIDFlag: true, VNI: 5001}, ethernet(n)), nextIPv4
	case tunGeneve:
		gn := &layers.Geneve{Protocol: layers.EthernetTypeTransparentEthernetBridging, VNI: 77,
			Options: []*layers.GeneveOption{{Class: 0x0102, Type: 0x80, Data: []byte{1, 2, 3, 4}}}}
		return append(udpTunnel(tb, true, back, 6081), gn, ethernet(n)), nextIPv6
	case tunGTPU:
		needIP()
		g := &layers.GTPv1U{Version: 1, ProtocolType: 1, MessageType: 0xff, TEID: 0x1000, SequenceNumberFlag: true, SequenceNumber: 9,
			// A PDU session container: QFI 9, uplink.
			GTPExtensionHeaders: []layers.GTPExtensionHeader{{Type: 0x85, Content: []byte{0x10, 0x09}}}}
		return append(udpTunnel(tb, false, back, 2152), g), nextIPv4
	case tunIPv4, tunIPv6:
		needIP()
		ip, _, outer := outerIP(t == tunIPv6, back, ipProto)
		return []gopacket.SerializableLayer{ip}, outer
	case tunFabricPath:
		// FTag 1, TTL 32; the outer addresses are the link header's.
		return []gopacket.SerializableLayer{trailer{head: []byte{0x00, 0x60}, n: 4}, ethernet(n)}, nextFabricPath
	case tunETag:
		// E-CID 0x123, ingress E-CID 0.
		return []gopacket.SerializableLayer{rawBytes(binary.BigEndian.AppendUint16([]byte{0, 0, 0x01, 0x23, 0, 0}, uint16(n.etherType())))}, nextETag
	case tunAruba:
		needEther(tb, t, n)
		ip, _, outer := outerIP(false, back, layers.IPProtocolGRE)
		return []gopacket.SerializableLayer{ip, rawBytes{0, 0, 0x82, 0x10}, rawBytes(wlanData(n, back, 0))}, outer
	case tunCAPWAP:
		needEther(tb, t, n)
		// HLEN 4 (16 bytes), RID 1, WBID 1, T and M set; the radio MAC
		// address: its length, six bytes, one of padding.
		h := []byte{0, 4 << 3, 1<<6 | 1<<1 | 1, 0x10, 0, 0, 0, 0, 6, 0x02, 0, 0, 0, 0, 0xaa, 0}
		return append(udpTunnel(tb, false, back, portCAPWAP), rawBytes(h), rawBytes(wlanData(n, back, wlanQoS|wlanSwapped))), nextIPv4
	case tunCAPWAP3:
		h := []byte{0, 2 << 3, 1<<6 | 1<<1, 0, 0, 0, 0, 0}
		return append(udpTunnel(tb, false, back, portCAPWAP), rawBytes(h), ethernet(n)), nextIPv4
	}
	tb.Fatalf("unknown tunnel %d", t)
	return nil, n
}

// needEther fails the test unless an 802.11 frame in the tunnel can carry
// n behind LLC/SNAP.
func needEther(tb testing.TB, t tunnel, n next) {
	tb.Helper()
	if n == nextLLC || n == nextFabricPath {
		tb.Fatalf("tunnel %v cannot carry next header %d", t, n)
	}
}

// trailer returns how many bytes the stack adds after the IP packet.
func (e encap) trailer() int {
	if slices.Contains(e, tunFabricPath) {
		return 4
	}
	return 0
}

// dot1qLength is an 802.1Q tag followed by an 802.3 length, as in front of
// an LLC header; gopacket's Dot1Q writes only EtherTypes.
type dot1qLength struct{ tag *layers.Dot1Q }

func (d dot1qLength) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func (d dot1qLength) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	n := len(b.Bytes())
	if err := d.tag.SerializeTo(b, opts); err != nil {
		return err
	}
	binary.BigEndian.PutUint16(b.Bytes()[2:], uint16(n))
	return nil
}

// TCP options, for the opts of a step or seg.
func optMSS(v uint16) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: binary.BigEndian.AppendUint16(nil, v)}
}

func optWScale(shift uint8) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{shift}}
}

func optSACKPerm() layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted}
}

func optNOP() layers.TCPOption { return layers.TCPOption{OptionType: layers.TCPOptionKindNop} }

func optTS(val, ecr uint32) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionData: binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, val), ecr)}
}

// optSACK returns a SACK option of the blocks given as left, right pairs.
func optSACK(edges ...uint32) layers.TCPOption {
	var b []byte
	for _, e := range edges {
		b = binary.BigEndian.AppendUint32(b, e)
	}
	return layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionData: b}
}

// synOptions are the options of a Linux SYN with window scale 7.
func synOptions() []layers.TCPOption {
	return []layers.TCPOption{optMSS(1460), optSACKPerm(), optTS(1, 0), optNOP(), optWScale(7)}
}

// Directions, short for conversation tables.
const (
	cs = ClientToServer
	sc = ServerToClient
)

// step is one segment of a scripted conversation. seq is relative to the
// sender's initial sequence number and ack to the receiver's, as Wireshark
// shows them (the SYN has seq 0).
type step struct {
	dir      Dir
	flags    Flags
	seq, ack uint32
	len      int
	win      uint16 // raw window field
	opts     []layers.TCPOption
	// at is the time since the first frame; 0 after the first step means
	// 1ms after the previous step.
	at time.Duration
}

// conv is a scripted TCP conversation: two endpoints and their segments.
type conv struct {
	link           link
	client, server netip.AddrPort // zero: client4, server4
	cisn, sisn     uint32         // initial sequence numbers; zero: defaults
	start          time.Time      // zero: testEpoch
	ip             ipHeaders
	encap          encap
	steps          []step
}

// Default initial sequence numbers: the server's wraps around 2^32 after
// 256 bytes, so relative numbering is tested across the wrap.
const (
	defaultClientISN = 1_000_000
	defaultServerISN = 0xffff_ff00
)

func (c conv) withDefaults() conv {
	if !c.client.IsValid() {
		c.client, c.server = client4, server4
	}
	if c.cisn == 0 {
		c.cisn = defaultClientISN
	}
	if c.sisn == 0 {
		c.sisn = defaultServerISN
	}
	if c.start.IsZero() {
		c.start = testEpoch
	}
	return c
}

// capturedFrame is a frame with its capture metadata.
type capturedFrame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// frames builds the conversation's frames, cut to snap bytes when snap > 0.
func (c conv) frames(tb testing.TB, snap int) []capturedFrame {
	tb.Helper()
	c = c.withDefaults()
	var out []capturedFrame
	var at time.Duration
	for i, st := range c.steps {
		switch {
		case st.at != 0 || i == 0:
			at = st.at
		default:
			at += time.Millisecond
		}
		s := seg{link: c.link, flags: st.flags, win: st.win, opts: st.opts, len: st.len, ip: c.ip, encap: c.encap, back: st.dir == ServerToClient}
		if st.dir == ClientToServer {
			s.src, s.dst = c.client, c.server
			s.seq, s.ack = c.cisn+st.seq, c.sisn+st.ack
		} else {
			s.src, s.dst = c.server, c.client
			s.seq, s.ack = c.sisn+st.seq, c.cisn+st.ack
		}
		if !st.flags.Has(ACK) {
			s.ack = 0
		}
		out = append(out, captured(s.frame(tb), c.start.Add(at), snap))
	}
	return out
}

// captured returns data as a capture with the given snap length keeps it.
func captured(data []byte, ts time.Time, snap int) capturedFrame {
	ci := gopacket.CaptureInfo{Timestamp: ts, Length: len(data), CaptureLength: len(data)}
	if snap > 0 && len(data) > snap {
		data = data[:snap]
		ci.CaptureLength = snap
	}
	return capturedFrame{ci: ci, data: data}
}

// merge returns the frames of several conversations in time order; frames
// at the same time keep the order of their conversations.
func merge(tb testing.TB, snap int, convs ...conv) []capturedFrame {
	tb.Helper()
	var all []capturedFrame
	for _, c := range convs {
		all = append(all, c.frames(tb, snap)...)
	}
	slices.SortStableFunc(all, func(a, b capturedFrame) int { return a.ci.Timestamp.Compare(b.ci.Timestamp) })
	return all
}

// writePcap writes frames into a new pcap file at path (microsecond
// timestamps, or nanosecond ones when nanos is set).
func writePcap(tb testing.TB, path string, lt layers.LinkType, nanos bool, frames []capturedFrame) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w := pcapgo.NewWriter(bw)
	if nanos {
		w = pcapgo.NewWriterNanos(bw)
	}
	if err := w.WriteFileHeader(262144, lt); err != nil {
		tb.Fatal(err)
	}
	for _, fr := range frames {
		if err := w.WritePacket(fr.ci, fr.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// frameSource is an in-memory Source.
type frameSource struct {
	lt     layers.LinkType
	frames []capturedFrame
}

func (s *frameSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if len(s.frames) == 0 {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	f := s.frames[0]
	s.frames = s.frames[1:]
	return f.data, f.ci, nil
}

func (s *frameSource) LinkType() layers.LinkType { return s.lt }

// annotated is one TCP frame after Walk: its segment and annotation.
type annotated struct {
	seg Segment
	ann Annotation
}

// walkFrames runs Walk over frames and returns every TCP frame, in order,
// and the annotator that saw them.
func walkFrames(tb testing.TB, lt layers.LinkType, frames []capturedFrame) ([]annotated, *Annotator) {
	tb.Helper()
	a := NewAnnotator()
	var out []annotated
	_, err := Walk(&frameSource{lt: lt, frames: frames}, a, func(p *Packet) error {
		if p.TCP {
			out = append(out, annotated{p.Segment, p.Annotation})
		}
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		tb.Fatalf("walk: %v", err)
	}
	return out, a
}

// annotate feeds the conversation to Walk and returns every segment with
// its annotation, one per step.
func (c conv) annotate(tb testing.TB) ([]annotated, *Annotator) {
	tb.Helper()
	got, a := walkFrames(tb, c.link.linkType(), c.frames(tb, 0))
	if len(got) != len(c.steps) {
		tb.Fatalf("%d steps gave %d TCP segments", len(c.steps), len(got))
	}
	return got, a
}

// handshake returns the steps of a three-way handshake with window scale 7
// on both SYNs, the client's ACK at 2ms (so the first RTT is 2ms).
func handshake() []step {
	return []step{
		{cs, SYN, 0, 0, 0, 64240, synOptions(), 0},
		{sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), time.Millisecond},
		{cs, ACK, 1, 1, 0, 502, nil, 2 * time.Millisecond},
	}
}

// fragCut is one fragment cut from an IP packet: n bytes of the packet's
// payload (what follows the IPv4 header, or the fixed IPv6 header) from
// offset off; n < 0 takes the rest. The more-fragments flag is set unless
// the fragment reaches the end or last is set. The bytes of the datagram
// in [flipFrom, flipTo) that the fragment holds are inverted, to make an
// overlap with other bytes.
type fragCut struct {
	off, n           int
	last             bool
	flipFrom, flipTo int
}

// fragmentPacket cuts an IP packet (IPv4, or IPv6 without extension
// headers) into fragments of datagram id: for IPv6 a fragment header goes
// after the fixed header.
func fragmentPacket(tb testing.TB, packet []byte, id uint32, cuts ...fragCut) [][]byte {
	tb.Helper()
	var hdr, payload []byte
	v6 := packet[0]>>4 == 6
	if v6 {
		hdr, payload = packet[:40], packet[40:]
	} else {
		n := int(packet[0]&0x0f) * 4
		hdr, payload = packet[:n], packet[n:]
	}
	var out [][]byte
	for _, c := range cuts {
		end := c.off + c.n
		if c.n < 0 {
			end = len(payload)
		}
		data := slices.Clone(payload[c.off:end])
		for i := max(c.flipFrom, c.off); i < min(c.flipTo, end); i++ {
			data[i-c.off] ^= 0xff
		}
		more := end < len(payload) && !c.last
		h := slices.Clone(hdr)
		if v6 {
			next := h[6]
			h[6] = 44 // fragment header
			binary.BigEndian.PutUint16(h[4:], uint16(8+len(data)))
			fh := []byte{next, 0, 0, 0, 0, 0, 0, 0}
			off := uint16(c.off/8) << 3
			if more {
				off |= 1
			}
			binary.BigEndian.PutUint16(fh[2:], off)
			binary.BigEndian.PutUint32(fh[4:], id)
			out = append(out, slices.Concat(h, fh, data))
			continue
		}
		binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(data)))
		binary.BigEndian.PutUint16(h[4:], uint16(id))
		off := uint16(c.off / 8)
		if more {
			off |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:], off) // clears don't-fragment
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:], ipChecksum(h))
		out = append(out, slices.Concat(h, data))
	}
	return out
}

// ipChecksum returns the IPv4 header checksum of h, whose checksum field
// is zero.
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// onEthernet puts an Ethernet header in front of an IP packet.
func onEthernet(tb testing.TB, packet []byte) []byte {
	tb.Helper()
	n := nextIPv4
	if packet[0]>>4 == 6 {
		n = nextIPv6
	}
	return serialize(tb, ethernet(n), gopacket.Payload(packet))
}
