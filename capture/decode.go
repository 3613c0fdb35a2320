package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// ErrUnsupportedLinkType is returned by NewDecoder for a link type tcplab
// cannot decode.
var ErrUnsupportedLinkType = errors.New("unsupported link type")

// Link types gopacket has no name for.
const (
	linkTypeRawOpenBSD layers.LinkType = 12  // DLT_RAW on OpenBSD, LINKTYPE_RAW in files written there
	linkTypePPPWithDir layers.LinkType = 204 // a direction byte, then PPP as in LINKTYPE_PPP
	linkTypeNFLOG      layers.LinkType = 239 // Linux netfilter NFLOG
	linkTypeIPoIB      layers.LinkType = 242 // IP over InfiniBand with a 40-byte pseudo-header
	linkTypeARCNETBSD  layers.LinkType = 7   // ARCNET as BSD writes it: no offset field
	linkTypeCHDLC      layers.LinkType = 104 // Cisco HDLC: address, control, protocol
	linkTypeARCNET     layers.LinkType = 129 // ARCNET as Linux writes it: an offset field
	linkTypePPI        layers.LinkType = 192 // a Per-Packet Information header, then the frame of its DLT
)

// maxHeaders bounds the headers Decode walks through in one frame, tags and
// tunnels included (an MPLS label stack counts as one): no input makes it
// loop, however it nests.
const maxHeaders = 32

// Decoder turns raw frames of one link type into Segments. It finds the TCP
// segment inside VLAN tags, 802.1BR E-Tags, Cisco FabricPath, MPLS label
// stacks, PPPoE, LLC/SNAP, tunnels (GRE, ERSPAN, VXLAN, Geneve, GTP-U, IP in
// IP, 802.11 in Aruba's GRE and in CAPWAP), IPsec AH and IPComp; the
// segment's addresses are those of the innermost IP header, as Wireshark
// shows them. The payload of IPComp is inflated, as Wireshark does by
// default, into a buffer the Decoder keeps.
//
// A Decoder reassembles IPv4 and IPv6 fragments, at every IP level of a
// frame (a fragmented tunnel packet, or fragments of the packet inside a
// tunnel): a fragment that does not complete its datagram yields no
// segment, and the frame whose fragment completes it yields the datagram's
// segment, with the length the reassembled datagram gives. It holds at
// most 64 incomplete datagrams in 4 MiB, evicting the oldest first, and
// drops one not completed within 30 s (IPv4) or 60 s (IPv6) of capture
// time; fragment.go says which bytes win where fragments overlap. A
// fragment the snap length cut is not reassembled: as in Wireshark, a
// first IPv4 fragment is then decoded as it stands.
//
// It keeps its layer structs between calls, so decoding a frame that is
// not a fragment allocates nothing; fragments are copied into buffers that
// are reused. (Inflating an IPComp payload may allocate the tables of its
// Huffman codes.) CAPWAP fragments are reassembled as IP fragments are. A Decoder carries reassembly state from frame to frame, in
// capture order; it is not safe for concurrent use.
type Decoder struct {
	link  layers.LinkType
	first header // the header every frame starts with

	eth    layers.Ethernet
	dot1q  layers.Dot1Q
	llc    layers.LLC
	snap   layers.SNAP
	lo     layers.Loopback
	ip4    layers.IPv4
	ip6    layers.IPv6
	ext    layers.IPv6ExtensionSkipper
	frag   layers.IPv6Fragment
	udp    layers.UDP
	vxlan  layers.VXLAN
	erspan layers.ERSPANII

	// The innermost IP header decoded so far in the frame: its addresses
	// and what it says of the length of the segment behind it.
	src, dst netip.Addr
	v6       bool
	ip4Len   int  // IPv4: total length less the header
	ip6Cap   int  // IPv6: capacity of the bytes after the fixed header
	ip6Len   int  // IPv6: payload length
	missing  int  // bytes of the frame on the wire that were not captured
	wlanPad  bool // radiotap says the 802.11 header is padded to 4 bytes
	inflated bool // an IPComp payload of the frame was inflated

	// Per frame: its capture time, the VLAN ID of its innermost tag,
	// whether an IP header in it was a fragment, and whether a datagram
	// it completed had fragments that disagree.
	now      time.Time
	vlan     uint16
	fragment bool
	overlap  bool

	frags reassembler
	comp  inflater // IPComp's DEFLATE
}

// header names what the bytes at a point of a frame are.
type header uint8

const (
	hNone header = iota
	hEthernet
	hVLAN // 802.1Q or 802.1ad tag
	hLLC
	hSNAP
	hLoopback
	hSLL
	hSLL2
	hFDDI
	hNFLOG
	hIPoIB
	hPPPWithDir // direction byte, then hPPPHDLC
	hPPPHDLC    // PPP, maybe behind HDLC address and control, or Cisco HDLC
	hPPP        // PPP protocol field
	hPPPoE      // PPPoE session header
	hMPLS
	hIPv4 // Wireshark hands an IPv4 header of version 6 to IPv6
	hIPv6
	hIP       // IPv4 or IPv6, as the version nibble says
	hIPv6Ext  // hop-by-hop, routing or destination options
	hIPv6Frag // IPv6 fragment header
	hGRE
	hERSPAN // ERSPAN type II or III header
	hUDP
	hVXLAN
	hGeneve
	hGTPU
	hWLAN        // 802.11 MAC header
	hWLANSwapped // 802.11 with the frame control bytes swapped, as CAPWAP carries it
	hRadiotap
	hPPI
	hCAPWAP    // CAPWAP data channel header
	hCHDLC     // Cisco HDLC: address, control, protocol
	hARCNET    // ARCNET as Linux writes it
	hARCNETBSD // ARCNET as BSD writes it
	hFabricPath
	hETag // 802.1BR E-Tag
	hAH   // IPsec authentication header
	hIPComp
	hTCP
)

// NewDecoder returns a Decoder for frames of the given link type: Ethernet,
// FDDI, PPP (LINKTYPE_PPP, PPP_HDLC, PPP_WITH_DIR), Cisco HDLC, BSD loopback
// (Null, Loop), raw IPv4/IPv6, Linux cooked capture (SLL, SLL2), Linux
// NFLOG, IP over InfiniBand, 802.11 (bare, with radiotap or PPI headers) or
// ARCNET.
func NewDecoder(link layers.LinkType) (*Decoder, error) {
	d := &Decoder{link: link}
	switch link {
	case layers.LinkTypeEthernet:
		d.first = hEthernet
	case layers.LinkTypeFDDI:
		d.first = hFDDI
	case layers.LinkTypePPP, layers.LinkTypePPP_HDLC:
		d.first = hPPPHDLC
	case linkTypePPPWithDir:
		d.first = hPPPWithDir
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		d.first = hLoopback
	case layers.LinkTypeLinuxSLL:
		d.first = hSLL
	case layers.LinkTypeLinuxSLL2:
		d.first = hSLL2
	case layers.LinkTypeIPv4:
		d.first = hIPv4
	case layers.LinkTypeIPv6:
		d.first = hIPv6
	case layers.LinkTypeRaw, linkTypeRawOpenBSD:
		d.first = hIP
	case linkTypeNFLOG:
		d.first = hNFLOG
	case linkTypeIPoIB:
		d.first = hIPoIB
	case layers.LinkTypeIEEE802_11:
		d.first = hWLAN
	case layers.LinkTypeIEEE80211Radio:
		d.first = hRadiotap
	case linkTypePPI:
		d.first = hPPI
	case linkTypeCHDLC:
		d.first = hCHDLC
	case linkTypeARCNET:
		d.first = hARCNET
	case linkTypeARCNETBSD:
		d.first = hARCNETBSD
	default:
		return nil, fmt.Errorf("%w %d (%s): tcplab reads Ethernet, FDDI, PPP (9, 50, 204), Cisco HDLC (104), Null/Loop, raw IP, Linux SLL/SLL2, NFLOG (239), IP over InfiniBand (242), 802.11 (105, radiotap 127, PPI 192) and ARCNET (7, 129)",
			ErrUnsupportedLinkType, int(link), link)
	}
	return d, nil
}

// Decode decodes one frame into seg. It reports false when the frame holds
// no TCP segment (another protocol, an IP fragment that does not complete
// its datagram, TCP quoted in an ICMP error, an unknown tunnel, or bytes
// that do not parse). A TCP header cut by the snap length still yields a
// segment, with seg.Problem set and the missing fields zero, unless the
// cut leaves less than its ports. Decode takes
// data for the whole frame and no capture time, so incomplete datagrams
// never time out; Walk decodes with DecodeFrame.
func (d *Decoder) Decode(data []byte, seg *Segment) bool {
	return d.DecodeFrame(data, gopacket.CaptureInfo{CaptureLength: len(data), Length: len(data)}, seg)
}

// DecodeFrame is Decode for a frame captured as ci says: ci.Length bytes
// long on the wire, of which data holds what was captured, at
// ci.Timestamp. The wire length bounds the segment's length when the IP
// header claims more, as in Wireshark; the timestamp times out incomplete
// IP datagrams. A segment reassembled from fragments whose bytes disagree
// has seg.Problem FragmentOverlap, unless its header is cut.
func (d *Decoder) DecodeFrame(data []byte, ci gopacket.CaptureInfo, seg *Segment) (ok bool) {
	defer d.recoverPanic(&ok)
	d.missing = max(ci.Length-len(data), 0)
	d.now, d.vlan, d.fragment, d.overlap = ci.Timestamp, 0, false, false
	d.wlanPad, d.inflated = false, false
	d.frags.newFrame()
	// A loop over the headers rather than gopacket's DecodingLayerParser:
	// it bounds the nesting, lets tcplab choose the next header as
	// Wireshark does, and a switch costs less than the parser's map.
	h := d.first
	for range maxHeaders {
		if h == hTCP {
			ok = d.segment(data, seg)
			if ok && d.overlap && seg.Problem == NoProblem {
				seg.Problem = FragmentOverlap
			}
			return ok
		}
		data, h = d.next(h, data)
		if h == hNone {
			return false
		}
	}
	return false
}

// letPanicsThrough makes Decode let a panic through instead of reporting
// false; the tests set it, so that they and the fuzzer see every panic.
var letPanicsThrough = false

// recoverPanic turns a panic of a layer decoder on hostile bytes into a
// frame without TCP, as gopacket's DecodingLayerParser did.
func (d *Decoder) recoverPanic(ok *bool) {
	if letPanicsThrough {
		return
	}
	if r := recover(); r != nil {
		*ok = false
	}
}

// next decodes the header h at the start of data and returns the bytes
// after it and what they are; hNone when the header does not parse or
// carries nothing that can hold TCP.
func (d *Decoder) next(h header, data []byte) ([]byte, header) {
	nofb := gopacket.NilDecodeFeedback
	switch h {
	case hEthernet:
		if d.eth.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		if b, ok := d.fabricPath(data); ok {
			return b, hEthernet
		}
		// gopacket turns an 802.3 length into EthernetTypeLLC.
		return d.eth.Payload, etherHeader(d.eth.EthernetType)
	case hVLAN:
		if d.dot1q.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		d.vlan = d.dot1q.VLANIdentifier
		if d.dot1q.Type < 0x0600 {
			return d.dot1q.Payload, hLLC
		}
		return d.dot1q.Payload, etherHeader(d.dot1q.Type)
	case hLLC:
		if d.llc.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		switch {
		case d.llc.DSAP == 0xaa && d.llc.SSAP == 0xaa:
			return d.llc.Payload, hSNAP
		case d.llc.DSAP == 0x06: // the SAP of IP
			return d.llc.Payload, hIPv4
		}
	case hSNAP:
		if d.snap.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		// Only these organization codes say the protocol ID is an
		// EtherType (encapsulated Ethernet, Cisco 90-compatible).
		if oui := d.snap.OrganizationalCode; oui[0] == 0 && oui[1] == 0 && (oui[2] == 0 || oui[2] == 0xf8) {
			return d.snap.Payload, etherHeader(d.snap.Type)
		}
	case hLoopback:
		if d.lo.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		switch d.lo.NextLayerType() {
		case layers.LayerTypeIPv4:
			return d.lo.Payload, hIPv4
		case layers.LayerTypeIPv6:
			return d.lo.Payload, hIPv6
		}
	case hSLL:
		// Not gopacket's LinuxSLL: it refuses an address length above 8
		// (an InfiniBand address has 20 bytes), which Wireshark ignores,
		// the address field having 8 bytes whatever the length says.
		if len(data) < 16 {
			return nil, hNone
		}
		return data[16:], sllHeader(binary.BigEndian.Uint16(data[2:4]), binary.BigEndian.Uint16(data[14:16]))
	case hSLL2:
		if len(data) < 20 {
			return nil, hNone
		}
		return data[20:], sllHeader(binary.BigEndian.Uint16(data[8:10]), binary.BigEndian.Uint16(data[0:2]))
	case hIPv4:
		if len(data) > 0 && data[0]>>4 == 6 {
			return d.next(hIPv6, data)
		}
		if len(data) == 0 || data[0]>>4 != 4 || d.ip4.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		d.src = netip.AddrFrom4([4]byte(d.ip4.SrcIP))
		d.dst = netip.AddrFrom4([4]byte(d.ip4.DstIP))
		d.v6, d.ip4Len = false, int(d.ip4.Length)-int(d.ip4.IHL)*4
		if d.ip4.FragOffset != 0 || d.ip4.Flags&layers.IPv4MoreFragments != 0 {
			return d.fragment4()
		}
		return d.ip4.Payload, ipHeader(d.ip4.Protocol, false)
	case hIPv6:
		if len(data) == 0 || data[0]>>4 != 6 || d.ip6.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		d.src = netip.AddrFrom16([16]byte(d.ip6.SrcIP))
		d.dst = netip.AddrFrom16([16]byte(d.ip6.DstIP))
		d.v6, d.ip6Cap, d.ip6Len = true, cap(data)-len(d.ip6.Contents), int(d.ip6.Length)
		next := d.ip6.NextHeader
		if d.ip6.HopByHop != nil {
			// gopacket folds a hop-by-hop header into its IPv6 layer.
			next = d.ip6.HopByHop.NextHeader
		}
		return d.ip6.Payload, ipHeader(next, true)
	case hIP:
		if len(data) > 0 {
			switch data[0] >> 4 {
			case 4:
				return d.next(hIPv4, data)
			case 6:
				return d.next(hIPv6, data)
			}
		}
	case hIPv6Ext:
		if d.ext.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		return d.ext.Payload, ipHeader(d.ext.NextHeader, true)
	case hIPv6Frag:
		if d.frag.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		if d.frag.FragmentOffset != 0 || d.frag.MoreFragments {
			return d.fragment6()
		}
		// An atomic fragment (RFC 8200 section 4.5): the packet is whole.
		return d.frag.Payload, ipHeader(d.frag.NextHeader, true)
	case hUDP:
		if d.udp.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		return d.udp.Payload, udpHeader(uint16(d.udp.SrcPort), uint16(d.udp.DstPort))
	case hVXLAN:
		if d.vxlan.DecodeFromBytes(data, nofb) != nil {
			return nil, hNone
		}
		return d.vxlan.Payload, hEthernet
	case hERSPAN:
		return d.erspanHeader(data)
	case hGRE:
		return d.greHeader(data)
	case hGeneve:
		return geneveHeader(data)
	case hGTPU:
		return gtpuHeader(data)
	case hMPLS:
		return mplsHeader(data)
	case hPPPoE:
		return pppoeHeader(data)
	case hPPP:
		return pppHeader(data)
	case hPPPHDLC:
		return pppHDLCHeader(data)
	case hPPPWithDir:
		if len(data) > 0 {
			return data[1:], hPPPHDLC
		}
	case hFDDI:
		return fddiHeader(data)
	case hNFLOG:
		return nflogHeader(data)
	case hIPoIB:
		return ipoibHeader(data)
	case hWLAN, hWLANSwapped:
		return d.wlanHeader(data, h == hWLANSwapped)
	case hRadiotap:
		return d.radiotapHeader(data)
	case hPPI:
		return d.ppiHeader(data)
	case hCAPWAP:
		return d.capwapHeader(data)
	case hCHDLC:
		return ciscoHDLCHeader(data)
	case hARCNET, hARCNETBSD:
		return arcnetHeader(data, h == hARCNET)
	case hETag:
		return etagHeader(data)
	case hAH:
		return d.ahHeader(data)
	case hIPComp:
		return d.ipcompHeader(data)
	}
	return nil, hNone
}

// etherHeader returns the header an EtherType announces.
func etherHeader(t layers.EthernetType) header {
	switch t {
	case layers.EthernetTypeIPv4:
		return hIPv4
	case layers.EthernetTypeIPv6:
		return hIPv6
	case layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ, 0x9100: // 0x9100: QinQ before 802.1ad
		return hVLAN
	case layers.EthernetTypeMPLSUnicast, layers.EthernetTypeMPLSMulticast:
		return hMPLS
	case layers.EthernetTypePPPoESession:
		return hPPPoE
	case layers.EthernetTypeTransparentEthernetBridging:
		return hEthernet
	case layers.EthernetTypeLLC: // what gopacket makes of an 802.3 length
		return hLLC
	case etherTypeETag:
		return hETag
	}
	return hNone
}

// sllHeader returns the header after a Linux cooked header with the given
// ARPHRD_ type and protocol.
func sllHeader(hatype, protocol uint16) header {
	switch {
	case hatype == 778: // ARPHRD_IPGRE: the protocol is a GRE protocol type
		return greProtocol(protocol, false)
	case hatype == 803 && protocol <= 1536:
		// ARPHRD_IEEE80211_RADIOTAP, and a Linux protocol type rather
		// than an EtherType: Wireshark reads radiotap.
		return hRadiotap
	case hatype == 824: // ARPHRD_NETLINK
		return hNone
	case protocol == 0x0004: // LINUX_SLL_P_802_2
		return hLLC
	case protocol == 0x0007: // LINUX_SLL_P_PPPHDLC
		return hPPPHDLC
	}
	return etherHeader(layers.EthernetType(protocol))
}

// ipHeader returns the header an IP protocol number announces. TCP quoted
// in an ICMP error is not a segment: ICMP is not followed.
func ipHeader(p layers.IPProtocol, v6 bool) header {
	switch p {
	case layers.IPProtocolTCP:
		return hTCP
	case layers.IPProtocolUDP:
		return hUDP
	case layers.IPProtocolGRE:
		return hGRE
	case layers.IPProtocolIPv4: // IP in IP
		return hIPv4
	case layers.IPProtocolIPv6: // 6in4, IPv6 in IPv6
		return hIPv6
	case 137: // MPLS in IP
		return hMPLS
	case layers.IPProtocolAH:
		return hAH
	case ipProtocolIPComp:
		return hIPComp
	}
	if v6 {
		switch p {
		case layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Destination:
			return hIPv6Ext
		case layers.IPProtocolIPv6Fragment:
			return hIPv6Frag
		}
	}
	return hNone
}

// UDP ports of the tunnels tcplab follows.
const (
	portVXLAN  = 4789
	portGeneve = 6081
	portGTPU   = 2152
	portCAPWAP = 5247 // the data channel
)

// udpHeader returns the tunnel a UDP datagram between the two ports
// carries. Like Wireshark, it tries the lower port first.
func udpHeader(src, dst uint16) header {
	lo, hi := min(src, dst), max(src, dst)
	for _, p := range [2]uint16{lo, hi} {
		switch p {
		case portVXLAN:
			return hVXLAN
		case portGeneve:
			return hGeneve
		case portGTPU:
			return hGTPU
		case portCAPWAP:
			return hCAPWAP
		}
	}
	return hNone
}

// segment fills seg from l4, the captured bytes of a TCP segment behind the
// innermost IP header.
func (d *Decoder) segment(l4 []byte, seg *Segment) bool {
	*seg = Segment{Src: netip.AddrPortFrom(d.src, 0), Dst: netip.AddrPortFrom(d.dst, 0), Options: Options{WindowScale: -1}}
	if hdr, ok := tcpHeader(l4); ok {
		d.fixed(seg, l4)
		seg.Len = max(d.l4Len(l4)-hdr, 0)
		parseOptions(&seg.Options, l4[20:hdr])
		return true
	}
	// The header is not whole: the snap length cut it (or its data
	// offset is bogus). Report what is there.
	if len(l4) >= 20 {
		// Only options were cut: every field tcplab reasons about is there.
		hdr := int(l4[12]>>4) * 4
		if hdr < 20 {
			// A data offset below 5 words: not a TCP header at all.
			return false
		}
		d.fixed(seg, l4)
		seg.Problem = OptionsCut
		parseOptions(&seg.Options, l4[20:min(hdr, len(l4))])
		seg.Len = max(d.l4Len(l4)-hdr, 0)
		return true
	}
	if len(l4) < 4 {
		// Not even the ports: tshark shows no TCP field of it, and
		// there is no connection to put it in.
		return false
	}
	seg.Problem, seg.HeaderBytes = HeaderCut, len(l4)
	seg.Src = netip.AddrPortFrom(seg.Src.Addr(), binary.BigEndian.Uint16(l4[0:2]))
	seg.Dst = netip.AddrPortFrom(seg.Dst.Addr(), binary.BigEndian.Uint16(l4[2:4]))
	if len(l4) >= 8 {
		seg.Seq = binary.BigEndian.Uint32(l4[4:8])
	}
	if len(l4) >= 12 {
		seg.Ack = binary.BigEndian.Uint32(l4[8:12])
	}
	hdr := 20
	if len(l4) >= 14 {
		hdr = int(l4[12]>>4) * 4
		seg.Flags = Flags(l4[13])
	}
	if len(l4) >= 16 {
		seg.Window = binary.BigEndian.Uint16(l4[14:16])
	}
	seg.Len = max(d.l4Len(l4)-hdr, 0)
	return true
}

// fixed fills the fields of the fixed 20-byte TCP header from l4.
func (d *Decoder) fixed(seg *Segment, l4 []byte) {
	seg.Src = netip.AddrPortFrom(seg.Src.Addr(), binary.BigEndian.Uint16(l4[0:2]))
	seg.Dst = netip.AddrPortFrom(seg.Dst.Addr(), binary.BigEndian.Uint16(l4[2:4]))
	seg.Seq = binary.BigEndian.Uint32(l4[4:8])
	seg.Ack = binary.BigEndian.Uint32(l4[8:12])
	seg.Flags = Flags(l4[13])
	seg.Window = binary.BigEndian.Uint16(l4[14:16])
}

// tcpHeader returns the length of the TCP header at the start of l4, and
// whether it is whole: at least the fixed 20 bytes, and its data offset at
// least 5 words and within what was captured. These are the headers
// gopacket's TCP layer accepts (its options, malformed or not, never make
// it refuse one: TestTCPHeaderAsGopacket); reading the header here costs
// a tenth of what that layer does.
func tcpHeader(l4 []byte) (int, bool) {
	if len(l4) < 20 {
		return 0, false
	}
	hdr := int(l4[12]>>4) * 4
	return hdr, hdr >= 20 && hdr <= len(l4)
}

// l4Len returns the length of the TCP segment (header and payload) as the
// innermost IP header states it, whatever the snap length kept, but no more
// than the frame held on the wire. l4 is the
// captured part of the segment; behind IPv6 it shares its array with the
// IPv6 header, so the difference of capacities is the length of the
// extension headers in between. (The IPv6 layer's Payload already starts
// after a hop-by-hop header, so it cannot serve as the reference.)
func (d *Decoder) l4Len(l4 []byte) int {
	n := d.ip4Len
	if d.v6 {
		n = d.ip6Len - max(d.ip6Cap-cap(l4), 0)
	}
	// A frame shorter on the wire than its IP header says (a bogus
	// length, or one rewritten by offload) holds only what it holds.
	return min(n, len(l4)+d.missing)
}

// parseOptions reads the TCP options tcplab reports from the option bytes of
// a header. Malformed options end the parse; what was read stays.
func parseOptions(o *Options, b []byte) {
	for len(b) > 0 {
		kind := b[0]
		if kind == 0 {
			return
		}
		if kind == 1 {
			b = b[1:]
			continue
		}
		if len(b) < 2 || int(b[1]) < 2 || int(b[1]) > len(b) {
			return
		}
		v := b[2:b[1]]
		switch kind {
		case 2:
			if len(v) == 2 {
				o.MSS = binary.BigEndian.Uint16(v)
			}
		case 3:
			if len(v) == 1 {
				o.WindowScale = int8(min(v[0], 14))
			}
		case 4:
			o.SACKPermitted = true
		case 5:
			o.NSACK = 0
			for len(v) >= 8 && int(o.NSACK) < len(o.SACK) {
				o.SACK[o.NSACK] = SACKBlock{binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])}
				o.NSACK++
				v = v[8:]
			}
		case 34, 254:
			parseFastOpen(o, kind, v)
		case 8:
			if len(v) == 8 {
				o.HasTimestamps = true
				o.TSVal, o.TSEcr = binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])
			}
		}
		b = b[b[1]:]
	}
}
