package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxPacket is the longest packet a capture file may hold: tshark's
// per-packet bound for the link types tcplab reads
// (WTAP_MAX_PACKET_SIZE_STANDARD), which is libpcap's largest snap length
// too. A record that claims more is refused before anything is allocated
// for it.
const MaxPacket = 262144

// maxBlock bounds any pcapng block: a packet of MaxPacket with room for
// many comments, or a name resolution or decryption secrets block far
// larger than captures hold. A file's remaining size bounds blocks too,
// but a sparse or compressed file's size says nothing of its contents.
const maxBlock = 16 << 20

// maxRead bounds the bytes one read of a packet may take from a file,
// whatever blocks come before the packet: what a pcapng reader that
// trusts a length inside a block can allocate.
const maxRead = 2 * maxBlock

// ErrBadRecord is wrapped by the error of a record or block whose lengths
// cannot be right: longer than any packet or block, or than what holds it.
var ErrBadRecord = errors.New("bad record")

// More pcapng block types whose lengths the framer checks (write.go has
// the others).
const (
	blockOPB = 0x00000002 // the obsolete packet block
	blockSPB = 0x00000003
	blockDSB = 0x0000000a
)

// framer sits between a capture stream and gopacket's readers and checks
// the lengths of each pcap record or pcapng block before it hands on its
// header: a length the reader would allocate (a packet's capture length,
// a decryption secret's) must fit in its record, in the file's remaining
// bytes, and under MaxPacket or maxBlock. It hands on the bytes as they
// are; at a bad length the stream ends with an error wrapping
// ErrBadRecord, or ErrTruncated when the file ends inside the record, and
// the records before it have been read.
type framer struct {
	r     io.Reader
	ng    bool
	left  int64 // bytes of the stream not read yet; -1: unknown (a compressed file)
	order binary.ByteOrder
	snap0 uint32 // snap length of the section's first interface (pcapng simple packets)
	nIDB  int    // interfaces in the section so far

	hdr    [28]byte
	pend   []byte // checked header bytes not handed on yet
	body   int64  // bytes of the current record to hand on after pend
	n      int    // records (pcap) or blocks (pcapng) begun
	begun  bool   // the pcap file header was handed on
	budget int64  // bytes left for the current packet read (see maxRead)
	err    error  // the error that ends the stream, handed on after its bytes
}

// newFramer checks the pcap (ng false) or pcapng stream r, which has size
// bytes (-1: unknown).
func newFramer(r io.Reader, ng bool, size int64) *framer {
	return &framer{r: r, ng: ng, left: size, order: binary.LittleEndian, budget: maxRead}
}

// nextPacket starts the budget of a packet read.
func (f *framer) nextPacket() { f.budget = maxRead }

func (f *framer) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case len(f.pend) > 0:
			k := copy(p[n:], f.pend)
			f.pend = f.pend[k:]
			n += k
		case f.body > 0:
			q := p[n:]
			if int64(len(q)) > f.body {
				q = q[:f.body]
			}
			k, err := f.r.Read(q)
			f.consumed(k)
			f.body -= int64(k)
			n += k
			if err != nil {
				f.err = err
			}
			if err != nil || k < len(q) {
				return f.hand(n)
			}
		case f.err != nil:
			return f.hand(n)
		default:
			f.err = f.next()
		}
	}
	return f.hand(n)
}

// hand returns n bytes read, or the stream's error when there are none,
// and charges them to the budget.
func (f *framer) hand(n int) (int, error) {
	if n == 0 && f.err != nil {
		return 0, f.err
	}
	f.budget -= int64(n)
	if f.budget < 0 && f.err == nil {
		f.err = fmt.Errorf("%w: one packet's read went past %d bytes: the reader lost its place in a damaged block", ErrBadRecord, maxRead)
	}
	return n, nil
}

func (f *framer) consumed(k int) {
	if f.left >= 0 {
		f.left -= int64(k)
	}
}

// read reads the next k header bytes into hdr[from:], queueing what it
// got to be handed on; a stream that ends inside them ends there, and one
// whose reader fails (a decompressor's io.ErrUnexpectedEOF) says so.
func (f *framer) read(from, k int) error {
	m, err := io.ReadFull(f.r, f.hdr[from:from+k])
	f.consumed(m)
	f.pend = f.hdr[:from+m]
	if err == io.ErrUnexpectedEOF && m > 0 || err == io.EOF && from > 0 {
		// The reader above finds the record cut short.
		return io.EOF
	}
	return err
}

// next reads and checks the header of the next record, and queues it to
// be handed on; a header that fails is not handed on, so the reader above
// gets the error in its place.
func (f *framer) next() error {
	err := f.header()
	if err != nil && err != io.EOF {
		f.pend = nil
	}
	return err
}

// header reads and checks the header of the next record.
func (f *framer) header() error {
	if !f.ng {
		if !f.begun {
			f.begun = true
			if err := f.read(0, 24); err != nil {
				return err
			}
			if binary.LittleEndian.Uint32(f.hdr[:4]) != magicMicro && binary.LittleEndian.Uint32(f.hdr[:4]) != magicNano {
				f.order = binary.BigEndian
			}
			return nil
		}
		if err := f.read(0, 16); err != nil {
			return err
		}
		f.n++
		caplen := int64(f.order.Uint32(f.hdr[8:12]))
		if err := f.fits("record", caplen, 0); err != nil {
			return err
		}
		if caplen > MaxPacket {
			return fmt.Errorf("%w: record %d claims %d bytes, more than any packet holds (%d): the file is damaged", ErrBadRecord, f.n, caplen, MaxPacket)
		}
		f.body = caplen
		return nil
	}
	if err := f.read(0, 8); err != nil {
		return err
	}
	f.n++
	typ := binary.LittleEndian.Uint32(f.hdr[:4]) // a palindrome for the SHB
	got := 8
	if typ == blockSHB {
		if err := f.read(8, 4); err != nil {
			return err
		}
		got = 12
		f.order = binary.LittleEndian
		if binary.BigEndian.Uint32(f.hdr[8:12]) == byteOrderMagic {
			f.order = binary.BigEndian
		}
		f.nIDB, f.snap0 = 0, 0
	}
	length := int64(f.order.Uint32(f.hdr[4:8]))
	if length < 12 || length%4 != 0 || length < int64(got) {
		return fmt.Errorf("%w: block %d has length %d; a pcapng block is at least 12 bytes, in multiples of 4: the file is damaged", ErrBadRecord, f.n, length)
	}
	if err := f.fits("block", length, int64(got)); err != nil {
		return err
	}
	if length > maxBlock {
		return fmt.Errorf("%w: block %d claims %d bytes, more than tcplab reads in a block (%d): the file is damaged", ErrBadRecord, f.n, length, maxBlock)
	}
	// The fixed fields that say how much the reader will take.
	want := fixedFields(typ)
	if want > got {
		if length < int64(want)+4 {
			return fmt.Errorf("%w: block %d (type %d) has length %d, too short for its fields: the file is damaged", ErrBadRecord, f.n, typ, length)
		}
		if err := f.read(got, want-got); err != nil {
			return err
		}
		got = want
	}
	room := length - int64(want) - 4 // after the fixed fields, before the closing length
	var claim int64
	switch typ {
	case blockEPB, blockOPB:
		claim = int64(f.order.Uint32(f.hdr[20:24]))
	case blockSPB:
		claim = int64(f.order.Uint32(f.hdr[8:12]))
		if f.snap0 != 0 {
			claim = min(claim, int64(f.snap0))
		}
	case blockDSB:
		claim = int64(f.order.Uint32(f.hdr[12:16]))
	case blockIDB:
		if f.nIDB == 0 {
			f.snap0 = f.order.Uint32(f.hdr[12:16])
		}
		f.nIDB++
	}
	switch {
	case claim > room:
		return fmt.Errorf("%w: block %d's contents claim %d bytes; the block holds %d: the file is damaged", ErrBadRecord, f.n, claim, room)
	case typ != blockDSB && claim > MaxPacket:
		return fmt.Errorf("%w: block %d claims a packet of %d bytes, more than any packet holds (%d): the file is damaged", ErrBadRecord, f.n, claim, MaxPacket)
	}
	f.body = length - int64(got)
	return nil
}

// fits checks that a record of claim bytes, of which got were read,
// fits in the rest of the stream, when its size is known.
func (f *framer) fits(what string, claim, got int64) error {
	if f.left >= 0 && claim-got > f.left {
		return fmt.Errorf("%w: %s %d claims %d bytes; the file has %d left", ErrTruncated, what, f.n, claim, f.left+got)
	}
	return nil
}

// fixedFields returns how many bytes of a block of type typ, from its
// start, hold the fields the framer checks: a packet's length, a
// secret's, an interface's snap length.
func fixedFields(typ uint32) int {
	switch typ {
	case blockEPB, blockOPB:
		return 28
	case blockDSB, blockIDB:
		return 16
	case blockSPB:
		return 12
	}
	return 0
}
