package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// ErrDamaged is wrapped by the error of a compressed capture whose stream
// cannot be decompressed further (a bad checksum, corrupt data). A stream
// that merely ends early is ErrTruncated, as a plain file cut short is.
var ErrDamaged = errors.New("compressed stream is damaged")

// compression is how a capture file is compressed, known by its magic.
type compression uint8

const (
	uncompressed compression = iota
	gzipped                  // gzip (RFC 1952): what tshark -w x.pcapng.gz and gzip write
	zstandard                // a Zstandard frame (RFC 8878)
	lz4Frame                 // an LZ4 frame, as the lz4 tool writes
	xzipped                  // xz: refused, as tshark refuses it
	bzipped                  // bzip2: refused, as tshark refuses it
)

var compressionNames = [...]string{"uncompressed", "gzip", "zstd", "lz4", "xz", "bzip2"}

// undo names the tool that decompresses what tcplab does not.
var undo = [...]string{xzipped: "unxz", bzipped: "bunzip2"}

func (c compression) String() string { return compressionNames[c] }

// compressionMagic are the first bytes of each compressed format.
var compressionMagic = [...]struct {
	c     compression
	magic []byte
}{
	{gzipped, []byte{0x1f, 0x8b}},
	{zstandard, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{lz4Frame, []byte{0x04, 0x22, 0x4d, 0x18}},
	{xzipped, []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
	{bzipped, []byte("BZh")},
}

// sniff returns the compression of a stream that starts with head.
func sniff(head []byte) compression {
	for _, m := range compressionMagic {
		if bytes.HasPrefix(head, m.magic) {
			return m.c
		}
	}
	return uncompressed
}

// maxZstdWindow bounds the history a Zstandard stream may ask the decoder
// to keep, which the decoder allocates whole however short the stream: 8
// MiB, the largest window of zstd's levels 1 to 19 (level 3, the default,
// takes 2 MiB). Streams made with --ultra or --long ask for more.
const maxZstdWindow = 8 << 20

// decompress returns the decompressed stream of r, compressed with c, and
// what releases the decompressor. Its errors say which format failed:
// io.ErrUnexpectedEOF when the stream ends early, ErrDamaged otherwise.
func decompress(c compression, r io.Reader) (io.Reader, func(), error) {
	var (
		dec     io.Reader
		release = func() {}
		err     error
	)
	switch c {
	case gzipped:
		dec, err = gzip.NewReader(r)
	case zstandard:
		var z *zstd.Decoder
		// One block at a time, decoded as it is read: no goroutines.
		z, err = zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderLowmem(true))
		if err == nil {
			dec, release = z, z.Close
		}
	case lz4Frame:
		dec = lz4.NewReader(r)
	default:
		return nil, nil, fmt.Errorf("%w: compressed with %v, which neither tcplab nor tshark reads; decompress it first (%s FILE)", ErrNotCapture, c, undo[c])
	}
	if err != nil {
		return nil, nil, damaged(c, err)
	}
	return &decompressed{r: dec, c: c}, release, nil
}

// decompressed reads a decompressor, giving its errors their meaning.
type decompressed struct {
	r io.Reader
	c compression
	n int64 // bytes decompressed so far
}

func (d *decompressed) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.n += int64(n)
	if err != nil && err != io.EOF {
		err = damaged(d.c, err)
		if err != io.ErrUnexpectedEOF {
			err = fmt.Errorf("%w, after %d bytes decompressed", err, d.n)
		}
	}
	return n, err
}

// damaged classifies an error of the decompressor of c.
func damaged(c compression, err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return io.ErrUnexpectedEOF
	case errors.Is(err, zstd.ErrWindowSizeExceeded):
		return fmt.Errorf("%w (zstd): its window is larger than the %d MiB tcplab reads (zstd --long or --ultra); recompress it with zstd -19 or below", ErrDamaged, maxZstdWindow>>20)
	}
	return fmt.Errorf("%w (%v): %v", ErrDamaged, c, err)
}
