package capture

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Completeness is Wireshark's tcp.completeness of a connection: a bit for
// each kind of segment seen in it.
type Completeness uint8

// The completeness bits, with Wireshark's values.
const (
	CompleteSYN    Completeness = 1 << iota // a SYN without ACK
	CompleteSYNACK                          // a SYN/ACK
	CompleteACK                             // an ACK on a segment without SYN
	CompleteData                            // a segment with payload
	CompleteFIN                             // a FIN with ACK
	CompleteRST                             // a RST
)

var completenessNames = [...]string{"SYN", "SYN-ACK", "ACK", "DATA", "FIN", "RST"}

// String returns the bits' names joined by "+", as "SYN+SYN-ACK+ACK+FIN",
// or "none".
func (c Completeness) String() string { return string(c.appendTo(nil)) }

// appendTo appends String's words to dst.
func (c Completeness) appendTo(dst []byte) []byte {
	if c&(1<<len(completenessNames)-1) == 0 {
		return append(dst, "none"...)
	}
	first := true
	for i, n := range completenessNames {
		if c&(1<<i) != 0 {
			if !first {
				dst = append(dst, '+')
			}
			first = false
			dst = append(dst, n...)
		}
	}
	return dst
}

// completenessOf returns the bits a segment with flags f and n bytes of
// payload adds, as tshark 4.0 counts them: only the SYN bit of a segment
// with SYN (SYN+FIN or SYN+RST add neither FIN nor RST), and a FIN only
// with ACK.
func completenessOf(f Flags, n int) Completeness {
	if f.Has(SYN) {
		if f.Has(ACK) {
			return CompleteSYNACK
		}
		return CompleteSYN
	}
	var c Completeness
	if f.Has(ACK) {
		c |= CompleteACK
	}
	if n > 0 {
		c |= CompleteData
	}
	if f&(FIN|ACK) == FIN|ACK {
		// tshark 4.0 counts no FIN without ACK (a scanner's probe).
		c |= CompleteFIN
	}
	if f.Has(RST) {
		c |= CompleteRST
	}
	return c
}

// ConnState is Zeek's conn_state of a connection (conn.log), derived by
// Zeek's rules from what each endpoint sent.
type ConnState uint8

// Zeek's connection states.
const (
	StateOTH    ConnState = iota // no SYN seen, just midstream traffic
	StateS0                      // connection attempt seen, no reply
	StateS1                      // established, not terminated
	StateSF                      // normal establishment and termination
	StateREJ                     // connection attempt rejected
	StateS2                      // established, close attempt by the originator seen (no reply)
	StateS3                      // established, close attempt by the responder seen (no reply)
	StateRSTO                    // established, the originator aborted (sent a RST)
	StateRSTR                    // the responder sent a RST
	StateRSTOS0                  // the originator sent a SYN then a RST; no SYN/ACK seen
	StateRSTRH                   // the responder sent a SYN/ACK then a RST; no SYN seen
	StateSH                      // the originator sent a SYN then a FIN; no SYN/ACK seen
	StateSHR                     // the responder sent a SYN/ACK then a FIN; no SYN seen
)

var connStateNames = [...]string{"OTH", "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR"}

// String returns Zeek's name of the state, as "SF".
func (s ConnState) String() string {
	if int(s) < len(connStateNames) {
		return connStateNames[s]
	}
	return "unknown"
}

// zeekState is the state of one endpoint in Zeek's TCP analyzer
// (TCP_ENDPOINT_*): what that endpoint has sent.
type zeekState uint8

const (
	zeekInactive zeekState = iota
	zeekSynSent
	zeekSynAckSent
	zeekPartial
	zeekEstablished
	zeekClosed
	zeekReset
)

// zeekAdd moves the endpoints' states z (originator first) after a
// segment sent in direction d.
func zeekAdd(z *[2]zeekState, d Dir, f Flags, n int) {
	e, p := &z[d], &z[1-d]
	switch {
	case f.Has(RST):
		*e = zeekReset
	case f.Has(FIN):
		if *e != zeekReset {
			*e = zeekClosed
		}
	case f.Has(SYN):
		if *e == zeekInactive {
			*e = zeekSynSent
			if f.Has(ACK) {
				*e = zeekSynAckSent
			}
		}
	case f.Has(ACK) || n > 0:
		switch *e {
		case zeekInactive:
			*e = zeekPartial
		case zeekSynSent, zeekSynAckSent:
			// The handshake's last ACK establishes both ends.
			if *p == zeekSynSent || *p == zeekSynAckSent || *p == zeekEstablished {
				*e = zeekEstablished
				if *p != zeekEstablished {
					*p = zeekEstablished
				}
			}
		}
	}
}

// ConnState returns the connection's Zeek conn_state, by the rules of
// Zeek's conn_state function (base/protocols/conn/main.zeek), the client
// being Zeek's originator.
func (s *ConnSummary) ConnState() ConnState {
	os, rs := s.zeek[ClientToServer], s.zeek[ServerToClient]
	oInactive := os == zeekInactive || os == zeekPartial
	rInactive := rs == zeekInactive || rs == zeekPartial
	switch {
	case rs == zeekReset:
		switch {
		case os == zeekSynSent || os == zeekSynAckSent || (os == zeekReset && s.Bytes[0] == 0 && s.Bytes[1] == 0):
			return StateREJ
		case oInactive:
			return StateRSTRH
		}
		return StateRSTR
	case os == zeekReset:
		switch {
		case !rInactive:
			return StateRSTO
		case synThenRST(s.History):
			return StateRSTOS0
		}
		return StateOTH
	case os == zeekClosed && rs == zeekClosed:
		return StateSF
	case os == zeekClosed:
		if rInactive {
			return StateSH
		}
		return StateS2
	case rs == zeekClosed:
		if oInactive {
			return StateSHR
		}
		return StateS3
	case os == zeekSynSent && rs == zeekInactive:
		return StateS0
	case os == zeekEstablished && rs == zeekEstablished:
		return StateS1
	}
	return StateOTH
}

// synThenRST reports whether history matches Zeek's /^\^?S[^HAFGIQ]*R.*/:
// the originator's SYN first, then its RST, and nothing of the
// originator's but those letters between.
func synThenRST(history string) bool {
	h := strings.TrimPrefix(history, "^")
	if !strings.HasPrefix(h, "S") {
		return false
	}
	i := strings.IndexByte(h[1:], 'R')
	return i >= 0 && !strings.ContainsAny(h[1:1+i], "HAFGIQ")
}

// AppendSummaryJSON appends the connection's verdict as one line of JSON
// to dst: its segments and bytes each way, retransmitted bytes, first
// round trip, tshark's completeness, Zeek's conn_state and history, and
// how it ended in Ending's terms. The line is what encoding/json writes
// of the record (its fields in this order, labels by name, strings
// escaped for HTML), written field by field: a capture of a hundred
// thousand connections prints as many.
func AppendSummaryJSON(dst []byte, s *ConnSummary) []byte {
	e := &s.Ending
	var tmp [64]byte
	dst = append(dst, `{"stream":`...)
	dst = appendInt(dst, int64(s.Stream))
	if s.Resumed {
		dst = append(dst, `,"resumed":true`...)
	}
	dst = append(dst, `,"client":`...)
	dst = appendJSONString(dst, appendAddrPort(tmp[:0], s.Client))
	dst = append(dst, `,"server":`...)
	dst = appendJSONString(dst, appendAddrPort(tmp[:0], s.Server))
	for _, f := range [...]struct {
		name string
		v    int64
	}{
		{`,"segments":`, int64(s.Segments)},
		{`,"client_segments":`, int64(s.DirSegments[0])},
		{`,"server_segments":`, int64(s.DirSegments[1])},
		{`,"client_bytes":`, s.Bytes[0]},
		{`,"server_bytes":`, s.Bytes[1]},
		{`,"client_retransmitted_bytes":`, s.Retransmitted[0]},
		{`,"server_retransmitted_bytes":`, s.Retransmitted[1]},
	} {
		dst = append(dst, f.name...)
		dst = appendInt(dst, f.v)
	}
	dst = append(dst, `,"first_rtt":`...)
	if s.FirstRTT > 0 {
		dst = appendJSONFloat(dst, s.FirstRTT.Seconds())
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"completeness":`...)
	dst = appendInt(dst, int64(s.Completeness))
	dst = append(dst, `,"completeness_flags":`...)
	dst = appendJSONString(dst, s.Completeness.appendTo(tmp[:0]))
	dst = append(dst, `,"conn_state":`...)
	dst = appendJSONString(dst, s.ConnState().String())
	dst = append(dst, `,"history":`...)
	dst = appendJSONString(dst, s.History)
	dst = append(dst, `,"closer":`...)
	dst = appendJSONString(dst, e.Closer().String())
	dst = append(dst, `,"fins_crossed":`...)
	dst = strconv.AppendBool(dst, e.Crossed)
	for _, list := range [...]struct {
		name string
		of   *[2]DataAfterFIN
	}{{`,"half_close":[`, &e.HalfClose}, {`,"data_after_close":[`, &e.Refused}} {
		dst = append(dst, list.name...)
		first := true
		for _, d := range [2]Dir{ClientToServer, ServerToClient} {
			if list.of[d].Frame != 0 {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = appendJSONString(dst, Side(d))
			}
		}
		dst = append(dst, ']')
	}
	if e.Reset.Frame != 0 {
		dst = append(dst, `,"reset_by":`...)
		dst = appendJSONString(dst, Side(e.Reset.By))
		dst = append(dst, `,"reset_state":`...)
		dst = appendJSONString(dst, e.Reset.State.String())
	} else {
		dst = append(dst, `,"reset_by":null,"reset_state":null`...)
	}
	dst = append(dst, `,"ending":`...)
	var words [512]byte
	dst = appendJSONString(dst, e.appendTo(words[:0]))
	dst = append(dst, `,"client_state":`...)
	dst = appendJSONString(dst, s.ClientState.String())
	dst = append(dst, `,"server_state":`...)
	dst = appendJSONString(dst, s.ServerState.String())
	dst = append(dst, `,"labels":{`...)
	// encoding/json writes a map's keys sorted.
	var labels [numLabels]Label
	n := 0
	for l := Label(0); l < numLabels; l++ {
		if s.Counts[l] > 0 {
			labels[n] = l
			n++
		}
	}
	slices.SortFunc(labels[:n], func(x, y Label) int { return strings.Compare(labelNames[x], labelNames[y]) })
	for i, l := range labels[:n] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, labelNames[l])
		dst = append(dst, ':')
		dst = appendInt(dst, int64(s.Counts[l]))
	}
	dst = append(dst, `},"header_cut":`...)
	dst = appendInt(dst, int64(s.Cut))
	return append(dst, "}\n"...)
}

// appendJSONString appends s as encoding/json writes a string: quoted,
// with quotes, backslashes and control characters escaped, and <, > and
// & too (its HTML-safe escaping), invalid UTF-8 as U+FFFD, and the line
// and paragraph separators U+2028 and U+2029 escaped.
func appendJSONString[S []byte | string](dst []byte, s S) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		}
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		} else {
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendVerdict appends the verdict fields in one line's words, for
// Summary: "conn_state SF, completeness 31 (SYN+SYN-ACK+ACK+DATA+FIN);
// client 5 segments 120 bytes, server 4 segments 900 bytes (300
// retransmitted); first RTT 1.2ms".
func appendVerdict(dst []byte, s *ConnSummary) []byte {
	dst = append(dst, "conn_state "...)
	dst = append(dst, s.ConnState().String()...)
	dst = append(dst, ", completeness "...)
	dst = appendInt(dst, int64(s.Completeness))
	dst = append(dst, " ("...)
	dst = s.Completeness.appendTo(dst)
	dst = append(dst, ')')
	for _, d := range [2]Dir{ClientToServer, ServerToClient} {
		if d == ClientToServer {
			dst = append(dst, "; "...)
		} else {
			dst = append(dst, ", "...)
		}
		dst = append(dst, Side(d)...)
		dst = append(dst, ' ')
		dst = appendInt(dst, int64(s.DirSegments[d]))
		dst = append(dst, " segments "...)
		dst = appendInt(dst, s.Bytes[d])
		dst = append(dst, " bytes"...)
		if s.Retransmitted[d] > 0 {
			dst = append(dst, " ("...)
			dst = appendInt(dst, s.Retransmitted[d])
			dst = append(dst, " retransmitted)"...)
		}
	}
	if s.FirstRTT > 0 {
		dst = append(dst, "; first RTT "...)
		dst = append(dst, s.FirstRTT.Round(time.Microsecond).String()...)
	}
	return dst
}
