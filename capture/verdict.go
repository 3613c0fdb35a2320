package capture

import (
	"encoding/json"
	"strings"
	"time"
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
func (c Completeness) String() string {
	var parts []string
	for i, n := range completenessNames {
		if c&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
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

// summaryJSON is the object `tcplab annotate -summary -json` prints for
// a connection.
type summaryJSON struct {
	Stream                   int            `json:"stream"`
	Resumed                  bool           `json:"resumed,omitempty"`
	Client                   string         `json:"client"`
	Server                   string         `json:"server"`
	Segments                 int            `json:"segments"`
	ClientSegments           int            `json:"client_segments"`
	ServerSegments           int            `json:"server_segments"`
	ClientBytes              int64          `json:"client_bytes"`
	ServerBytes              int64          `json:"server_bytes"`
	ClientRetransmittedBytes int64          `json:"client_retransmitted_bytes"`
	ServerRetransmittedBytes int64          `json:"server_retransmitted_bytes"`
	FirstRTT                 *float64       `json:"first_rtt"`
	Completeness             int            `json:"completeness"`
	CompletenessNames        string         `json:"completeness_flags"`
	ConnState                string         `json:"conn_state"`
	History                  string         `json:"history"`
	Closer                   string         `json:"closer"`
	FINsCrossed              bool           `json:"fins_crossed"`
	HalfClose                []string       `json:"half_close"`
	DataAfterClose           []string       `json:"data_after_close"`
	ResetBy                  *string        `json:"reset_by"`
	ResetState               *string        `json:"reset_state"`
	Ending                   string         `json:"ending"`
	ClientState              string         `json:"client_state"`
	ServerState              string         `json:"server_state"`
	Labels                   map[string]int `json:"labels"`
	Cut                      int            `json:"header_cut"`
}

// AppendSummaryJSON appends the connection's verdict as one line of JSON
// to dst: its segments and bytes each way, retransmitted bytes, first
// round trip, tshark's completeness, Zeek's conn_state and history, and
// how it ended in Ending's terms.
func AppendSummaryJSON(dst []byte, s *ConnSummary) []byte {
	e := &s.Ending
	v := summaryJSON{
		Stream: s.Stream, Resumed: s.Resumed, Client: s.Client.String(), Server: s.Server.String(),
		Segments: s.Segments, ClientSegments: s.DirSegments[0], ServerSegments: s.DirSegments[1],
		ClientBytes: s.Bytes[0], ServerBytes: s.Bytes[1],
		ClientRetransmittedBytes: s.Retransmitted[0], ServerRetransmittedBytes: s.Retransmitted[1],
		Completeness: int(s.Completeness), CompletenessNames: s.Completeness.String(),
		ConnState: s.ConnState().String(), History: s.History,
		Closer: e.Closer().String(), FINsCrossed: e.Crossed,
		HalfClose: []string{}, DataAfterClose: []string{},
		Ending:      e.String(),
		ClientState: s.ClientState.String(), ServerState: s.ServerState.String(),
		Labels: map[string]int{}, Cut: s.Cut,
	}
	if s.FirstRTT > 0 {
		rtt := s.FirstRTT.Seconds()
		v.FirstRTT = &rtt
	}
	for _, d := range [2]Dir{ClientToServer, ServerToClient} {
		if e.HalfClose[d].Frame != 0 {
			v.HalfClose = append(v.HalfClose, Side(d))
		}
		if e.Refused[d].Frame != 0 {
			v.DataAfterClose = append(v.DataAfterClose, Side(d))
		}
	}
	if e.Reset.Frame != 0 {
		by, state := Side(e.Reset.By), e.Reset.State.String()
		v.ResetBy, v.ResetState = &by, &state
	}
	for l := Label(0); l < numLabels; l++ {
		if s.Counts[l] > 0 {
			v.Labels[l.String()] = int(s.Counts[l])
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Every field is a string, a number or a bool: it cannot fail.
		return dst
	}
	return append(append(dst, b...), '\n')
}

// verdictText says the verdict fields in one line's words, for Summary:
// "conn_state SF, completeness 31 (SYN+SYN-ACK+ACK+DATA+FIN); client 5
// segments 120 bytes, server 4 segments 900 bytes (300 retransmitted);
// first RTT 1.2ms".
func verdictText(b *strings.Builder, s *ConnSummary) {
	b.WriteString("conn_state ")
	b.WriteString(s.ConnState().String())
	b.WriteString(", completeness ")
	writeInt(b, int64(s.Completeness))
	b.WriteString(" (")
	b.WriteString(s.Completeness.String())
	b.WriteString(")")
	for _, d := range [2]Dir{ClientToServer, ServerToClient} {
		if d == ClientToServer {
			b.WriteString("; ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(Side(d))
		b.WriteByte(' ')
		writeInt(b, int64(s.DirSegments[d]))
		b.WriteString(" segments ")
		writeInt(b, s.Bytes[d])
		b.WriteString(" bytes")
		if s.Retransmitted[d] > 0 {
			b.WriteString(" (")
			writeInt(b, s.Retransmitted[d])
			b.WriteString(" retransmitted)")
		}
	}
	if s.FirstRTT > 0 {
		b.WriteString("; first RTT ")
		b.WriteString(s.FirstRTT.Round(time.Microsecond).String())
	}
}
