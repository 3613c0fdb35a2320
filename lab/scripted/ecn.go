package scripted

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// ECN is the ECN field of an IP header (RFC 3168 section 5): the two low
// bits of IPv4's TOS byte or IPv6's traffic class.
type ECN uint8

// The ECN codepoints, and ECT01 for an expectation that takes either ECT
// codepoint.
const (
	NotECT ECN = 0 // not ECN-capable transport
	ECT1   ECN = 1
	ECT0   ECN = 2
	CE     ECN = 3 // congestion experienced
	// ECT01 is ECT(0) or ECT(1), on expect only (packetdrill's [ect01]).
	ECT01 ECN = 4
)

// ECNPtr returns a pointer to e, for a template's ECN.
func ECNPtr(e ECN) *ECN { return &e }

// String names the codepoint as packetdrill writes it: noecn, ect1, ect0,
// ce or ect01.
func (e ECN) String() string {
	switch e {
	case NotECT:
		return "noecn"
	case ECT1:
		return "ect1"
	case ECT0:
		return "ect0"
	case CE:
		return "ce"
	case ECT01:
		return "ect01"
	}
	return fmt.Sprintf("ECN(%d)", uint8(e))
}

// matches reports whether the codepoint got (0 to 3) is what e wants.
func (e ECN) matches(got ECN) bool {
	if e == ECT01 {
		return got == ECT0 || got == ECT1
	}
	return e == got
}

// AccECN is the AccECN option (RFC 9768 section 3.2.3): its order and
// the byte counters it carries, in the order they are on the wire. Order
// 0 (kind 172) carries EE0B, ECEB, EE1B; order 1 (kind 174) carries EE1B,
// ECEB, EE0B. A sender may leave out the last counters (0 to 3 of them);
// each is 24 bits.
type AccECN struct {
	Order    uint8
	Counters []uint32
}

// The AccECN option's kinds (RFC 9768 section 3.2.3).
const (
	kindAccECN0 = 172
	kindAccECN1 = 174
)

// accECNNames are the counters' names in each order, as the kernel's
// selftests write them ("ECN e1b 1 ceb 0 e0b 1").
var accECNNames = [2][3]string{{"e0b", "ceb", "e1b"}, {"e1b", "ceb", "e0b"}}

// String writes the option as the kernel's selftests do, such as
// "ECN e1b 1 ceb 0 e0b 1"; without counters, "ECN" for kind 172 and
// "ECN (kind 174)" for the other.
func (a *AccECN) String() string {
	switch {
	case len(a.Counters) == 0 && a.Order == 1:
		return "ECN (kind 174)"
	case len(a.Counters) == 0:
		return "ECN"
	}
	parts := []string{"ECN"}
	for i, c := range a.Counters {
		parts = append(parts, fmt.Sprintf("%s %d", accECNNames[a.Order&1][i], c))
	}
	return strings.Join(parts, " ")
}

// raw is the option as bytes to send.
func (a *AccECN) raw() RawOption {
	kind := uint8(kindAccECN0)
	if a.Order == 1 {
		kind = kindAccECN1
	}
	var data []byte
	for _, c := range a.Counters {
		data = append(data, byte(c>>16), byte(c>>8), byte(c))
	}
	return RawOption{Kind: kind, Data: data}
}

func (a *AccECN) equal(b *AccECN) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Order != b.Order || len(a.Counters) != len(b.Counters) {
		return false
	}
	for i := range a.Counters {
		if a.Counters[i]&0xffffff != b.Counters[i]&0xffffff {
			return false
		}
	}
	return true
}

// tcpHeader returns the TCP header (with its options) of pkt, an IPv4 or
// IPv6 packet carrying TCP, and the IP header's ECN field; ok is false
// when pkt is not such a packet or is cut short.
func tcpHeader(pkt []byte) (tcp []byte, ecn ECN, ok bool) {
	if len(pkt) < 1 {
		return nil, 0, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 || pkt[9] != 6 || len(pkt) < int(pkt[0]&0xf)*4 {
			return nil, 0, false
		}
		tcp, ecn = pkt[int(pkt[0]&0xf)*4:], ECN(pkt[1]&3)
	case 6:
		if len(pkt) < 40 || pkt[6] != 6 {
			return nil, 0, false
		}
		// The traffic class straddles the first two bytes; its ECN
		// bits are bits 4 and 5 of the second.
		tcp, ecn = pkt[40:], ECN(binary.BigEndian.Uint16(pkt)>>4&3)
	default:
		return nil, 0, false
	}
	if len(tcp) < 20 || int(tcp[12]>>4)*4 > len(tcp) || tcp[12]>>4 < 5 {
		return nil, 0, false
	}
	return tcp[:int(tcp[12]>>4)*4], ecn, true
}

// tcpOptions calls fn with the kind and data of each option of the TCP
// header tcp, in order, until fn returns false or the options end (at
// EOL, or at an option that does not fit).
func tcpOptions(tcp []byte, fn func(kind byte, data []byte) bool) {
	opts := tcp[20:]
	for len(opts) > 0 {
		switch opts[0] {
		case 0:
			return
		case 1:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return
		}
		if !fn(opts[0], opts[2:opts[1]]) {
			return
		}
		opts = opts[opts[1]:]
	}
}

// ecnOf reads what package capture does not decode of the frame pkt: the
// IP header's ECN field, the AE flag (RFC 9768: the bit before CWR,
// once the ECN nonce's NS) and the AccECN option (nil when absent, or
// when its length is not a whole number of counters).
func ecnOf(pkt []byte) (ecn ECN, ae bool, acc *AccECN) {
	tcp, ecn, ok := tcpHeader(pkt)
	if !ok {
		return 0, false, nil
	}
	tcpOptions(tcp, func(kind byte, data []byte) bool {
		if (kind != kindAccECN0 && kind != kindAccECN1) || len(data)%3 != 0 || len(data) > 9 {
			return true
		}
		acc = &AccECN{Counters: []uint32{}}
		if kind == kindAccECN1 {
			acc.Order = 1
		}
		for i := 0; i+3 <= len(data); i += 3 {
			acc.Counters = append(acc.Counters, uint32(data[i])<<16|uint32(data[i+1])<<8|uint32(data[i+2]))
		}
		return false
	})
	return ecn, tcp[12]&1 != 0, acc
}

// urgentOf is the urgent pointer field of the TCP segment in the IP
// packet pkt, or 0.
func urgentOf(pkt []byte) uint16 {
	tcp, _, ok := tcpHeader(pkt)
	if !ok {
		return 0
	}
	return binary.BigEndian.Uint16(tcp[18:20])
}
