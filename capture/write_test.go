package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestWriterLayout writes packets of every length modulo 4 with comments
// of every length modulo 4, then walks the bytes block by block as the
// pcapng specification lays them out: each block a multiple of 4 with its
// length at both ends, the packet padded with zeros, the comment option
// with its exact length, its value padded with zeros, then the end of
// options. gopacket's reader then gives back each packet and comment.
func TestWriterLayout(t *testing.T) {
	type pkt struct {
		data    []byte
		comment string
		asBytes bool // written with WritePacketComment
	}
	var pkts []pkt
	for dl := 1; dl <= 8; dl++ {
		for cl := 0; cl <= 9; cl++ {
			data := bytes.Repeat([]byte{0xee}, dl)
			comment := strings.Repeat("c", cl)
			pkts = append(pkts, pkt{data, comment, (dl+cl)%2 == 0})
		}
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 123456789)
	for i, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i)), CaptureLength: len(p.data), Length: len(p.data)}
		if p.asBytes {
			err = w.WritePacketComment(ci, p.data, []byte(p.comment))
		} else {
			err = w.WritePacket(ci, p.data, p.comment)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}

	b := buf.Bytes()
	u32 := binary.LittleEndian.Uint32
	u16 := binary.LittleEndian.Uint16
	var epbs int
	for off := 0; off < len(b); {
		if len(b)-off < 12 {
			t.Fatalf("offset %d: %d bytes left, less than a block", off, len(b)-off)
		}
		typ, n := u32(b[off:]), int(u32(b[off+4:]))
		if n%4 != 0 || n < 12 || off+n > len(b) {
			t.Fatalf("offset %d: block of type %#x has length %d (%d bytes left)", off, typ, n, len(b)-off)
		}
		if end := int(u32(b[off+n-4:])); end != n {
			t.Fatalf("offset %d: block length %d at its start, %d at its end", off, n, end)
		}
		if typ == blockEPB {
			p := pkts[epbs]
			epbs++
			blk := b[off : off+n]
			caplen := int(u32(blk[20:]))
			if caplen != len(p.data) || !bytes.Equal(blk[28:28+caplen], p.data) {
				t.Fatalf("packet %d: capture length %d, data %x; want %x", epbs, caplen, blk[28:28+caplen], p.data)
			}
			opt := 28 + caplen + pad4(caplen)
			if pad := blk[28+caplen : opt]; !bytes.Equal(pad, make([]byte, len(pad))) {
				t.Fatalf("packet %d: data padding %x, want zeros", epbs, pad)
			}
			wantLen := 28 + len(p.data) + pad4(len(p.data)) + 4
			if p.comment != "" {
				code, cl := u16(blk[opt:]), int(u16(blk[opt+2:]))
				if code != optComment || cl != len(p.comment) || string(blk[opt+4:opt+4+cl]) != p.comment {
					t.Fatalf("packet %d: option %d of %d bytes %q, want comment %q", epbs, code, cl, blk[opt+4:opt+4+cl], p.comment)
				}
				end := opt + 4 + cl + pad4(cl)
				if pad := blk[opt+4+cl : end]; !bytes.Equal(pad, make([]byte, len(pad))) {
					t.Fatalf("packet %d: comment padding %x, want zeros", epbs, pad)
				}
				if eoo := blk[end : end+4]; !bytes.Equal(eoo, []byte{0, 0, 0, 0}) {
					t.Fatalf("packet %d: %x after the comment, want the end of options", epbs, eoo)
				}
				wantLen += 4 + cl + pad4(cl) + 4
			}
			if n != wantLen {
				t.Fatalf("packet %d (%d bytes, comment of %d): block of %d bytes, want %d", epbs, len(p.data), len(p.comment), n, wantLen)
			}
		}
		off += n
	}
	if epbs != len(pkts) {
		t.Fatalf("%d packet blocks, want %d", epbs, len(pkts))
	}

	r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.NgReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		var comment string
		if len(opts.Comments) > 0 {
			comment = opts.Comments[0]
		}
		if !bytes.Equal(data, p.data) || comment != p.comment || !ci.Timestamp.Equal(t0.Add(time.Duration(i))) {
			t.Fatalf("packet %d read back as %x %q at %v; want %x %q", i+1, data, comment, ci.Timestamp, p.data, p.comment)
		}
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Fatalf("after the last packet: %v, want io.EOF", err)
	}
}

// TestWriteAnnotated: WriteAnnotated writes the bytes WritePacketComment
// writes with AppendComment's comment (none for a frame without TCP), for
// frames of every length modulo 4, empty, larger than the writer's buffer
// and beyond the snap length, on both interfaces of a two-point file.
func TestWriteAnnotated(t *testing.T) {
	pkts := randomPackets(3000)
	for i := range pkts {
		p := &pkts[i]
		n := i % 200
		switch i % 500 {
		case 7:
			n = 300 << 10 // beyond the buffer and the snap length
		case 8:
			n = 0
		}
		p.Data = bytes.Repeat([]byte{byte(i)}, n)
		p.Info = gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*1001), CaptureLength: n, Length: n + i%3, InterfaceIndex: i % 3}
		p.TCP = i%5 != 0
	}
	points := []Point{{Name: "a", Link: layers.LinkTypeEthernet}, {Name: "b", Link: layers.LinkTypeEthernet}}
	var got, want bytes.Buffer
	gw, err := NewWriterPoints(&got, points)
	if err != nil {
		t.Fatal(err)
	}
	ww, err := NewWriterPoints(&want, points)
	if err != nil {
		t.Fatal(err)
	}
	var comment []byte
	for i := range pkts {
		p := &pkts[i]
		if err := gw.WriteAnnotated(p); err != nil {
			t.Fatal(err)
		}
		comment = comment[:0]
		if p.TCP {
			comment = AppendComment(comment, p)
		}
		if err := ww.WritePacketComment(p.Info, p.Data, comment); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			// Compare as it goes, so that a difference is found near its packet.
			if err := errors.Join(gw.Flush(), ww.Flush()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("after packet %d: WriteAnnotated wrote other bytes than WritePacketComment", i)
			}
		}
	}
	if err := errors.Join(gw.Flush(), ww.Flush()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		n := 0
		for n < min(got.Len(), want.Len()) && got.Bytes()[n] == want.Bytes()[n] {
			n++
		}
		t.Fatalf("WriteAnnotated wrote %d bytes, WritePacketComment %d; first difference at byte %d", got.Len(), want.Len(), n)
	}
}
