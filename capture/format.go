package capture

import (
	"net/netip"
	"time"
)

// Line formats p as one readable line: frame, time since start, direction,
// flags, relative seq and ack, payload length, scaled window, labels and
// the endpoints' states after the segment. AppendLine writes the same
// without allocating.
func Line(p *Packet, start time.Time) string {
	b := AppendLine(nil, p, start)
	return string(b[:len(b)-1])
}

// Comment formats p as the one-line comment tcplab writes on a packet of a
// pcapng file: stream, direction, flags, relative numbers, labels, states.
// AppendComment writes the same without allocating.
func Comment(p *Packet) string { return string(AppendComment(nil, p)) }

// Summary formats a connection summary as one readable line.
// AppendSummary writes the same with one allocation at most (the first
// RTT's words).
func Summary(c *ConnSummary) string { return string(AppendSummary(nil, c)) }

// AppendSummary appends Summary's line to dst and returns it.
func AppendSummary(dst []byte, c *ConnSummary) []byte {
	dst = append(dst, "stream "...)
	dst = appendInt(dst, int64(c.Stream))
	if c.Resumed {
		dst = append(dst, " (resumed: its late segments, after it was forgotten)"...)
	}
	dst = append(dst, ": "...)
	dst = appendAddrPort(dst, c.Client)
	dst = append(dst, " (client) <-> "...)
	dst = appendAddrPort(dst, c.Server)
	dst = append(dst, " (server): "...)
	dst = appendInt(dst, int64(c.Segments))
	dst = append(dst, " segments, history "...)
	dst = append(dst, c.History...)
	dst = append(dst, ", "...)
	dst = appendVerdict(dst, c)
	dst = append(dst, "; "...)
	dst = c.Ending.appendTo(dst)
	dst = append(dst, "; final states "...)
	dst = append(dst, c.ClientState.String()...)
	dst = append(dst, '/')
	dst = append(dst, c.ServerState.String()...)
	first := true
	for l := Label(0); l < numLabels; l++ {
		if c.Counts[l] > 0 {
			if first {
				dst = append(dst, "; labels: "...)
				first = false
			} else {
				dst = append(dst, ' ')
			}
			dst = append(dst, labelNames[l]...)
			dst = append(dst, '=')
			dst = appendInt(dst, int64(c.Counts[l]))
		}
	}
	if c.Cut > 0 {
		dst = append(dst, "; "...)
		dst = appendInt(dst, int64(c.Cut))
		dst = append(dst, " with the TCP header cut (not analysed)"...)
	}
	return dst
}

// appendAddrPort appends p as its String method writes it.
func appendAddrPort(dst []byte, p netip.AddrPort) []byte {
	if !p.IsValid() {
		return append(dst, "invalid AddrPort"...)
	}
	return p.AppendTo(dst)
}
