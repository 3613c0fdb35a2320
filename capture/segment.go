package capture

import (
	"net/netip"
	"strings"
	"time"
)

// Flags is the set of TCP header flags of a segment.
type Flags uint8

// The TCP flags, in header bit order.
const (
	FIN Flags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

// flagOrder is the order in which Flags.String prints flags; it is
// Wireshark's tcp.flags.str order read left to right, so "SYN,ACK" and
// "FIN,ACK" read as people write them.
var flagOrder = [...]struct {
	f    Flags
	name string
}{
	{CWR, "CWR"}, {ECE, "ECE"}, {URG, "URG"}, {SYN, "SYN"}, {RST, "RST"}, {PSH, "PSH"}, {FIN, "FIN"}, {ACK, "ACK"},
}

// String returns the flags joined by commas, for example "SYN,ACK",
// "PSH,ACK" or "FIN,ACK"; "NONE" when no flag is set.
func (f Flags) String() string {
	if f == 0 {
		return "NONE"
	}
	var b strings.Builder
	for _, o := range flagOrder {
		if f&o.f != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(o.name)
		}
	}
	return b.String()
}

// Has reports whether all flags in g are set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// ParseFlags parses the form that Flags.String prints. It is the inverse of
// String and accepts the flags in any order.
func ParseFlags(s string) (Flags, bool) {
	if s == "NONE" {
		return 0, true
	}
	var f Flags
	for _, name := range strings.Split(s, ",") {
		ok := false
		for _, o := range flagOrder {
			if o.name == strings.TrimSpace(name) {
				f |= o.f
				ok = true
			}
		}
		if !ok {
			return 0, false
		}
	}
	return f, true
}

// SACKBlock is one selective acknowledgement block: the bytes [Left, Right).
type SACKBlock struct {
	Left, Right uint32
}

// Options holds the TCP options tcplab reports. The zero value means no
// option was present.
type Options struct {
	MSS           uint16 // 0 when absent
	WindowScale   int8   // -1 when absent
	SACKPermitted bool
	HasTimestamps bool
	TSVal, TSEcr  uint32
	NSACK         uint8 // number of valid entries in SACK
	SACK          [4]SACKBlock
}

// Segment is one decoded TCP segment: the fields of its IP and TCP headers
// that tcplab reasons about. It is a plain value, so decoding one allocates
// nothing.
type Segment struct {
	Frame   int       // 1-based frame number in the capture, non-TCP frames counted
	Time    time.Time // capture timestamp
	Src     netip.AddrPort
	Dst     netip.AddrPort
	Flags   Flags
	Seq     uint32
	Ack     uint32
	Window  uint16 // raw window field, before scaling
	Len     int    // payload length, from the IP length (not the captured bytes)
	Options Options
	// Truncated is set when the snap length cut the fixed TCP header: the
	// fields past the cut are zero, and the segment is labelled, not
	// analysed. (A cut among the options only loses those options.)
	Truncated bool
}
