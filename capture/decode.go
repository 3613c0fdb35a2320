package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// ErrUnsupportedLinkType is returned by NewDecoder for a link type tcplab
// cannot decode.
var ErrUnsupportedLinkType = errors.New("unsupported link type")

// Decoder turns raw frames of one link type into Segments. It keeps its layer
// structs between calls, so decoding allocates nothing; a Decoder is not safe
// for concurrent use.
type Decoder struct {
	link layers.LinkType

	eth   layers.Ethernet
	dot1q layers.Dot1Q
	lo    layers.Loopback
	sll   layers.LinuxSLL
	sll2  layers.LinuxSLL2
	ip4   layers.IPv4
	ip6   layers.IPv6
	ext   layers.IPv6ExtensionSkipper
	frag  layers.IPv6Fragment
	tcp   layers.TCP

	parser *gopacket.DecodingLayerParser
	// raw link types carry IPv4 or IPv6 with nothing in front: the first
	// nibble says which, so each family gets a parser of its own.
	raw4, raw6 *gopacket.DecodingLayerParser
	decoded    []gopacket.LayerType
}

// NewDecoder returns a Decoder for frames of the given link type: Ethernet,
// BSD loopback (Null, Loop), raw IPv4/IPv6, or Linux cooked capture (SLL,
// SLL2).
func NewDecoder(link layers.LinkType) (*Decoder, error) {
	d := &Decoder{link: link, decoded: make([]gopacket.LayerType, 0, 8)}
	// frag comes after ext, so it decodes IPv6 fragment headers: what
	// follows a fragment header is a piece of a segment, not a TCP header,
	// unless the fragment is atomic (RFC 8200 section 4.5).
	all := []gopacket.DecodingLayer{&d.eth, &d.dot1q, &d.lo, &d.sll, &d.sll2, &d.ip4, &d.ip6, &d.ext, &d.frag, &d.tcp}
	newParser := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first, all...)
		p.IgnoreUnsupported = true
		return p
	}
	switch link {
	case layers.LinkTypeEthernet:
		d.parser = newParser(layers.LayerTypeEthernet)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		d.parser = newParser(layers.LayerTypeLoopback)
	case layers.LinkTypeLinuxSLL:
		d.parser = newParser(layers.LayerTypeLinuxSLL)
	case layers.LinkTypeLinuxSLL2:
		d.parser = newParser(layers.LayerTypeLinuxSLL2)
	case layers.LinkTypeIPv4:
		d.parser = newParser(layers.LayerTypeIPv4)
	case layers.LinkTypeIPv6:
		d.parser = newParser(layers.LayerTypeIPv6)
	case layers.LinkTypeRaw, 12: // 12 is DLT_RAW on OpenBSD, LINKTYPE_RAW in files written there
		d.raw4 = newParser(layers.LayerTypeIPv4)
		d.raw6 = newParser(layers.LayerTypeIPv6)
	default:
		return nil, fmt.Errorf("%w %d (%s): tcplab reads Ethernet, Null/Loop, raw IP and Linux SLL/SLL2", ErrUnsupportedLinkType, int(link), link)
	}
	return d, nil
}

// Decode decodes one frame into seg. It reports false when the frame holds
// no TCP segment (another protocol, a later IP fragment, or bytes that do
// not parse). A TCP header cut by the snap length still yields a segment,
// with seg.Truncated set and the missing fields zero.
func (d *Decoder) Decode(data []byte, seg *Segment) bool {
	p := d.parser
	if p == nil {
		if len(data) == 0 {
			return false
		}
		switch data[0] >> 4 {
		case 4:
			p = d.raw4
		case 6:
			p = d.raw6
		default:
			return false
		}
	}
	err := p.DecodeLayers(data, &d.decoded)
	n := len(d.decoded)
	if n == 0 {
		return false
	}
	*seg = Segment{Options: Options{WindowScale: -1}}
	last := d.decoded[n-1]
	if last == layers.LayerTypeTCP && err == nil {
		return d.fromTCP(seg)
	}
	// The TCP layer failed: when the IP layer says TCP follows, the snap
	// length cut the TCP header. Report what is there.
	var l4 []byte
	switch {
	case last == layers.LayerTypeTCP:
		l4 = d.tcp.Contents
	case last == layers.LayerTypeIPv4 && d.ip4.Protocol == layers.IPProtocolTCP && d.ip4.FragOffset == 0:
		l4 = d.ip4.Payload
	case (last == layers.LayerTypeIPv6 && d.ip6.NextHeader == layers.IPProtocolTCP) ||
		(last == layers.LayerTypeIPv6HopByHop || last == layers.LayerTypeIPv6Destination || last == layers.LayerTypeIPv6Routing) && d.ext.NextHeader == layers.IPProtocolTCP:
		l4 = d.ext.Payload
		if last == layers.LayerTypeIPv6 {
			l4 = d.ip6.Payload
		}
	default:
		return false
	}
	if !d.addresses(seg) {
		return false
	}
	if len(l4) >= 20 {
		// Only options were cut: every field tcplab reasons about is there.
		hdr := int(l4[12]>>4) * 4
		if hdr < 20 {
			// A data offset below 5 words: not a TCP header at all.
			return false
		}
		d.fixed(seg, l4)
		parseOptions(&seg.Options, l4[20:min(hdr, len(l4))])
		seg.Len = max(d.l4Len(l4)-hdr, 0)
		return true
	}
	seg.Truncated = true
	if len(l4) >= 4 {
		seg.Src = netip.AddrPortFrom(seg.Src.Addr(), binary.BigEndian.Uint16(l4[0:2]))
		seg.Dst = netip.AddrPortFrom(seg.Dst.Addr(), binary.BigEndian.Uint16(l4[2:4]))
	}
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
	seg.Len = d.l4Len(l4) - hdr
	if seg.Len < 0 {
		seg.Len = 0
	}
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

// fromTCP fills seg from a fully decoded TCP layer.
func (d *Decoder) fromTCP(seg *Segment) bool {
	if !d.addresses(seg) {
		return false
	}
	t := &d.tcp
	seg.Src = netip.AddrPortFrom(seg.Src.Addr(), uint16(t.SrcPort))
	seg.Dst = netip.AddrPortFrom(seg.Dst.Addr(), uint16(t.DstPort))
	seg.Seq, seg.Ack, seg.Window = t.Seq, t.Ack, t.Window
	seg.Flags = Flags(t.Contents[13])
	seg.Len = d.l4Len(t.Contents) - len(t.Contents)
	if seg.Len < 0 {
		seg.Len = 0
	}
	parseOptions(&seg.Options, t.Contents[20:])
	return true
}

// addresses sets the IP addresses of seg from the innermost IP layer.
func (d *Decoder) addresses(seg *Segment) bool {
	for i := len(d.decoded) - 1; i >= 0; i-- {
		switch d.decoded[i] {
		case layers.LayerTypeIPv4:
			src, ok1 := netip.AddrFromSlice(d.ip4.SrcIP)
			dst, ok2 := netip.AddrFromSlice(d.ip4.DstIP)
			seg.Src, seg.Dst = netip.AddrPortFrom(src.Unmap(), 0), netip.AddrPortFrom(dst.Unmap(), 0)
			return ok1 && ok2
		case layers.LayerTypeIPv6:
			src, ok1 := netip.AddrFromSlice(d.ip6.SrcIP)
			dst, ok2 := netip.AddrFromSlice(d.ip6.DstIP)
			seg.Src, seg.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
			return ok1 && ok2
		}
	}
	return false
}

// l4Len returns the length of the TCP segment (header and payload) as the
// IP header states it, whatever the snap length kept. l4 is the captured
// part of the segment; it shares its array with the IPv6 header, so the
// difference of capacities, less the fixed header, is the length of the
// extension headers in between. (The IPv6 layer's Payload already starts
// after a hop-by-hop header, so it cannot serve as the reference.)
func (d *Decoder) l4Len(l4 []byte) int {
	for i := len(d.decoded) - 1; i >= 0; i-- {
		switch d.decoded[i] {
		case layers.LayerTypeIPv4:
			return int(d.ip4.Length) - int(d.ip4.IHL)*4
		case layers.LayerTypeIPv6:
			ext := cap(d.ip6.Contents) - len(d.ip6.Contents) - cap(l4)
			if ext < 0 {
				ext = 0
			}
			return int(d.ip6.Length) - ext
		}
	}
	return len(l4)
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
		case 8:
			if len(v) == 8 {
				o.HasTimestamps = true
				o.TSVal, o.TSEcr = binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])
			}
		}
		b = b[b[1]:]
	}
}
