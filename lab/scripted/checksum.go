package scripted

import "encoding/binary"

// completeChecksum writes the TCP checksum of the IPv4 or IPv6 frame b
// (TCP right after the fixed IPv6 header) into it, as a device with
// checksum offload does for a segment the kernel left it to
// (CHECKSUM_PARTIAL). It reports whether b was such a TCP frame.
func completeChecksum(b []byte) bool {
	tcp, sum, ok := tcpPseudo(b)
	if !ok || len(tcp) < 20 {
		return false
	}
	tcp[16], tcp[17] = 0, 0
	binary.BigEndian.PutUint16(tcp[16:], ^fold(sum+onesSum(tcp)))
	return true
}

// checksumOK reports whether the TCP checksum of frame b is right.
func checksumOK(b []byte) bool {
	tcp, sum, ok := tcpPseudo(b)
	return ok && len(tcp) >= 20 && fold(sum+onesSum(tcp)) == 0xffff
}

// tcpPseudo returns the TCP segment of frame b (by the IP header's
// lengths) and the unfolded sum of its pseudo header.
func tcpPseudo(b []byte) (tcp []byte, sum uint32, ok bool) {
	if len(b) < 1 {
		return nil, 0, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 || b[9] != 6 {
			return nil, 0, false
		}
		hl, total := int(b[0]&0x0f)*4, int(binary.BigEndian.Uint16(b[2:]))
		if hl < 20 || total < hl || total > len(b) {
			return nil, 0, false
		}
		tcp = b[hl:total]
		sum = onesSum(b[12:20]) + 6 + uint32(len(tcp))
	case 6:
		if len(b) < 40 || b[6] != 6 {
			return nil, 0, false
		}
		end := 40 + int(binary.BigEndian.Uint16(b[4:]))
		if end > len(b) {
			return nil, 0, false
		}
		tcp = b[40:end]
		sum = onesSum(b[8:40]) + 6 + uint32(len(tcp))
	default:
		return nil, 0, false
	}
	return tcp, sum, true
}

// onesSum adds b's 16-bit big-endian words (an odd last byte padded with
// zero), unfolded.
func onesSum(b []byte) uint32 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold folds a sum into 16 bits, the carries added back.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
