package capture

import (
	"encoding/binary"
)

// Parsers for 802.11 and the headers captures put in front of it:
// radiotap, PPI, and the tunnels that carry 802.11 frames from an access
// point to its controller (Aruba's GRE, CAPWAP). Like the others, they
// decide as Wireshark 4.0 does with its default preferences.

// wlanHeader parses an 802.11 MAC header; swapped says the two frame
// control bytes come in the other order, as Wireshark reads 802.11 in
// CAPWAP by default ("Swap Frame Control"). Only a data frame with a body
// that is not encrypted carries a packet, behind LLC/SNAP.
func (d *Decoder) wlanHeader(b []byte, swapped bool) ([]byte, header) {
	if len(b) < 24 {
		return nil, hNone
	}
	fc, flags := b[0], b[1]
	if swapped {
		fc, flags = flags, fc
	}
	const (
		typeData  = 2
		protected = 0x40
		order     = 0x80 // in a QoS data frame: an HT control field follows
	)
	subtype := fc >> 4
	if fc>>2&3 != typeData || flags&protected != 0 || subtype&0x4 != 0 {
		// Management, control, encrypted, or a data subtype without
		// a body (null function, CF-Ack and CF-Poll alone).
		return nil, hNone
	}
	n := 24
	if flags&0x03 == 0x03 { // to and from the distribution system: a fourth address
		n += 6
	}
	amsdu := false
	if subtype&0x8 != 0 { // QoS data
		if n+2 > len(b) {
			return nil, hNone
		}
		amsdu = b[n]&0x80 != 0
		n += 2
		if flags&order != 0 {
			n += 4
		}
	}
	if d.wlanPad {
		// Radiotap's flag is for the 802.11 header right behind it.
		n, d.wlanPad = (n+3)&^3, false
	}
	if n > len(b) {
		return nil, hNone
	}
	if amsdu {
		// An A-MSDU: subframes of destination, source, length and an
		// LLC body, each padded to 4 bytes. A frame yields one
		// segment: the first subframe's (DIFFERENCES.md).
		if n+14 > len(b) {
			return nil, hNone
		}
		l := int(binary.BigEndian.Uint16(b[n+12:]))
		body := b[n+14:]
		if l < len(body) {
			body = body[:l]
		}
		return body, hLLC
	}
	return b[n:], hLLC
}

// Radiotap flags (the field of present bit 1).
const (
	radiotapFCS     = 0x10 // the frame ends with its 4-byte FCS
	radiotapDataPad = 0x20 // the 802.11 header is padded to 32 bits
)

// radiotapHeader parses a radiotap header: its length is in its own
// field; of its fields, only the flags matter here, which say whether
// the frame carries its FCS and pads its header.
func (d *Decoder) radiotapHeader(b []byte) ([]byte, header) {
	// Like Wireshark, tcplab does not check the version.
	if len(b) < 8 {
		return nil, hNone
	}
	n := int(binary.LittleEndian.Uint16(b[2:4]))
	if n < 8 || n > len(b) {
		return nil, hNone
	}
	present := binary.LittleEndian.Uint32(b[4:8])
	// More present words follow while bit 31 is set; the fields of the
	// first word come after the last.
	off := 8
	for p := present; p&(1<<31) != 0; off += 4 {
		if off+4 > n {
			return nil, hNone
		}
		p = binary.LittleEndian.Uint32(b[off:])
	}
	if present&1 != 0 { // TSFT: 8 bytes, aligned to 8
		off = (off+7)&^7 + 8
	}
	if present&2 != 0 && off < n {
		flags := b[off]
		d.wlanPad = flags&radiotapDataPad != 0
		if flags&radiotapFCS != 0 {
			return d.trimTrailer(b[n:], 4), hWLAN
		}
	}
	return b[n:], hWLAN
}

// PPI header values.
const (
	ppiDLTEthernet = 1
	ppiDLT80211    = 105
	ppi80211Common = 2      // field type of 802.11-Common
	ppiFCSPresent  = 0x0001 // in the flags of 802.11-Common
)

// ppiHeader parses a PPI header (Per-Packet Information): its length,
// the link type of the frame behind it (802.11 or Ethernet), and its
// fields, of which 802.11-Common says whether the frame carries its FCS.
func (d *Decoder) ppiHeader(b []byte) ([]byte, header) {
	if len(b) < 8 {
		return nil, hNone
	}
	n := int(binary.LittleEndian.Uint16(b[2:4]))
	if n < 8 || n > len(b) {
		return nil, hNone
	}
	fcs := false
	for off := 8; off+4 <= n; {
		typ, l := binary.LittleEndian.Uint16(b[off:]), int(binary.LittleEndian.Uint16(b[off+2:]))
		off += 4
		if off+l > n {
			break
		}
		if typ == ppi80211Common && l >= 10 {
			fcs = binary.LittleEndian.Uint16(b[off+8:])&ppiFCSPresent != 0
		}
		off += l
	}
	switch binary.LittleEndian.Uint32(b[4:8]) {
	case ppiDLT80211:
		if fcs {
			return d.trimTrailer(b[n:], 4), hWLAN
		}
		return b[n:], hWLAN
	case ppiDLTEthernet:
		return b[n:], hEthernet
	}
	return nil, hNone
}

// trimTrailer takes n bytes off the end of the frame on the wire, as
// Wireshark does with an FCS: from what was captured, as far as the snap
// length did not already cut them.
func (d *Decoder) trimTrailer(b []byte, n int) []byte {
	if d.missing >= n {
		d.missing -= n
		return b
	}
	n -= d.missing
	d.missing = 0
	return b[:max(len(b)-n, 0)]
}

// capwapHeader parses a CAPWAP data channel header (RFC 5415): its
// length is in its HLEN field; its T bit says whether the frame behind it
// is 802.3 or in the native format of its wireless binding (802.11 when
// WBID is 1). Fragments are reassembled as Wireshark does (by outer
// addresses and fragment ID), with the IP fragments' bounds; the header
// of the fragment that completes the frame says what the frame is.
// DTLS-encrypted and keep-alive messages carry no frame.
func (d *Decoder) capwapHeader(b []byte) ([]byte, header) {
	if len(b) < 8 || b[0] != 0 { // version 0, type 0 (1 is DTLS)
		return nil, hNone
	}
	n := int(b[1]>>3) * 4
	if n < 8 || n > len(b) {
		return nil, hNone
	}
	const (
		flagF = 0x80 // a fragment
		flagL = 0x40 // the last fragment
		flagK = 0x08 // keep-alive: no frame
	)
	if b[3]&flagK != 0 {
		return nil, hNone
	}
	wbid, native := b[2]>>1&0x1f, b[2]&1 != 0
	next := hNone
	switch {
	case !native:
		next = hEthernet
	case wbid == 1:
		next = hWLANSwapped
	}
	frame := b[n:]
	if b[3]&flagF != 0 {
		d.fragment = true
		if d.missing > 0 || len(frame) == 0 {
			// Cut by the snap length: not reassembled.
			return nil, hNone
		}
		k := fragKey{src: d.src, dst: d.dst, id: capwapFragment | uint32(binary.BigEndian.Uint16(b[4:6])), proto: 17}
		out, conflict, ok := d.frags.add(fragment{
			key: k, now: d.now, timeout: fragTimeout4,
			off: int(binary.BigEndian.Uint16(b[6:8])>>3) * 8, data: frame, more: b[3]&flagL == 0,
			limit: maxDatagramLength,
		})
		if !ok {
			return nil, hNone
		}
		d.fragment, d.overlap = false, d.overlap || conflict
		frame, d.missing = out, 0
	}
	if next == hNone {
		return nil, hNone
	}
	return frame, next
}

// capwapFragment marks the keys of CAPWAP fragments (with protocol UDP),
// which no IP fragment's key has: IPv4 identifications have 16 bits, and
// IPv6 keys no protocol.
const capwapFragment = 1 << 31

// greAruba reports whether a GRE protocol type is one of those Aruba
// access points carry 802.11 frames in (0x8200 to 0x8370, by 0x10), as
// Wireshark registers them.
func greAruba(proto uint16) bool {
	return proto >= 0x8200 && proto <= 0x8370 && proto&0x0f == 0
}
