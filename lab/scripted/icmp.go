package scripted

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ICMP is an error message about one of the kernel's segments on a
// connection, as a router on its path sends one: ICMP for IPv4, ICMPv6
// for IPv6 (the connection's family decides, Type and Code are that
// protocol's numbers). It quotes the segment's IP header and first 8
// bytes of TCP header (ports and sequence number), which is all the
// kernel reads to find the socket and check that the segment is one it
// has not seen acknowledged.
type ICMP struct {
	Type, Code uint8
	// MTU is the next hop's MTU, in the header's second word:
	// Fragmentation Needed's 16 bits (type 3, code 4) or Packet Too
	// Big's 32 (ICMPv6 type 2). Zero leaves the word zero.
	MTU uint32
	// Seq is the quoted segment's sequence number, relative to the
	// kernel's initial one.
	Seq uint32
	// Len is the quoted segment's payload length: the quoted IP
	// header's total length counts it (with a 20-byte TCP header), and
	// that many zero bytes follow the 8 quoted bytes of TCP header, as
	// packetdrill lays its ICMP messages out.
	Len int
}

// The ICMP types and codes scenarios use most.
const (
	ICMPv4Unreachable  = 3 // Destination Unreachable
	ICMPv4FragNeeded   = 4 // its code: Fragmentation Needed and DF set
	ICMPv6PacketTooBig = 2
)

// String describes m as a capture's comment does.
func (m ICMP) String() string {
	s := fmt.Sprintf("icmp type %d code %d", m.Type, m.Code)
	if m.MTU != 0 {
		s += fmt.Sprintf(" mtu %d", m.MTU)
	}
	return s + fmt.Sprintf(" [%d:%d(%d)]", m.Seq, m.Seq+uint32(m.Len), m.Len)
}

// SendICMP sends m to the kernel about the connection's segment m.Seq.
// It fails when the kernel sent something on the connection that no
// expectation took, or before the kernel's initial sequence number is
// known.
func (c *Conn) SendICMP(t TB, m ICMP) {
	t.Helper()
	if _, err := c.TrySendICMP(m); err != nil {
		t.Fatalf("%v", err)
	}
}

// TrySendICMP is SendICMP returning its error, and when the kernel took
// the message in.
func (c *Conn) TrySendICMP(m ICMP) (time.Time, error) {
	step := c.p.nextStep()
	if err := c.clear(step, m.String()); err != nil {
		var mm *Mismatch
		if errors.As(err, &mm) {
			return time.Time{}, err
		}
		return time.Time{}, fmt.Errorf("step %d: send %v: %w", step, m, err)
	}
	if !c.synced || c.remote == 0 {
		return time.Time{}, fmt.Errorf("step %d: send %v: the quoted segment's connection is not known yet: expect the kernel's SYN or SYN/ACK first", step, m)
	}
	limit := 0
	if c.p.cfg.Veth {
		// A veth pair forwards no frame longer than its MTU, where a
		// TUN device takes any: the quoted payload, which the kernel
		// does not read, is cut to fit.
		limit = c.p.cfg.MTU
	}
	b, err := icmpFrame(c.AddrPort(), c.KernelAddrPort(), c.irs+m.Seq, m, c.p.ipID, limit)
	if err != nil {
		return time.Time{}, fmt.Errorf("step %d: %w", step, err)
	}
	c.p.ipID++
	note := ""
	if cut := icmpLen(c.AddrPort().Addr().Is4(), m.Len) - len(b); cut > 0 {
		note = fmt.Sprintf(" (quoted payload cut by %d bytes to the device's MTU)", cut)
	}
	at, err := c.p.write(b, fmt.Sprintf("scripted: step %d: %v%s", step, m, note))
	if err != nil {
		return time.Time{}, fmt.Errorf("step %d: send %v: %w", step, m, err)
	}
	c.anchor, c.sentAt = at, at
	return at, nil
}

// clear is what every send begins with: the peer has not failed, and
// the kernel sent nothing on the connection that no expectation took
// (unless the peer queues them: it leaves the kernel's segments for the
// next expectation).
func (c *Conn) clear(step int, what string) error {
	if err := c.p.err(); err != nil {
		return err
	}
	c.p.settle()
	if c.p.cfg.Queue {
		return nil
	}
	if f, seen, ok := c.take(time.Now()); ok {
		c.p.record(f.at, f.data, fmt.Sprintf("unexpected: before step %d", step))
		return &Mismatch{Step: step, Want: "nothing before the script sends " + what, Got: c.line(f), Seen: c.lines(append(seen, f))}
	}
	return nil
}

// maxQuoted is the longest quoted payload: an IPv4 packet of 65535
// bytes holds 56 bytes of headers besides it (an IPv6 payload too).
const maxQuoted = 65535 - 56

// icmpLen is the length of an ICMP message's frame that quotes n bytes
// of payload.
func icmpLen(v4 bool, n int) int {
	if v4 {
		return 56 + n
	}
	return 96 + n
}

// icmpFrame builds the IP frame of m from peer to kernel, quoting the
// kernel's segment from kernel to peer with sequence number seq. A limit
// above 0 cuts the quoted payload so that the frame is no longer (the
// quoted header's length still counts all of it).
func icmpFrame(peer, kernel netip.AddrPort, seq uint32, m ICMP, id uint16, limit int) ([]byte, error) {
	// The message's IP header, ICMP header, quoted IP header and 8
	// bytes of TCP: at most 56 bytes besides the quoted payload.
	if m.Len < 0 || m.Len > maxQuoted {
		return nil, fmt.Errorf("icmp: quoted length %d: want 0 to %d", m.Len, maxQuoted)
	}
	v4 := peer.Addr().Is4() && kernel.Addr().Is4()
	if !v4 && !(peer.Addr().Is6() && kernel.Addr().Is6()) {
		return nil, fmt.Errorf("icmp: %v and %v are of two families", peer, kernel)
	}
	if v4 && m.MTU > 0xffff {
		return nil, fmt.Errorf("icmp: MTU %d does not fit ICMP's 16 bits", m.MTU)
	}
	// The quoted segment: its IP header, its ports and sequence
	// number, and Len zero bytes.
	quoted := ipHeader(v4, kernel.Addr(), peer.Addr(), 6, 20+m.Len, 0, 0)
	quoted = binary.BigEndian.AppendUint16(quoted, kernel.Port())
	quoted = binary.BigEndian.AppendUint16(quoted, peer.Port())
	quoted = binary.BigEndian.AppendUint32(quoted, seq)
	n := m.Len
	if limit > 0 {
		n = max(0, min(n, limit-icmpLen(v4, 0)))
	}
	quoted = append(quoted, make([]byte, n)...)

	msg := []byte{m.Type, m.Code, 0, 0, 0, 0, 0, 0}
	if v4 {
		binary.BigEndian.PutUint16(msg[6:], uint16(m.MTU))
	} else {
		binary.BigEndian.PutUint32(msg[4:], m.MTU)
	}
	msg = append(msg, quoted...)
	proto := uint8(1)
	sum := uint32(0)
	if !v4 {
		proto = 58
		// ICMPv6's checksum covers a pseudo header (RFC 8200 8.1).
		sum = onesSum(peer.Addr().AsSlice()) + onesSum(kernel.Addr().AsSlice()) + uint32(len(msg)) + 58
	}
	binary.BigEndian.PutUint16(msg[2:], ^fold(sum+onesSum(msg)))

	return append(ipHeader(v4, peer.Addr(), kernel.Addr(), proto, len(msg), 64, id), msg...), nil
}

// ipHeader is an IP header from src to dst for payload bytes of proto,
// its checksum computed (IPv4); a hop limit of 0 is left 0, as in a
// quoted header.
func ipHeader(v4 bool, src, dst netip.Addr, proto uint8, payload int, ttl uint8, id uint16) []byte {
	if !v4 {
		h := make([]byte, 40)
		h[0] = 6 << 4
		binary.BigEndian.PutUint16(h[4:], uint16(payload))
		h[6], h[7] = proto, ttl
		copy(h[8:], src.AsSlice())
		copy(h[24:], dst.AsSlice())
		return h
	}
	h := make([]byte, 20)
	h[0] = 4<<4 | 5
	binary.BigEndian.PutUint16(h[2:], uint16(20+payload))
	binary.BigEndian.PutUint16(h[4:], id)
	h[8], h[9] = ttl, proto
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	binary.BigEndian.PutUint16(h[10:], ^fold(onesSum(h)))
	return h
}
