package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Line formats p as one readable line: frame, time since start, direction,
// flags, relative seq and ack, payload length, scaled window, labels and
// the endpoints' states after the segment.
func Line(p *Packet, start time.Time) string {
	s, a := &p.Segment, &p.Annotation
	labels := ""
	if a.Labels != 0 {
		labels = " [" + a.Labels.String() + "]"
	}
	return fmt.Sprintf("%6d %10.6f %3d %s %-11s seq=%-10d ack=%-10d len=%-5d win=%-7d%s  %s/%s",
		s.Frame, s.Time.Sub(start).Seconds(), a.Stream, a.Dir, s.Flags, a.RelSeq, a.RelAck, s.Len, a.Win,
		labels, a.Client, a.Server)
}

// Comment formats p as the one-line comment tcplab writes on a packet of a
// pcapng file: stream, direction, flags, relative numbers, labels, states.
func Comment(p *Packet) string {
	s, a := &p.Segment, &p.Annotation
	var b strings.Builder
	fmt.Fprintf(&b, "tcplab: stream %d %s %s seq=%d ack=%d len=%d win=%d", a.Stream, a.Dir, s.Flags, a.RelSeq, a.RelAck, s.Len, a.Win)
	if a.Labels != 0 {
		b.WriteString(" [" + a.Labels.String() + "]")
	}
	fmt.Fprintf(&b, " client=%s server=%s", a.Client, a.Server)
	return b.String()
}

// Record is the JSON form of one annotated TCP segment, as
// `tcplab annotate -json` prints it, one object a line. Its field names are
// an interface: scripts read them.
type Record struct {
	Frame  int      `json:"frame"`
	Time   float64  `json:"time"` // seconds since the first frame
	Stream int      `json:"stream"`
	Dir    string   `json:"dir"`
	Src    string   `json:"src"`
	Dst    string   `json:"dst"`
	Flags  string   `json:"flags"`
	Seq    uint32   `json:"seq"`
	Ack    uint32   `json:"ack"`
	Len    int      `json:"len"`
	Win    int      `json:"win"`
	Labels []string `json:"labels"`
	Client string   `json:"client_state"`
	Server string   `json:"server_state"`
	// RawSeq and RawAck are the absolute numbers on the wire.
	RawSeq uint32 `json:"raw_seq"`
	RawAck uint32 `json:"raw_ack"`
	// Options holds the TCP options that were present.
	MSS           uint16      `json:"mss,omitempty"`
	WindowScale   *int8       `json:"wscale,omitempty"`
	SACKPermitted bool        `json:"sack_perm,omitempty"`
	SACK          [][2]uint32 `json:"sack,omitempty"`
	TSVal         *uint32     `json:"tsval,omitempty"`
	TSEcr         *uint32     `json:"tsecr,omitempty"`
}

// NewRecord returns the JSON record of p; SACK edges are relative to the
// receiver's base, as Wireshark shows them.
func NewRecord(p *Packet, start time.Time) Record {
	s, a := &p.Segment, &p.Annotation
	r := Record{
		Frame: s.Frame, Time: s.Time.Sub(start).Seconds(), Stream: a.Stream, Dir: a.Dir.String(),
		Src: s.Src.String(), Dst: s.Dst.String(), Flags: s.Flags.String(),
		Seq: a.RelSeq, Ack: a.RelAck, Len: s.Len, Win: a.Win,
		Labels: a.Labels.Append(make([]string, 0, 2)),
		Client: a.Client.String(), Server: a.Server.String(),
		RawSeq: s.Seq, RawAck: s.Ack,
		MSS: s.Options.MSS, SACKPermitted: s.Options.SACKPermitted,
	}
	if ws := s.Options.WindowScale; ws >= 0 {
		r.WindowScale = &ws
	}
	if s.Options.HasTimestamps {
		r.TSVal, r.TSEcr = &s.Options.TSVal, &s.Options.TSEcr
	}
	base := s.Ack - a.RelAck
	for _, b := range s.Options.SACK[:s.Options.NSACK] {
		r.SACK = append(r.SACK, [2]uint32{b.Left - base, b.Right - base})
	}
	return r
}

// MarshalLine returns r as one line of JSON with a trailing newline; "C>S"
// stays "C>S", not the HTML-safe "C\u003eS".
func (r Record) MarshalLine() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(r)
	return b.Bytes(), err
}

// Summary formats a connection summary as one readable line.
func Summary(c *ConnSummary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stream %d: %s (client) <-> %s (server): %d segments, history %s",
		c.Stream, c.Client, c.Server, c.Segments, c.History)
	if c.Closed {
		who := "client"
		if c.Closer == ServerToClient {
			who = "server"
		}
		fmt.Fprintf(&b, ", %s closed first", who)
	} else {
		b.WriteString(", not closed")
	}
	fmt.Fprintf(&b, ", final states %s/%s", c.ClientState, c.ServerState)
	var parts []string
	for l := Label(0); l < numLabels; l++ {
		if c.Counts[l] > 0 {
			parts = append(parts, l.String()+"="+strconv.Itoa(c.Counts[l]))
		}
	}
	if len(parts) > 0 {
		b.WriteString(", labels: " + strings.Join(parts, " "))
	}
	return b.String()
}
