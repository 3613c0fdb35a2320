package capture

import (
	"fmt"
	"strconv"
	"strings"
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
func Summary(c *ConnSummary) string {
	var b strings.Builder
	resumed := ""
	if c.Resumed {
		resumed = " (resumed: its late segments, after it was forgotten)"
	}
	fmt.Fprintf(&b, "stream %d%s: %s (client) <-> %s (server): %d segments, history %s",
		c.Stream, resumed, c.Client, c.Server, c.Segments, c.History)
	b.WriteString(", ")
	verdictText(&b, c)
	b.WriteString("; ")
	b.WriteString(c.Ending.String())
	fmt.Fprintf(&b, "; final states %s/%s", c.ClientState, c.ServerState)
	var parts []string
	for l := Label(0); l < numLabels; l++ {
		if c.Counts[l] > 0 {
			parts = append(parts, l.String()+"="+strconv.Itoa(int(c.Counts[l])))
		}
	}
	if len(parts) > 0 {
		b.WriteString("; labels: " + strings.Join(parts, " "))
	}
	if c.Cut > 0 {
		fmt.Fprintf(&b, "; %d with the TCP header cut (not analysed)", c.Cut)
	}
	return b.String()
}

// writeInt writes v in decimal.
func writeInt(b *strings.Builder, v int64) {
	var buf [20]byte
	b.Write(strconv.AppendInt(buf[:0], v, 10))
}

// AppendSummary appends Summary's line to dst.
func AppendSummary(dst []byte, c *ConnSummary) []byte { return append(dst, Summary(c)...) }
