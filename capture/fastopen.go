package capture

import "encoding/binary"

// FastOpen is what a segment's TCP Fast Open option (RFC 7413) holds.
type FastOpen uint8

// The Fast Open options.
const (
	NoFastOpen      FastOpen = iota // no Fast Open option
	FastOpenRequest                 // an empty option: the client asks for a cookie
	FastOpenCookie                  // a cookie: the client's, on a SYN, or the server's, on a SYN/ACK
)

// fastOpenMagic marks the experimental Fast Open option (kind 254, RFC
// 6994), as Linux sent it before kind 34 was assigned.
const fastOpenMagic = 0xf989

// parseFastOpen reads a Fast Open option of kind 34, or 254 with its
// magic, whose value is v.
func parseFastOpen(o *Options, kind byte, v []byte) {
	if kind == 254 {
		if len(v) < 2 || binary.BigEndian.Uint16(v) != fastOpenMagic {
			return
		}
		v = v[2:]
	}
	o.FastOpen = FastOpenRequest
	if len(v) > 0 {
		o.FastOpen = FastOpenCookie
	}
}

// fastOpenLabels returns the Fast Open labels of seg, a SYN or SYN/ACK,
// rev being the other side's half, as Wireshark 4.0 gives them: tfo-syn
// to a SYN with a cookie (with data or not); to a SYN/ACK, tfo-ack when
// it acknowledges more than the other side's SYN (its data), tfo-ignored
// when it acknowledges only the SYN of a SYN with data.
func fastOpenLabels(seg *Segment, rev *half) Labels {
	var l Labels
	switch {
	case !seg.Flags.Has(ACK):
		if seg.Options.FastOpen == FastOpenCookie {
			l = l.With(TFOSyn)
		}
	case !rev.synSeen:
	case seg.Ack != rev.isn+1:
		l = l.With(TFOAck)
	case rev.synLen > 0:
		l = l.With(TFOIgnored)
	}
	return l
}
