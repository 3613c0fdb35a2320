package scripted

import "encoding/binary"

// fastOpenCookie returns the cookie of the Fast Open option of pkt, an
// IPv4 or IPv6 packet carrying TCP: the option's bytes after its kind
// and length (kind 34, RFC 7413) or after the magic 0xF989 (kind 254,
// the experimental form); nil when there is no such option or it holds
// no cookie (a request).
func fastOpenCookie(pkt []byte) []byte {
	if len(pkt) < 1 {
		return nil
	}
	var tcp []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 || pkt[9] != 6 || len(pkt) < int(pkt[0]&0xf)*4 {
			return nil
		}
		tcp = pkt[int(pkt[0]&0xf)*4:]
	case 6:
		if len(pkt) < 40 || pkt[6] != 6 {
			return nil
		}
		tcp = pkt[40:]
	default:
		return nil
	}
	if len(tcp) < 20 || int(tcp[12]>>4)*4 > len(tcp) {
		return nil
	}
	opts := tcp[20 : int(tcp[12]>>4)*4]
	for len(opts) > 0 {
		switch opts[0] {
		case 0:
			return nil
		case 1:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return nil
		}
		data := opts[2:opts[1]]
		switch {
		case opts[0] == 34 && len(data) > 0:
			return data
		case opts[0] == 254 && len(data) > 2 && binary.BigEndian.Uint16(data) == 0xf989:
			return data[2:]
		}
		opts = opts[opts[1]:]
	}
	return nil
}
