package capture

import "strings"

// Label is one Wireshark-style analysis label of a TCP segment, as defined
// in the project's TCP analysis notes.
type Label uint8

// The analysis labels, in the order they are printed.
const (
	KeepAlive Label = iota
	KeepAliveACK
	WindowUpdate
	ZeroWindow
	ZeroWindowProbe
	ZeroWindowProbeACK
	WindowFull
	DupACK
	Retransmission
	FastRetransmission
	SpuriousRetransmission
	OutOfOrder
	LostSegment
	ACKLostSegment
	// ReusedPorts marks a SYN that starts a new connection on the 4-tuple
	// of an earlier one in the capture (another initial sequence number).
	ReusedPorts
	// TFOSyn marks a SYN that carries a TCP Fast Open cookie (RFC 7413).
	TFOSyn
	// TFOAck marks a SYN/ACK that acknowledges the data its SYN carried:
	// the server accepted it (TCP Fast Open).
	TFOAck
	// TFOIgnored marks a SYN/ACK that acknowledges only the SYN of a SYN
	// with data: the server ignored the data, which the client sends
	// again.
	TFOIgnored
	numLabels
)

var labelNames = [numLabels]string{
	"keep-alive", "keep-alive-ack", "window-update", "zero-window", "zero-window-probe",
	"zero-window-probe-ack", "window-full", "dup-ack", "retransmission", "fast-retransmission",
	"spurious-retransmission", "out-of-order", "lost-segment", "ack-lost-segment",
	"reused-ports", "tfo-syn", "tfo-ack", "tfo-ignored",
}

// String returns the label's name, for example "keep-alive".
func (l Label) String() string {
	if l < numLabels {
		return labelNames[l]
	}
	return "unknown"
}

// ParseLabel returns the Label named s.
func ParseLabel(s string) (Label, bool) {
	for i, n := range labelNames {
		if n == s {
			return Label(i), true
		}
	}
	return 0, false
}

// Labels is a set of Label.
type Labels uint32

// Has reports whether l is in the set.
func (s Labels) Has(l Label) bool { return s&(1<<l) != 0 }

// With returns the set with l added.
func (s Labels) With(l Label) Labels { return s | 1<<l }

// Without returns the set with l removed.
func (s Labels) Without(l Label) Labels { return s &^ (1 << l) }

// Append appends the names of the labels in the set to dst, in printing
// order, and returns the extended slice; it allocates only when dst is full.
func (s Labels) Append(dst []string) []string {
	for l := Label(0); l < numLabels; l++ {
		if s.Has(l) {
			dst = append(dst, labelNames[l])
		}
	}
	return dst
}

// String returns the labels joined by commas, or "" for the empty set.
func (s Labels) String() string {
	var buf [numLabels]string
	return strings.Join(s.Append(buf[:0]), ",")
}
