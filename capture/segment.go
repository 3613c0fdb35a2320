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
	FastOpen      FastOpen // the TCP Fast Open option (RFC 7413)
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
	Len     int    // payload length: the IP length's, or the frame's when the frame is shorter (as Wireshark counts)
	Options Options
	// Problem says what kept tcplab from reading the segment's headers
	// whole, if anything.
	Problem Problem
	// HeaderBytes is how many bytes of the TCP header were captured when
	// Problem is HeaderCut (0 to 19): the fields past them are zero and
	// unknown.
	HeaderBytes int
}

// Captured reports whether the first n bytes of the TCP header were
// captured: Captured(8) for the sequence number, 12 for the
// acknowledgement number, 13 for the header length (and so the payload
// length), 14 for the flags, 16 for the window.
func (s *Segment) Captured(n int) bool {
	return s.Problem != HeaderCut || s.HeaderBytes >= n
}

// Problem is what kept tcplab from reading a segment's headers whole. It
// is not one of Wireshark's analysis labels: a cut header is a fact about
// the capture, not about TCP.
type Problem uint8

// The problems.
const (
	// NoProblem: every header was read whole.
	NoProblem Problem = iota
	// HeaderCut: the snap length cut the fixed 20-byte TCP header. The
	// fields captured are reported, the segment is counted but not
	// analysed, and the window is unknown when the cut took it.
	HeaderCut
	// OptionsCut: the snap length cut the TCP options (or they did not
	// parse). The fixed header is whole and the segment is analysed, but
	// the options past the cut are unknown: on a SYN that makes the
	// window scale of the connection unknown.
	OptionsCut
	// FragmentOverlap: the segment was reassembled from IP fragments that
	// overlap with different bytes (or disagree on where the datagram
	// ends). The bytes of the fragment first by offset, then by arrival,
	// were kept, as in Wireshark; exact duplicates are not flagged.
	FragmentOverlap
	numProblems
)

var problemNames = [numProblems]string{"", "header-cut", "options-cut", "fragment-overlap"}

// String returns the problem's name, such as "header-cut", or "" for
// NoProblem.
func (p Problem) String() string {
	if p < numProblems {
		return problemNames[p]
	}
	return "unknown"
}
