package capgen

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The TCP flags, in header bit order.
const (
	fin = 1 << iota
	syn
	rst
	psh
	ack
)

// Epoch is the capture time of the first frame of every capture made here.
var Epoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// Bulk describes the capture WriteBulk makes: Concurrent connections open
// at any time, each a handshake, then either a bulk transfer (two
// 1448-byte segments and an ACK per step, every LossEvery steps a lost
// segment with two duplicate ACKs and a fast retransmission) or
// request/response exchanges (100 bytes, 300 bytes, an ACK), then a FIN
// teardown. Frames are cut at a snap length of 96 bytes: headers only, as
// a capture for TCP analysis is usually taken.
type Bulk struct {
	Packets    int // at least this many frames
	Concurrent int // 0: 2000
	// Steps is the length of a request/response connection in steps; a
	// bulk connection takes twice as many. 0: 30.
	Steps int
	// LossEvery is how many steps of a bulk transfer pass between losses;
	// 0: 20.
	LossEvery int
}

// Snaplen is the snap length of WriteBulk's captures.
const Snaplen = 96

func (b Bulk) withDefaults() Bulk {
	if b.Concurrent == 0 {
		b.Concurrent = 2000
	}
	if b.Steps == 0 {
		b.Steps = 30
	}
	if b.LossEvery == 0 {
		b.LossEvery = 20
	}
	return b
}

// frameBuilder writes Ethernet/IPv4/TCP headers with a timestamps option
// into a reused buffer.
type frameBuilder struct {
	buf [14 + 20 + 32]byte
}

func newFrameBuilder() *frameBuilder {
	b := &frameBuilder{}
	copy(b.buf[0:], []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := b.buf[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	tcp := b.buf[34:]
	tcp[12] = 8 << 4 // 32-byte header
	copy(tcp[20:], []byte{1, 1, 8, 10})
	return b
}

// frame returns the headers of a segment and the length of the whole
// frame on the wire.
func (b *frameBuilder) frame(src, dst netip.AddrPort, flags byte, seq, ackn uint32, win uint16, n int, tsval uint32) ([]byte, int) {
	ip, tcp := b.buf[14:34], b.buf[34:]
	binary.BigEndian.PutUint16(ip[2:], uint16(20+32+n))
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ackn)
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], win)
	binary.BigEndian.PutUint32(tcp[24:], tsval)
	binary.BigEndian.PutUint32(tcp[28:], tsval-1)
	return b.buf[:], len(b.buf) + n
}

// ipChecksum returns the checksum of an IPv4 header whose checksum field
// is zero.
func ipChecksum(ip []byte) uint16 {
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// bulkConn is one connection of the generator.
type bulkConn struct {
	cli, srv   netip.AddrPort
	cseq, sseq uint32 // next seq of client and server
	bulk       bool
	step, left int
}

// WriteBulk writes the capture b describes to path, as pcap.
func WriteBulk(path string, b Bulk) error {
	b = b.withDefaults()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(Snaplen, layers.LinkTypeEthernet); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fb := newFrameBuilder()
	now := Epoch
	written := 0
	var werr error
	emit := func(src, dst netip.AddrPort, flags byte, seq, ackn uint32, n int) {
		now = now.Add(time.Microsecond)
		hdr, wire := fb.frame(src, dst, flags, seq, ackn, 1024, n, uint32(now.UnixMilli()))
		captured := min(wire, Snaplen)
		if captured > len(hdr) {
			// Payload bytes within the snap length: zeros.
			hdr = append(hdr[:len(hdr):len(hdr)], make([]byte, captured-len(hdr))...)
		}
		ci := gopacket.CaptureInfo{Timestamp: now, CaptureLength: captured, Length: wire}
		if err := w.WritePacket(ci, hdr[:captured]); err != nil && werr == nil {
			werr = err
		}
		written++
	}
	serial := 0
	newConn := func() *bulkConn {
		serial++
		// 200 client addresses × 20000 ports: no 4-tuple is reused.
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(serial / 20000 / 256), byte(serial / 20000)}), uint16(30000+serial%20000))
		srv := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, 0, byte(serial % 16)}), 443)
		c := &bulkConn{cli: cli, srv: srv, cseq: uint32(serial) * 2654435761, sseq: uint32(serial) * 40503 << 8, bulk: serial%2 == 0}
		c.left = b.Steps
		if c.bulk {
			c.left = 2 * b.Steps
		}
		return c
	}
	conns := make([]*bulkConn, b.Concurrent)
	for i := range conns {
		conns[i] = newConn()
	}
	for written < b.Packets && werr == nil {
		for i, c := range conns {
			switch {
			case c.step == 0:
				emit(c.cli, c.srv, syn, c.cseq, 0, 0)
				emit(c.srv, c.cli, syn|ack, c.sseq, c.cseq+1, 0)
				c.cseq++
				c.sseq++
				emit(c.cli, c.srv, ack, c.cseq, c.sseq, 0)
			case c.left == 0:
				emit(c.cli, c.srv, fin|ack, c.cseq, c.sseq, 0)
				emit(c.srv, c.cli, ack, c.sseq, c.cseq+1, 0)
				emit(c.srv, c.cli, fin|ack, c.sseq, c.cseq+1, 0)
				emit(c.cli, c.srv, ack, c.cseq+1, c.sseq+1, 0)
				conns[i] = newConn()
				continue
			case c.bulk && c.step%b.LossEvery == 3%b.LossEvery:
				// The first of three segments is lost before the
				// capture point: two duplicate ACKs, a fast retransmit.
				lost := c.sseq
				emit(c.srv, c.cli, ack, lost+1448, c.cseq, 1448)
				emit(c.cli, c.srv, ack, c.cseq, lost, 0)
				emit(c.srv, c.cli, ack, lost+2*1448, c.cseq, 1448)
				emit(c.cli, c.srv, ack, c.cseq, lost, 0)
				emit(c.srv, c.cli, ack, lost, c.cseq, 1448)
				c.sseq += 3 * 1448
				emit(c.cli, c.srv, ack, c.cseq, c.sseq, 0)
			case c.bulk:
				emit(c.srv, c.cli, ack, c.sseq, c.cseq, 1448)
				emit(c.srv, c.cli, psh|ack, c.sseq+1448, c.cseq, 1448)
				c.sseq += 2 * 1448
				emit(c.cli, c.srv, ack, c.cseq, c.sseq, 0)
			default:
				emit(c.cli, c.srv, psh|ack, c.cseq, c.sseq, 100)
				c.cseq += 100
				emit(c.srv, c.cli, psh|ack, c.sseq, c.cseq, 300)
				c.sseq += 300
				emit(c.cli, c.srv, ack, c.cseq, c.sseq, 0)
			}
			c.step++
			c.left--
		}
	}
	if werr != nil {
		return fmt.Errorf("write %s: %w", path, werr)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
