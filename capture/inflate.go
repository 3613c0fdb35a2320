package capture

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
)

// maxInflated bounds what an IPComp payload inflates to: the payload of
// an IP datagram cannot be longer. A payload that inflates to more is
// not analysed (DIFFERENCES.md), so that no frame makes the decoder
// inflate without bound.
const maxInflated = 65535

// inflater inflates IPComp payloads (DEFLATE, RFC 2394) into a buffer it
// reuses, with a decompressor it resets, so that only the first payload
// allocates (and a payload whose Huffman codes need link tables).
type inflater struct {
	src bytes.Reader
	r   io.ReadCloser
	buf []byte
}

// inflate returns what b inflates to: raw DEFLATE, or DEFLATE behind a
// zlib header, as Wireshark's tvb_uncompress takes both. Like Wireshark,
// it keeps what a stream cut short gave before the cut, and ignores bytes
// after the end of the stream. It reports false for bytes that do not
// inflate, or inflate to more than maxInflated.
func (z *inflater) inflate(b []byte) ([]byte, bool) {
	if len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0 && b[1]&0x20 == 0 {
		b = b[2:] // a zlib header without a preset dictionary
	}
	z.src.Reset(b)
	if z.r == nil {
		z.r = flate.NewReader(&z.src)
		z.buf = make([]byte, maxInflated+1)
	} else if err := z.r.(flate.Resetter).Reset(&z.src, nil); err != nil {
		return nil, false
	}
	n := 0
	for {
		m, err := z.r.Read(z.buf[n:])
		n += m
		switch {
		case n > maxInflated:
			return nil, false
		case errors.Is(err, io.EOF):
			return z.buf[:n:n], n > 0
		case errors.Is(err, io.ErrUnexpectedEOF):
			// The stream was cut: what came before the cut stands.
			return z.buf[:n:n], n > 0
		case err != nil:
			return nil, false
		case m == 0:
			return nil, false
		}
	}
}
