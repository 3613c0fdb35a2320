package capture

import (
	"encoding/binary"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Parsers for the headers gopacket has no allocation-free DecodingLayer for.
// Each takes the bytes at the start of its header and returns the bytes
// after it and the header they hold, or hNone. Where a header leaves a
// choice open, they decide as Wireshark 4.0 does, so that tcplab sees the
// same TCP segments as tshark.

// GRE protocol types beyond the EtherTypes.
const (
	greERSPAN  = 0x88be // ERSPAN type I (no sequence number) or II
	greERSPAN3 = 0x22eb // ERSPAN type III
	grePPP     = 0x880b // PPP, in PPTP's enhanced GRE (version 1)
)

// greHeader parses a GRE header (RFC 1701, 2784, 2890; version 1 of RFC
// 2637): checksum and offset, key, sequence number, acknowledgment number
// (version 1 only) and source routes, each present as its flag says.
func (d *Decoder) greHeader(b []byte) ([]byte, header) {
	if len(b) < 4 {
		return nil, hNone
	}
	checksum, routing, key, seq := b[0]&0x80 != 0, b[0]&0x40 != 0, b[0]&0x20 != 0, b[0]&0x10 != 0
	ack := b[1]&0x07 == 1 && b[1]&0x80 != 0
	proto := binary.BigEndian.Uint16(b[2:4])
	n := 4
	if checksum || routing {
		n += 4
	}
	if key {
		n += 4
	}
	if seq {
		n += 4
	}
	if ack {
		n += 4
	}
	if n > len(b) {
		return nil, hNone
	}
	if routing {
		// Source route entries up to a null one; each takes at least
		// four bytes, so the loop ends with the frame.
		for {
			if n+4 > len(b) {
				return nil, hNone
			}
			family, length := binary.BigEndian.Uint16(b[n:]), int(b[n+3])
			n += 4 + length
			if n > len(b) {
				return nil, hNone
			}
			if family == 0 && length == 0 {
				break
			}
		}
	}
	return b[n:], greProtocol(proto, seq)
}

// greProtocol returns the header a GRE protocol type announces; seq says
// whether the GRE header had a sequence number.
func greProtocol(proto uint16, seq bool) header {
	switch proto {
	case greERSPAN:
		if !seq {
			// Type I: the mirrored frame follows the bare GRE header.
			return hEthernet
		}
		return hERSPAN
	case greERSPAN3:
		return hERSPAN
	case grePPP:
		return hPPPHDLC
	}
	if greAruba(proto) {
		return hWLAN
	}
	return etherHeader(layers.EthernetType(proto))
}

// erspanHeader parses an ERSPAN type II or III header, as its version says,
// in front of a mirrored Ethernet frame.
func (d *Decoder) erspanHeader(b []byte) ([]byte, header) {
	if len(b) < 1 {
		return nil, hNone
	}
	switch b[0] >> 4 {
	case 1: // type II: 8 bytes
		if d.erspan.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
			return nil, hNone
		}
		return d.erspan.Payload, hEthernet
	case 2: // type III: 12 bytes, and an 8-byte platform-specific subheader when O is set
		if len(b) < 12 {
			return nil, hNone
		}
		last := binary.BigEndian.Uint16(b[10:12])
		if frameType := last >> 10 & 0x1f; frameType != 0 {
			// Not Ethernet: Wireshark shows the rest as data.
			return nil, hNone
		}
		n := 12
		if last&1 != 0 {
			n += 8
		}
		if n > len(b) {
			return nil, hNone
		}
		return b[n:], hEthernet
	}
	return nil, hNone
}

// geneveHeader parses a Geneve header (RFC 8926) and skips its options.
func geneveHeader(b []byte) ([]byte, header) {
	if len(b) < 8 {
		return nil, hNone
	}
	n := 8 + int(b[0]&0x3f)*4
	if n > len(b) {
		return nil, hNone
	}
	return b[n:], etherHeader(layers.EthernetType(binary.BigEndian.Uint16(b[2:4])))
}

// gtpuHeader parses a GTPv1-U header (3GPP TS 29.281) with its optional
// fields and extension headers. Only a G-PDU carries a packet; like
// Wireshark, tcplab takes it for IPv4 or IPv6 as its version nibble says,
// within the length the header states.
func gtpuHeader(b []byte) ([]byte, header) {
	if len(b) < 8 {
		return nil, hNone
	}
	flags, msgType := b[0], b[1]
	if flags>>5 != 1 || flags&0x10 == 0 {
		// Not version 1 with protocol type GTP (GTP' or GTPv2 instead).
		return nil, hNone
	}
	end := min(8+int(binary.BigEndian.Uint16(b[2:4])), len(b))
	n := 8
	if flags&0x07 != 0 {
		// Sequence number, N-PDU number, next extension header type.
		n = 12
		if n > end {
			return nil, hNone
		}
		if flags&0x04 != 0 {
			// Each extension header takes its length in 4-byte units
			// (at least one), its last byte the type of the next one.
			for next := b[11]; next != 0; {
				if n >= end || b[n] == 0 {
					return nil, hNone
				}
				l := int(b[n]) * 4
				if n+l > end {
					return nil, hNone
				}
				next = b[n+l-1]
				n += l
			}
		}
	}
	if msgType != 0xff {
		return nil, hNone
	}
	return b[n:end], hIP
}

// mplsHeader skips an MPLS label stack up to the bottom-of-stack entry. No
// field says what follows; like Wireshark, tcplab takes the version nibble
// of the payload: 4 for IPv4, 6 for IPv6, nothing else.
func mplsHeader(b []byte) ([]byte, header) {
	for len(b) >= 4 {
		bottom := b[2]&0x01 != 0
		b = b[4:]
		if bottom {
			return b, hIP
		}
	}
	return nil, hNone
}

// pppoeHeader parses a PPPoE session header (RFC 2516), then PPP within the
// length it states. Like Wireshark, it checks neither version nor code.
func pppoeHeader(b []byte) ([]byte, header) {
	if len(b) < 6 {
		return nil, hNone
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	b = b[6:]
	if n < len(b) {
		b = b[:n] // Ethernet padding
	}
	return b, hPPP
}

// pppHeader parses the PPP protocol field, one byte when compressed (RFC
// 1661 section 6.5: an odd first byte).
func pppHeader(b []byte) ([]byte, header) {
	var proto uint16
	switch {
	case len(b) >= 1 && b[0]&1 != 0:
		proto, b = uint16(b[0]), b[1:]
	case len(b) >= 2:
		proto, b = binary.BigEndian.Uint16(b), b[2:]
	default:
		return nil, hNone
	}
	switch proto {
	case 0x0021:
		return b, hIPv4
	case 0x0057:
		return b, hIPv6
	case 0x0281, 0x0283:
		return b, hMPLS
	}
	return nil, hNone
}

// pppHDLCHeader parses PPP as LINKTYPE_PPP and PPP_HDLC hold it: HDLC
// address and control (0xff 0x03) when not compressed away, then PPP; or a
// Cisco HDLC header (address 0x0f or 0x8f, control, EtherType).
func pppHDLCHeader(b []byte) ([]byte, header) {
	if len(b) < 1 {
		return nil, hNone
	}
	switch b[0] {
	case 0x0f, 0x8f:
		return ciscoHDLCHeader(b)
	case 0xff:
		if len(b) < 2 {
			return nil, hNone
		}
		b = b[2:]
	}
	return b, hPPP
}

// ciscoHDLCHeader parses a Cisco HDLC header: address (unicast 0x0f or
// broadcast 0x8f, not checked), control, and a protocol. Wireshark's table
// of Cisco HDLC protocols knows fewer EtherTypes than Ethernet's: no VLAN
// tag, no PPPoE.
func ciscoHDLCHeader(b []byte) ([]byte, header) {
	if len(b) < 4 {
		return nil, hNone
	}
	switch t := layers.EthernetType(binary.BigEndian.Uint16(b[2:4])); t {
	case layers.EthernetTypeIPv4, layers.EthernetTypeIPv6, layers.EthernetTypeMPLSUnicast,
		layers.EthernetTypeMPLSMulticast, layers.EthernetTypeTransparentEthernetBridging:
		return b[4:], etherHeader(t)
	}
	return nil, hNone
}

// ARCNET protocol IDs of IP, as Wireshark names them.
const (
	arcnetIP1201 = 0xd4 // RFC 1201: split flag and sequence number follow
	arcnetIP1051 = 0xf0 // RFC 1051: the packet follows
	arcnetIPv6   = 0xc4 // RFC 2497, in RFC 1201's format
)

// arcnetHeader parses an ARCNET header: source, destination, the offset
// field Linux keeps (linux), the protocol ID and, for the protocols of
// RFC 1201, the split flag and sequence number. BSD writes an exception
// packet (split flag 0xff) with four more bytes; Wireshark reads Linux's
// without them. Like Wireshark, tcplab does not reassemble split packets:
// a fragment is taken as it stands.
func arcnetHeader(b []byte, linux bool) ([]byte, header) {
	n := 2
	if linux {
		n += 2
	}
	if n >= len(b) {
		return nil, hNone
	}
	proto := b[n]
	n++
	var next header
	switch proto {
	case arcnetIP1051:
		return b[n:], hIPv4
	case arcnetIP1201:
		next = hIPv4
	case arcnetIPv6:
		next = hIPv6
	default:
		return nil, hNone
	}
	if n >= len(b) {
		return nil, hNone
	}
	if b[n] == 0xff && !linux {
		n += 4
	}
	n += 3 // split flag, sequence number
	if n > len(b) {
		return nil, hNone
	}
	return b[n:], next
}

// fddiHeader parses an FDDI MAC header: frame control, destination and
// source addresses. Only LLC frames (frame control 0x50-0x5f, as Wireshark
// reads them) carry packets.
func fddiHeader(b []byte) ([]byte, header) {
	if len(b) < 13 || b[0]&0xf0 != 0x50 {
		return nil, hNone
	}
	return b[13:], hLLC
}

// ipoibHeader parses LINKTYPE_IPOIB as Wireshark 4.0 reads it: a 40-byte
// pseudo-header (the GRH, or the destination address), then the RFC 4391
// header: an EtherType and two reserved bytes.
func ipoibHeader(b []byte) ([]byte, header) {
	if len(b) < 44 {
		return nil, hNone
	}
	switch binary.BigEndian.Uint16(b[40:42]) {
	case 0x0800:
		return b[44:], hIPv4
	case 0x86dd:
		return b[44:], hIPv6
	}
	return nil, hNone
}

// NFLOG TLV types.
const (
	nflogPacketHeader = 1 // hardware protocol (an EtherType) and hook
	nflogPayload      = 9 // the packet, from its network header
)

// nflogHeader parses a LINKTYPE_NFLOG frame: family, version and resource
// ID, then TLVs whose length and type fields are in the byte order of the
// host that wrote the file. The file's byte order is not known here, so it
// is guessed from the type of the first TLV (types are small numbers).
// The packet is the payload TLV's value; like Wireshark, tcplab reads it as
// the hardware protocol says, failing that as the family says (2 IPv4, 10
// IPv6), and gives up on a TLV shorter than its own header.
func nflogHeader(b []byte) ([]byte, header) {
	if len(b) < 4 {
		return nil, hNone
	}
	family := b[0]
	be := len(b) >= 8 && b[6] == 0 && b[7] != 0
	u16 := func(p []byte) uint16 {
		if be {
			return binary.BigEndian.Uint16(p)
		}
		return binary.LittleEndian.Uint16(p)
	}
	var payload []byte
	var found bool
	var hw uint16
	for n := 4; len(b)-n >= 4; {
		l, t := int(u16(b[n:])), u16(b[n+2:])&0x7fff
		if l < 4 {
			return nil, hNone
		}
		if n+l > len(b) {
			// Past the captured bytes: the snap length cut this TLV,
			// so it is the last one there is.
			if t == nflogPayload {
				payload, found = b[n+4:], true
			}
			break
		}
		switch {
		case t == nflogPacketHeader && l == 8:
			hw = binary.BigEndian.Uint16(b[n+4:])
		case t == nflogPayload:
			payload, found = b[n+4:n+l], true
		}
		n += (l + 3) &^ 3
	}
	switch {
	case !found:
		return nil, hNone
	case hw != 0:
		return payload, etherHeader(layers.EthernetType(hw))
	case family == 2:
		return payload, hIPv4
	case family == 10:
		return payload, hIPv6
	}
	return nil, hNone
}

// EtherTypes of headers tcplab skips on the way to IP.
const (
	etherTypeFabricPath = 0x8903 // Cisco FabricPath
	etherTypeETag       = 0x893f // 802.1BR E-Tag
)

// fabricPath reports whether the Ethernet frame eth is Cisco FabricPath
// and returns the frame inside. Like Wireshark, it takes a frame for
// FabricPath when its EtherType is 0x8903, or that of its one 802.1Q or
// 802.1ad tag is (not a tag behind another, nor a 0x9100 tag): the
// outer addresses (and tag) are the FabricPath header's, FTag and TTL
// follow the EtherType, and the outer frame's last four bytes are its FCS.
func (d *Decoder) fabricPath(eth []byte) ([]byte, bool) {
	n := 12
	if len(eth) >= 18 {
		if t := layers.EthernetType(binary.BigEndian.Uint16(eth[12:])); t == layers.EthernetTypeDot1Q || t == layers.EthernetTypeQinQ {
			n = 16
		}
	}
	if len(eth) < n+4 || binary.BigEndian.Uint16(eth[n:]) != etherTypeFabricPath {
		return nil, false
	}
	return d.trimTrailer(eth[n+4:], 4), true
}

// etagHeader parses an 802.1BR E-Tag: six bytes of tag, then the
// EtherType of what follows.
func etagHeader(b []byte) ([]byte, header) {
	if len(b) < 8 {
		return nil, hNone
	}
	return b[8:], etherHeader(layers.EthernetType(binary.BigEndian.Uint16(b[6:8])))
}

// ahHeader parses an IPsec authentication header (RFC 4302): next
// header, then its length in 32-bit words less 2. Behind IPv4 the
// segment's length is what the IP header leaves after it.
func (d *Decoder) ahHeader(b []byte) ([]byte, header) {
	if len(b) < 12 {
		return nil, hNone
	}
	n := (int(b[1]) + 2) * 4
	if n > len(b) {
		return nil, hNone
	}
	if !d.v6 {
		// Behind IPv6 l4Len measures the extension headers itself.
		d.ip4Len -= n
	}
	return b[n:], ipHeader(layers.IPProtocol(b[0]), d.v6)
}

// ipProtocolIPComp is the IP protocol number of IP payload compression.
const ipProtocolIPComp layers.IPProtocol = 108

// ipcompHeader parses an IPComp header (RFC 3173) and inflates the
// payload behind it, as Wireshark 4.0 does by default whatever the CPI
// says: the segment is then the inflated bytes, its length theirs.
func (d *Decoder) ipcompHeader(b []byte) ([]byte, header) {
	if len(b) < 4 || d.inflated {
		// A second IPComp in one frame would inflate into the buffer
		// that holds its input; no sender compresses twice.
		return nil, hNone
	}
	d.inflated = true
	out, ok := d.comp.inflate(b[4:])
	if !ok {
		return nil, hNone
	}
	if d.v6 {
		d.ip6Len, d.ip6Cap = len(out), cap(out)
	} else {
		d.ip4Len = len(out)
	}
	d.missing = 0
	return out, ipHeader(layers.IPProtocol(b[0]), d.v6)
}
