package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Writer writes frames into a pcapng file, each with an optional comment
// that Wireshark shows and tshark prints as frame.comment. It writes the
// blocks itself (a section header, one interface with nanosecond
// timestamps, an enhanced packet block per frame), buffered, so that a
// frame costs a copy and no allocation.
type Writer struct {
	w      *bufio.Writer
	points int // interfaces in the file
	// FlushEach flushes every packet to the underlying writer, so a killed
	// process leaves a file that ends on a whole packet.
	FlushEach bool
}

// pcapng block types and option codes (draft-ietf-opsawg-pcapng).
const (
	blockSHB       = 0x0A0D0D0A
	blockIDB       = 0x00000001
	blockEPB       = 0x00000006
	byteOrderMagic = 0x1A2B3C4D
	optEnd         = 0
	optComment     = 1
	optShbUserAppl = 4
	optIfName      = 2
	optIfTsresol   = 9
	writeSnaplen   = 262144
)

var le = binary.LittleEndian

// NewWriter starts a pcapng stream on w for frames of the given link type.
func NewWriter(w io.Writer, link layers.LinkType) (*Writer, error) {
	return NewWriterPoints(w, []Point{{Name: "tcplab", Link: link}})
}

// Point is a place where packets were captured: one interface of a pcapng
// file, which Wireshark shows by name (frame.interface_name).
type Point struct {
	Name string // such as "client eth0"
	Link layers.LinkType
}

// NewWriterPoints starts a pcapng stream on w with one interface per
// capture point; a packet goes to the point its CaptureInfo's
// InterfaceIndex names.
func NewWriterPoints(w io.Writer, points []Point) (*Writer, error) {
	if len(points) == 0 {
		return nil, fmt.Errorf("start pcapng: no capture point")
	}
	wr := &Writer{w: bufio.NewWriterSize(w, 256<<10), points: len(points)}
	var b []byte
	// Section header block: byte order, version 1.0, length unknown, and
	// the application that wrote it.
	shb := le.AppendUint32(nil, byteOrderMagic)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, math.MaxUint64)
	shb = appendOption(shb, optShbUserAppl, []byte("tcplab"))
	shb = appendOption(shb, optEnd, nil)
	b = appendBlock(b, blockSHB, shb)
	// Interface description blocks: the link type, the snap length, a name
	// and nanosecond timestamps.
	for _, pt := range points {
		idb := le.AppendUint16(nil, uint16(pt.Link))
		idb = le.AppendUint16(idb, 0)
		idb = le.AppendUint32(idb, writeSnaplen)
		idb = appendOption(idb, optIfName, []byte(pt.Name))
		idb = appendOption(idb, optIfTsresol, []byte{9})
		idb = appendOption(idb, optEnd, nil)
		b = appendBlock(b, blockIDB, idb)
	}
	if _, err := wr.w.Write(b); err != nil {
		return nil, fmt.Errorf("start pcapng: %w", err)
	}
	return wr, wr.Flush()
}

// appendBlock appends a block of type typ around body.
func appendBlock(dst []byte, typ uint32, body []byte) []byte {
	n := uint32(12 + len(body))
	dst = le.AppendUint32(dst, typ)
	dst = le.AppendUint32(dst, n)
	dst = append(dst, body...)
	return le.AppendUint32(dst, n)
}

// appendOption appends an option, its value padded to 4 bytes.
func appendOption(dst []byte, code uint16, v []byte) []byte {
	dst = le.AppendUint16(dst, code)
	dst = le.AppendUint16(dst, uint16(len(v)))
	dst = append(dst, v...)
	return append(dst, make([]byte, pad4(len(v)))...)
}

func pad4(n int) int { return (4 - n%4) % 4 }

var zeros [4]byte

// WritePacket writes one frame with its comment (none when empty).
func (w *Writer) WritePacket(ci gopacket.CaptureInfo, data []byte, comment string) error {
	return w.write(ci, data, comment, nil)
}

// WritePacketComment is WritePacket with the comment as bytes, which it
// does not keep: a caller that formats comments into a reused buffer
// writes without allocating.
func (w *Writer) WritePacketComment(ci gopacket.CaptureInfo, data, comment []byte) error {
	return w.write(ci, data, "", comment)
}

func (w *Writer) write(ci gopacket.CaptureInfo, data []byte, s string, c []byte) error {
	if len(data) > writeSnaplen {
		data = data[:writeSnaplen]
	}
	nc := len(s) + len(c)
	if nc > math.MaxUint16 {
		return fmt.Errorf("write packet: comment of %d bytes is too long for pcapng", nc)
	}
	opts := 0
	if nc > 0 {
		opts = 4 + nc + pad4(nc) + 4
	}
	total := 28 + len(data) + pad4(len(data)) + opts + 4
	if w.w.Available() < total {
		if err := w.w.Flush(); err != nil {
			return fmt.Errorf("write packet: %w", err)
		}
	}
	// The whole block is built in the buffer's free space and handed over
	// in one Write, which then copies nothing; a block larger than the
	// buffer is built in a slice of its own.
	b := w.appendEPB(w.w.AvailableBuffer(), uint32(total), ci, data)
	if nc > 0 {
		b = le.AppendUint16(b, optComment)
		b = le.AppendUint16(b, uint16(nc))
		b = append(b, s...)
		b = append(b, c...)
		b = append(b, zeros[:pad4(nc)]...)
		b = append(b, zeros[:4]...) // opt_endofopt
	}
	b = le.AppendUint32(b, uint32(total))
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("write packet: %w", err)
	}
	if w.FlushEach {
		return w.Flush()
	}
	return nil
}

// WriteAnnotated writes p's frame with Comment(p) as its comment when p
// is a TCP segment, and none otherwise, as WritePacketComment would: the
// comment is formatted straight into the block in the buffer, which is
// then written in one piece.
func (w *Writer) WriteAnnotated(p *Packet) error {
	data := p.Data
	if len(data) > writeSnaplen {
		data = data[:writeSnaplen]
	}
	// Room for the block with a comment of any usual length; a longer
	// one grows the slice, and Write copies it.
	if need := 32 + len(data) + 3 + 512; w.w.Available() < need && w.w.Buffered() > 0 {
		if err := w.w.Flush(); err != nil {
			return fmt.Errorf("write packet: %w", err)
		}
	}
	b := w.appendEPB(w.w.AvailableBuffer(), 0, p.Info, data) // the total length, once known
	if p.TCP {
		at := len(b)
		b = append(b, 0, 0, 0, 0) // the option's code and length
		b = AppendComment(b, p)
		nc := len(b) - at - 4
		if nc > math.MaxUint16 {
			return fmt.Errorf("write packet: comment of %d bytes is too long for pcapng", nc)
		}
		le.PutUint16(b[at:], optComment)
		le.PutUint16(b[at+2:], uint16(nc))
		b = append(b, zeros[:pad4(nc)]...)
		b = append(b, zeros[:4]...) // opt_endofopt
	}
	total := uint32(len(b) + 4)
	le.PutUint32(b[4:], total)
	b = le.AppendUint32(b, total)
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("write packet: %w", err)
	}
	if w.FlushEach {
		return w.Flush()
	}
	return nil
}

// appendEPB appends an Enhanced Packet Block's head, of total length
// total, and data (already cut to the snap length) with its padding: the
// interface ci names (0 for one the file lacks), its time stamp, and its
// original length, never less than the data's.
func (w *Writer) appendEPB(b []byte, total uint32, ci gopacket.CaptureInfo, data []byte) []byte {
	orig := max(ci.Length, len(data))
	ts := uint64(ci.Timestamp.UnixNano())
	iface := uint32(0)
	if ci.InterfaceIndex > 0 && ci.InterfaceIndex < w.points {
		iface = uint32(ci.InterfaceIndex)
	}
	b = le.AppendUint32(b, blockEPB)
	b = le.AppendUint32(b, total)
	b = le.AppendUint32(b, iface)
	b = le.AppendUint32(b, uint32(ts>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(orig))
	b = append(b, data...)
	return append(b, zeros[:pad4(len(data))]...)
}

// Flush writes buffered packets to the underlying writer.
func (w *Writer) Flush() error {
	return w.w.Flush()
}
