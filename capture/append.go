package capture

import (
	"math"
	"strconv"
	"time"
)

// AppendLine appends the readable line of p that Line returns, and a
// newline, to dst and returns the extended buffer. It allocates nothing
// when dst has room: the annotate command formats millions of segments
// with it.
func AppendLine(dst []byte, p *Packet, start time.Time) []byte {
	s, a := &p.Segment, &p.Annotation
	dst = appendPadInt(dst, int64(s.Frame), 6, false)
	dst = append(dst, ' ')
	dst = appendPadSeconds(dst, s.Time.Sub(start), 10)
	dst = append(dst, ' ')
	dst = appendPadInt(dst, int64(a.Stream), 3, false)
	dst = append(dst, ' ')
	dst = append(dst, a.Dir.String()...)
	dst = append(dst, ' ')
	n := len(dst)
	dst = appendFlags(dst, s)
	dst = pad(dst, n, 11)
	dst = append(dst, " seq="...)
	dst = appendPadField(dst, int64(a.RelSeq), s.Captured(8), 10)
	dst = append(dst, " ack="...)
	dst = appendPadField(dst, int64(a.RelAck), s.Captured(12), 10)
	dst = append(dst, " len="...)
	dst = appendPadField(dst, int64(s.Len), s.Captured(13), 5)
	dst = append(dst, " win="...)
	n = len(dst)
	dst = appendWindow(dst, a)
	dst = pad(dst, n, 7)
	dst = appendMarks(dst, s, a)
	dst = append(dst, "  "...)
	dst = append(dst, a.Client.String()...)
	dst = append(dst, '/')
	dst = append(dst, a.Server.String()...)
	return append(dst, '\n')
}

// AppendJSON appends p as one line of JSON, the object `tcplab annotate
// -json` prints (its fields are in the README), to dst and returns the
// extended buffer, allocating nothing when dst has room. Its output is
// what encoding/json writes of the same record, with "C>S" unescaped.
func AppendJSON(dst []byte, p *Packet, start time.Time) []byte {
	s, a := &p.Segment, &p.Annotation
	dst = append(dst, `{"frame":`...)
	dst = appendPadInt(dst, int64(s.Frame), 0, true)
	dst = append(dst, `,"time":`...)
	dst = appendJSONFloat(dst, s.Time.Sub(start).Seconds())
	dst = append(dst, `,"stream":`...)
	dst = appendPadInt(dst, int64(a.Stream), 0, true)
	dst = append(dst, `,"dir":"`...)
	dst = append(dst, a.Dir.String()...)
	dst = append(dst, `","src":"`...)
	dst = s.Src.AppendTo(dst)
	dst = append(dst, `","dst":"`...)
	dst = s.Dst.AppendTo(dst)
	dst = append(dst, `","flags":`...)
	if s.Captured(14) {
		dst = append(dst, '"')
		dst = s.Flags.Append(dst)
		dst = append(dst, '"')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"seq":`...)
	dst = appendJSONField(dst, uint64(a.RelSeq), s.Captured(8))
	dst = append(dst, `,"ack":`...)
	dst = appendJSONField(dst, uint64(a.RelAck), s.Captured(12))
	dst = append(dst, `,"len":`...)
	dst = appendJSONField(dst, uint64(s.Len), s.Captured(13))
	dst = append(dst, `,"win":`...)
	dst = appendJSONField(dst, uint64(a.Win), a.Window != WindowUnknown)
	if a.Window == WindowUnscaled {
		dst = append(dst, `,"win_unscaled":true`...)
	}
	if s.Problem != NoProblem {
		dst = append(dst, `,"problem":"`...)
		dst = append(dst, s.Problem.String()...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"labels":[`...)
	first := true
	for l := Label(0); l < numLabels; l++ {
		if a.Labels.Has(l) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, '"')
			dst = append(dst, labelNames[l]...)
			dst = append(dst, '"')
		}
	}
	dst = append(dst, `],"client_state":"`...)
	dst = append(dst, a.Client.String()...)
	dst = append(dst, `","server_state":"`...)
	dst = append(dst, a.Server.String()...)
	dst = append(dst, `","raw_seq":`...)
	dst = appendJSONField(dst, uint64(s.Seq), s.Captured(8))
	dst = append(dst, `,"raw_ack":`...)
	dst = appendJSONField(dst, uint64(s.Ack), s.Captured(12))
	o := &s.Options
	if o.MSS != 0 {
		dst = append(dst, `,"mss":`...)
		dst = appendUint(dst, uint64(o.MSS))
	}
	if o.WindowScale >= 0 {
		dst = append(dst, `,"wscale":`...)
		dst = appendInt(dst, int64(o.WindowScale))
	}
	if o.SACKPermitted {
		dst = append(dst, `,"sack_perm":true`...)
	}
	if o.NSACK > 0 {
		base := s.Ack - a.RelAck
		dst = append(dst, `,"sack":[`...)
		for i, b := range o.SACK[:o.NSACK] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			dst = appendUint(dst, uint64(b.Left-base))
			dst = append(dst, ',')
			dst = appendUint(dst, uint64(b.Right-base))
			dst = append(dst, ']')
		}
		dst = append(dst, ']')
	}
	if o.HasTimestamps {
		dst = append(dst, `,"tsval":`...)
		dst = appendUint(dst, uint64(o.TSVal))
		dst = append(dst, `,"tsecr":`...)
		dst = appendUint(dst, uint64(o.TSEcr))
	}
	return append(dst, "}\n"...)
}

// Append appends the flags as String writes them.
func (f Flags) Append(dst []byte) []byte {
	if f == 0 {
		return append(dst, "NONE"...)
	}
	first := true
	for _, o := range flagOrder {
		if f&o.f != 0 {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, o.name...)
		}
	}
	return dst
}

// AppendText appends the labels as String writes them.
func (s Labels) AppendText(dst []byte) []byte {
	first := true
	for l := Label(0); l < numLabels; l++ {
		if s.Has(l) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, labelNames[l]...)
		}
	}
	return dst
}

// appendPadInt appends v in at least width characters, padded with spaces
// on the right when left is set (fmt's %-Nd), else on the left (%Nd).
func appendPadInt(dst []byte, v int64, width int, left bool) []byte {
	if v >= 0 && v <= math.MaxUint32 && width <= 16 {
		return appendPad32(dst, uint32(v), width, left)
	}
	u, sign := uint64(v), 0
	if v < 0 {
		u, sign = -u, 1
	}
	n := sign + decimalLen(u)
	padding := max(width-n, 0)
	dst, b := extend(dst, n+padding)
	if !left {
		for i := range padding {
			b[i] = ' '
		}
		b = b[padding:]
	} else {
		for i := n; i < len(b); i++ {
			b[i] = ' '
		}
	}
	if sign == 1 {
		b[0] = '-'
	}
	putDecimal(b[sign:n], u)
	return dst
}

// appendPadFloat appends v with six decimals, right-aligned in width
// characters (fmt's %N.6f).
func appendPadFloat(dst []byte, v float64, width int) []byte {
	var tmp [32]byte
	b := strconv.AppendFloat(tmp[:0], v, 'f', 6, 64)
	for i := len(b); i < width; i++ {
		dst = append(dst, ' ')
	}
	return append(dst, b...)
}

// appendPadSeconds appends d in seconds as appendPadFloat does. A
// whole number of microseconds, as every pcap file of microseconds
// holds, is written from its digits: within 11 days the float's error is
// far below the half microsecond that would round it differently.
func appendPadSeconds(dst []byte, d time.Duration, width int) []byte {
	const limit = 1e6 * time.Second
	if d%time.Microsecond != 0 || d <= -limit || d >= limit {
		return appendPadFloat(dst, d.Seconds(), width)
	}
	us, sign := int64(d/time.Microsecond), 0
	if us < 0 {
		us, sign = -us, 1
	}
	// Below the limit: at most a sign, six digits, a point and six
	// decimals, in place over spaces as appendPad32 writes.
	secs, frac := uint32(us/1e6), uint64(us%1e6)
	n := sign + decimalLen32(secs) + 7
	w := max(n, width)
	l := len(dst)
	if cap(dst)-l < 16+width {
		dst = append(dst[:cap(dst)], make([]byte, l+16+width-cap(dst))...)
	}
	b := dst[l : l+w]
	for i := range w - n {
		b[i] = ' '
	}
	b = b[w-n:]
	if sign == 1 {
		b[0] = '-'
	}
	putDecimal(b[sign:n-7], secs)
	b[n-7] = '.'
	putDecimal6(b[n-6:], frac)
	return dst[:l+w]
}

// putDecimal6 writes v, below a million, in the six bytes of b with
// leading zeros.
func putDecimal6(b []byte, v uint64) {
	hi, mid, lo := v/10000*2, v/100%100*2, v%100*2
	b[0], b[1] = digitPairs[hi], digitPairs[hi+1]
	b[2], b[3] = digitPairs[mid], digitPairs[mid+1]
	b[4], b[5] = digitPairs[lo], digitPairs[lo+1]
}

// pad appends spaces until what was appended since n is width long.
func pad(dst []byte, n, width int) []byte {
	return appendSpaces(dst, width-(len(dst)-n))
}

// appendJSONFloat appends v as encoding/json writes a float64: the
// shortest decimal that reads back the same, in exponent form below 1e-6
// and from 1e21, with a two-digit exponent written without its leading
// zero ("1e-07" becomes "1e-7").
func appendJSONFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, '0') // not reached: times are finite
	}
	abs := math.Abs(v)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, v, format, -1, 64)
	if format == 'e' {
		// "1e-07" -> "1e-7"
		if m := len(dst); m-n >= 4 && dst[m-4] == 'e' && dst[m-3] == '-' && dst[m-2] == '0' {
			dst[m-2] = dst[m-1]
			dst = dst[:m-1]
		}
	}
	return dst
}

// AppendComment appends Comment(p) to dst and returns the extended
// buffer, allocating nothing when dst has room.
func AppendComment(dst []byte, p *Packet) []byte {
	s, a := &p.Segment, &p.Annotation
	dst = append(dst, "tcplab: stream "...)
	dst = appendPadInt(dst, int64(a.Stream), 0, true)
	dst = append(dst, ' ')
	dst = append(dst, a.Dir.String()...)
	dst = append(dst, ' ')
	dst = appendFlags(dst, s)
	dst = append(dst, " seq="...)
	dst = appendPadField(dst, int64(a.RelSeq), s.Captured(8), 0)
	dst = append(dst, " ack="...)
	dst = appendPadField(dst, int64(a.RelAck), s.Captured(12), 0)
	dst = append(dst, " len="...)
	dst = appendPadField(dst, int64(s.Len), s.Captured(13), 0)
	dst = append(dst, " win="...)
	dst = appendWindow(dst, a)
	dst = appendMarks(dst, s, a)
	dst = append(dst, " client="...)
	dst = append(dst, a.Client.String()...)
	dst = append(dst, " server="...)
	return append(dst, a.Server.String()...)
}

// appendMarks appends the segment's labels in brackets and its problem in
// parentheses, each only when it has one, as the text formats show them.
func appendMarks(dst []byte, s *Segment, a *Annotation) []byte {
	if a.Labels != 0 {
		dst = append(dst, " ["...)
		dst = a.Labels.AppendText(dst)
		dst = append(dst, ']')
	}
	if s.Problem != NoProblem {
		dst = append(dst, " ("...)
		dst = append(dst, s.Problem.String()...)
		dst = append(dst, ')')
	}
	return dst
}

// appendFlags appends the segment's flags, or "?" when they were not
// captured.
func appendFlags(dst []byte, s *Segment) []byte {
	if !s.Captured(14) {
		return append(dst, '?')
	}
	return s.Flags.Append(dst)
}

// appendPadField appends v left-aligned in width characters, or "?" when
// known is false: the field was not captured.
func appendPadField(dst []byte, v int64, known bool, width int) []byte {
	if !known {
		n := len(dst)
		return pad(append(dst, '?'), n, width)
	}
	return appendPadInt(dst, v, width, true)
}

// appendJSONField appends v, or null when known is false.
func appendJSONField(dst []byte, v uint64, known bool) []byte {
	if !known {
		return append(dst, "null"...)
	}
	if v <= math.MaxUint32 {
		return appendPad32(dst, uint32(v), 0, true)
	}
	return appendUint(dst, v)
}

// appendWindow appends the window as the text formats show it: the bytes;
// the raw field and "?" when the connection's scale is unknown; "?" alone
// when the field was not captured.
func appendWindow(dst []byte, a *Annotation) []byte {
	switch a.Window {
	case WindowUnknown:
		return append(dst, '?')
	case WindowUnscaled:
		return append(appendPadInt(dst, int64(a.Win), 0, true), '?')
	}
	return appendPadInt(dst, int64(a.Win), 0, true)
}
