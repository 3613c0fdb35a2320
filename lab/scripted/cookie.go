package scripted

import "encoding/binary"

// fastOpenCookie returns the cookie of the Fast Open option of pkt, an
// IPv4 or IPv6 packet carrying TCP: the option's bytes after its kind
// and length (kind 34, RFC 7413) or after the magic 0xF989 (kind 254,
// the experimental form); nil when there is no such option or it holds
// no cookie (a request).
func fastOpenCookie(pkt []byte) []byte {
	tcp, _, ok := tcpHeader(pkt)
	if !ok {
		return nil
	}
	var cookie []byte
	tcpOptions(tcp, func(kind byte, data []byte) bool {
		switch {
		case kind == 34 && len(data) > 0:
			cookie = data
		case kind == 254 && len(data) > 2 && binary.BigEndian.Uint16(data) == 0xf989:
			cookie = data[2:]
		}
		return cookie == nil
	})
	return cookie
}
