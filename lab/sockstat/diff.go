package sockstat

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tcplab/tcplab/lab/expect"
)

// Field is one quantity of a Socket that Diff compares.
type Field uint8

// The fields Diff compares, in the order it lists them.
const (
	FieldState    Field = iota // the TCP state
	FieldCAState               // the congestion-avoidance state
	FieldCwnd                  // congestion window, segments
	FieldSsthresh              // slow-start threshold, segments
	FieldSRTT                  // smoothed RTT
	FieldRTO                   // retransmission timeout
	FieldUnacked               // segments in flight
	FieldRetrans               // segments retransmitted so far
	FieldSendQ                 // bytes not yet acknowledged
	FieldRecvQ                 // bytes not yet read
	FieldAcceptQ               // a listener's accept queue
	numFields
)

// fieldNames are the fields' names in each language; the English ones are
// those of ss and of a Socket's JSON.
var fieldNames = [numFields][2]string{
	{"state", "状态"},
	{"ca_state", "拥塞状态"},
	{"cwnd", "拥塞窗口"},
	{"ssthresh", "慢启动阈值"},
	{"srtt", "平滑RTT"},
	{"rto", "重传超时"},
	{"unacked", "未确认报文段"},
	{"retrans", "累计重传"},
	{"send_q", "发送队列"},
	{"recv_q", "接收队列"},
	{"accept_q", "全连接队列"},
}

// Name returns the field's name in lang: "cwnd" in English, "拥塞窗口" in
// Chinese.
func (f Field) Name(lang expect.Lang) string {
	if f >= numFields {
		return "field(" + strconv.Itoa(int(f)) + ")"
	}
	if lang == expect.Chinese {
		return fieldNames[f][1]
	}
	return fieldNames[f][0]
}

// String returns the field's English name.
func (f Field) String() string { return f.Name(expect.English) }

// Change is one field that differs between two samples of a socket, with
// its values as text ("10", "40 ms"). Before is "" when the first sample
// had no value (no tcp_info yet, or an infinite ssthresh).
type Change struct {
	Field         Field
	Before, After string
}

// Changes is what changed between two samples of a socket, in Field
// order.
type Changes []Change

// Diff returns the fields whose value, as text, differs between two
// samples of one socket: before and after. Times are compared as they
// are printed (two significant digits), so an RTT estimate that moves by
// a few microseconds is not a change. Diff(Socket{}, s) lists s's values.
func Diff(before, after Socket) Changes {
	var cs Changes
	for f := range numFields {
		b, a := before.value(f), after.value(f)
		if a != b && a != "" {
			cs = append(cs, Change{Field: f, Before: b, After: a})
		}
	}
	return cs
}

// value returns field f of s as text, or "" when s has no value for it.
func (s Socket) value(f Field) string {
	u := func(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
	switch f {
	case FieldState:
		if s.State == 0 {
			return ""
		}
		return s.State.String()
	case FieldSendQ:
		if s.State == Listen || s.State == 0 {
			return ""
		}
		return u(s.SendQ)
	case FieldRecvQ:
		if s.State == Listen || s.State == 0 {
			return ""
		}
		return u(s.RecvQ)
	case FieldAcceptQ:
		if s.State != Listen {
			return ""
		}
		return u(s.AcceptQ)
	}
	i := s.Info
	if i == nil || s.State == Listen {
		return ""
	}
	switch f {
	case FieldCAState:
		return i.CAState.String()
	case FieldCwnd:
		return u(i.SndCwnd)
	case FieldSsthresh:
		if i.SndSsthresh >= InfiniteSsthresh {
			return ""
		}
		return u(i.SndSsthresh)
	case FieldSRTT:
		return formatDuration(i.RTT)
	case FieldRTO:
		return formatDuration(i.RTO)
	case FieldUnacked:
		return u(i.Unacked)
	case FieldRetrans:
		return u(i.TotalRetrans)
	}
	return ""
}

// formatDuration writes d in milliseconds with two significant digits, or
// as a whole number from 10 ms: "0.035 ms", "4.2 ms", "40 ms", "204 ms".
func formatDuration(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms <= 0 {
		return "0 ms"
	}
	digits := max(1-int(math.Floor(math.Log10(ms))), 0)
	scale := math.Pow10(digits)
	return strconv.FormatFloat(math.Round(ms*scale)/scale, 'f', -1, 64) + " ms"
}

// Text writes the changes on one line in lang: "cwnd 10 -> 20, srtt 40
// ms" ("拥塞窗口 10 -> 20，平滑RTT 40 ms"). A value that is new is written
// alone.
func (cs Changes) Text(lang expect.Lang) string {
	sep := ", "
	if lang == expect.Chinese {
		sep = ", "
	}
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(c.Field.Name(lang))
		b.WriteByte(' ')
		if c.Before != "" {
			b.WriteString(c.Before)
			b.WriteString(" -> ")
		}
		b.WriteString(c.After)
	}
	return b.String()
}
