package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Errors that tell a caller what is wrong with a capture file.
var (
	ErrEmpty      = errors.New("file is empty")
	ErrNotCapture = errors.New("not a pcap or pcapng file")
	ErrTruncated  = errors.New("file is truncated")
	ErrDirectory  = errors.New("is a directory, not a capture file: give a pcap or pcapng file")
)

// ErrTimeout is returned by a live Source's ReadPacketData when no frame
// arrived within its timeout; the caller checks its end condition and reads
// again.
var ErrTimeout = errors.New("capture: read timeout")

// Source yields raw frames of one link type: a capture file (File), frames
// held in memory (Memory) or a live capture (package capture/live).
// ReadPacketData returns io.EOF at the end, and a live source returns
// ErrTimeout when nothing arrived for a while, so its reader may check an
// end condition of its own; Walk reads on.
type Source interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// File is a pcap or pcapng file opened for reading, packet by packet.
type File struct {
	f          *os.File
	fr         *framer
	pcap       *pcapgo.Reader
	ng         *pcapgo.NgReader
	name       string
	compressed compression
	release    func() // releases the decompressor
	// recs, for a pcap file, is the stream under the framer: its
	// well-formed records are read straight from its buffer (readRecord).
	recs *bufio.Reader
	nano bool     // the pcap file's timestamps are in nanoseconds
	hdr  [16]byte // a pcap record's header, read through the framer
	buf  []byte   // a pcap record's data, read through the framer
}

// pcap and pcapng magic numbers, as the first four bytes of a file read in
// big-endian order.
const (
	magicMicro   = 0xa1b2c3d4
	magicMicroLE = 0xd4c3b2a1
	magicNano    = 0xa1b23c4d
	magicNanoLE  = 0x4d3cb2a1
	magicNg      = 0x0a0d0d0a
)

// Open opens a pcap (either byte order, micro- or nanosecond timestamps) or
// pcapng file, which may be compressed with gzip, zstd or lz4 as tshark
// reads them. The frames it returns are valid until the next call.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrDirectory)
	}
	file, err := newFile(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return file, nil
}

func newFile(f *os.File, path string) (*File, error) {
	br := bufio.NewReaderSize(f, 1<<20)
	head, err := br.Peek(4)
	switch {
	case len(head) == 0:
		return nil, fmt.Errorf("%s: %w", path, ErrEmpty)
	case len(head) < 4:
		return nil, fmt.Errorf("%s: %w: %d bytes, shorter than any capture header", path, ErrTruncated, len(head))
	case err != nil:
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	file := &File{f: f, name: path, release: func() {}}
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	r := br
	// A compressed capture is read as tshark reads it; its records are
	// bounded by MaxPacket alone, its size saying nothing of theirs.
	magic, _ := br.Peek(6) // the longest magic, xz's
	if c := sniff(magic); c != uncompressed {
		dec, release, err := decompress(c, br)
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("%s: %w: %v header cut short", path, ErrTruncated, c)
		case err != nil:
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		file.release, file.compressed, size = release, c, -1
		r = bufio.NewReaderSize(dec, 1<<16)
		head, err = r.Peek(4)
		if len(head) < 4 {
			release()
			switch {
			case len(head) == 0 && err == io.EOF:
				return nil, fmt.Errorf("%s: %w: its %v stream holds nothing", path, ErrEmpty, c)
			case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
				return nil, fmt.Errorf("%s: %w: its %v stream holds %d bytes, shorter than any capture header", path, ErrTruncated, c, len(head))
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	fail := func(err error) (*File, error) {
		file.release()
		return nil, err
	}
	switch binary.BigEndian.Uint32(head) {
	case magicMicro, magicMicroLE, magicNano, magicNanoLE:
		if _, err := r.Peek(24); err != nil {
			return fail(fmt.Errorf("%s: %w: pcap header cut short", path, ErrTruncated))
		}
		file.fr = newFramer(r, false, size)
		// gopacket's reader reads the file header alone: the records are
		// read here (readRecord), from the framer or straight from r.
		file.pcap, err = pcapgo.NewReader(io.LimitReader(file.fr, 24))
		if err == nil {
			file.recs, file.nano = r, file.pcap.Resolution() == gopacket.TimestampResolutionNanosecond
		}
	case magicNg:
		file.fr = newFramer(r, true, size)
		file.ng, err = pcapgo.NewNgReader(file.fr, pcapgo.NgReaderOptions{})
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fail(fmt.Errorf("%s: %w: pcapng header cut short", path, ErrTruncated))
		}
	default:
		after := ""
		if file.compressed != uncompressed {
			after = " once " + file.compressed.String() + " is undone"
		}
		return fail(fmt.Errorf("%s: %w (first bytes %x%s)", path, ErrNotCapture, head, after))
	}
	switch {
	case errors.Is(err, ErrBadRecord) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrDamaged):
		return fail(fmt.Errorf("%s: %w", path, err))
	case err != nil:
		return fail(fmt.Errorf("%s: %w: %v", path, ErrNotCapture, err))
	}
	return file, nil
}

// ReadPacketData returns the next frame; its bytes are reused by the next
// call. It returns io.EOF at the end of the file, an error wrapping
// ErrTruncated when the last record is cut short, and one wrapping
// ErrBadRecord at a record whose lengths cannot be right (see MaxPacket):
// no record makes it allocate more than the record can hold.
func (f *File) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	var (
		data []byte
		ci   gopacket.CaptureInfo
		err  error
	)
	f.fr.nextPacket()
	if f.pcap != nil {
		data, ci, err = f.readRecord()
	} else {
		data, ci, err = f.ng.ZeroCopyReadPacketData()
	}
	if err != nil && f.fr.err != nil && f.fr.err != io.EOF {
		// The stream's own error says best what went wrong: gopacket's
		// pcapng reader takes a stream that ends early at a block's
		// start for a clean end, and words others its own way.
		err = f.fr.err
	}
	switch {
	case err == nil || err == io.EOF:
		return data, ci, err
	case errors.Is(err, ErrTruncated) || errors.Is(err, ErrBadRecord) || errors.Is(err, ErrDamaged):
		return nil, ci, fmt.Errorf("%s: %w", f.name, err)
	case errors.Is(err, io.ErrUnexpectedEOF) && f.compressed != uncompressed:
		return nil, ci, fmt.Errorf("%s: %w: its %v stream ends early", f.name, ErrTruncated, f.compressed)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, ci, fmt.Errorf("%s: %w: last record cut short", f.name, ErrTruncated)
	default:
		return nil, ci, fmt.Errorf("%s: bad record: %v", f.name, err)
	}
}

// LinkType returns the link type of the file's frames.
func (f *File) LinkType() layers.LinkType {
	if f.pcap != nil {
		return f.pcap.LinkType()
	}
	return f.ng.LinkType()
}

// Close closes the file.
func (f *File) Close() error {
	f.release()
	return f.f.Close()
}

// Interfaces returns the capture points of the file seen so far, in
// pcapng interface order (a pcapng file may describe an interface only
// when its first packet comes): one, unnamed, for a pcap file.
func (f *File) Interfaces() []Point {
	if f.pcap != nil {
		return []Point{{Link: f.pcap.LinkType()}}
	}
	points := make([]Point, 0, f.ng.NInterfaces())
	for i := range f.ng.NInterfaces() {
		if ifc, err := f.ng.Interface(i); err == nil {
			points = append(points, Point{Name: ifc.Name, Link: ifc.LinkType})
		}
	}
	return points
}

// OnInterface returns a Source with only the frames of src captured at
// interface n (a pcapng interface index; a pcap file has only 0). A file
// that holds what several points saw has each segment once per point, and
// an annotator that sees them all takes the copies for retransmissions:
// analyse one point at a time.
func OnInterface(src Source, n int) Source { return &onInterface{src, n} }

type onInterface struct {
	Source
	n int
}

func (s *onInterface) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	for {
		data, ci, err := s.Source.ReadPacketData()
		if err != nil || ci.InterfaceIndex == s.n {
			return data, ci, err
		}
	}
}

// readRecord reads the next record of a pcap file, as gopacket's
// zero-copy read does: its data is valid until the next read. A record
// whole in the buffer under the framer that passes the framer's checks
// and the reader's is read straight from that buffer (readBuffered);
// any other through the framer, which says what is wrong with it. On a
// capture of small frames the copies through the framer and a reader's
// buffer cost a tenth of what annotate does.
func (f *File) readRecord() (data []byte, ci gopacket.CaptureInfo, err error) {
	if data, ci, ok := f.readBuffered(); ok {
		return data, ci, nil
	}
	if _, err = io.ReadFull(f.fr, f.hdr[:]); err != nil {
		return nil, ci, err
	}
	ci = f.recordInfo(f.hdr[:])
	if snap := int(f.pcap.Snaplen()); ci.CaptureLength > max(snap, MaxPacket) {
		return nil, ci, fmt.Errorf("capture length exceeds snap length: %d > %d", ci.CaptureLength, snap)
	}
	if ci.CaptureLength > ci.Length {
		return nil, ci, fmt.Errorf("capture length exceeds original packet length: %d > %d", ci.CaptureLength, ci.Length)
	}
	if cap(f.buf) < ci.CaptureLength {
		f.buf = make([]byte, max(ci.CaptureLength, min(int(f.pcap.Snaplen()), MaxPacket)))
	}
	data = f.buf[:ci.CaptureLength]
	_, err = io.ReadFull(f.fr, data)
	return data, ci, err
}

// recordInfo returns the capture info of a pcap record's header h.
func (f *File) recordInfo(h []byte) gopacket.CaptureInfo {
	order := f.fr.order
	frac := order.Uint32(h[4:8])
	if !f.nano {
		frac *= 1000 // in 32 bits, as gopacket's reader multiplies
	}
	return gopacket.CaptureInfo{
		Timestamp:     time.Unix(int64(order.Uint32(h[0:4])), int64(frac)).UTC(),
		CaptureLength: int(order.Uint32(h[8:12])),
		Length:        int(order.Uint32(h[12:16])),
	}
}

// readBuffered reads the next record straight from the buffer under the
// framer, when it is whole there and passes the framer's checks and the
// reader's; its data is a slice of that buffer. Otherwise (ok false) it
// reads nothing.
func (f *File) readBuffered() (data []byte, ci gopacket.CaptureInfo, ok bool) {
	fr := f.fr
	if !fr.begun || len(fr.pend) > 0 || fr.body > 0 || fr.err != nil {
		return nil, ci, false
	}
	h, err := f.recs.Peek(16)
	if err != nil {
		return nil, ci, false
	}
	caplen, length := fr.order.Uint32(h[8:12]), fr.order.Uint32(h[12:16])
	n := 16 + int(caplen)
	if caplen > MaxPacket || caplen > length || fr.left >= 0 && int64(n) > fr.left {
		return nil, ci, false
	}
	rec, err := f.recs.Peek(n)
	if err != nil {
		return nil, ci, false
	}
	ci = f.recordInfo(rec)
	data = rec[16:n:n]
	f.recs.Discard(n)
	fr.consumed(n)
	fr.n++
	return data, ci, true
}
