package capture

import (
	"bytes"
	"net/netip"
	"slices"
	"time"
)

// IP fragment reassembly, as Wireshark does it with ip.defragment and
// ipv6.defragment on (their defaults): the TCP segment of a fragmented
// datagram belongs to the frame whose fragment completes the datagram.
//
// Fragments are kept per datagram, sorted by offset (a fragment goes after
// those of the same offset that came before it), and the datagram is built
// when they cover it from byte 0 to the end the last fragment (more
// fragments clear) gives. Where fragments overlap, the bytes of the one
// that comes first in that order win: the lowest offset, then the earliest
// to arrive, as in Wireshark's reassemble.c. Overlapping bytes that
// differ, a second last fragment that ends elsewhere, or bytes past the
// end make the datagram's segment a FragmentOverlap; an exact duplicate
// does not. Unlike Wireshark, tcplab bounds what it holds (see the limits
// below) and drops a datagram that stays incomplete too long or would be
// longer than 65535 bytes.

// Reassembly limits. Wireshark keeps every incomplete datagram for the
// whole file; tcplab keeps at most maxDatagrams of them in at most
// maxFragmentBytes (64 datagrams of the largest size), evicting the oldest
// first, and drops one whose first fragment is older (in capture time) than
// its family's timeout: Linux's ipfrag_time for IPv4, RFC 8200's 60
// seconds for IPv6.
const (
	maxDatagrams      = 64
	maxFragmentBytes  = 4 << 20
	maxPieces         = 2048 // fragments held for one datagram: 65535 bytes at IPv4's smallest MTU takes 1366
	pieceOverhead     = 16   // bytes a held fragment counts for beyond its data
	fragTimeout4      = 30 * time.Second
	fragTimeout6      = 60 * time.Second
	maxDatagramLength = 65535 // an IP datagram's largest size, header included
)

// fragKey says which datagram a fragment belongs to: RFC 791's source,
// destination, protocol and identification for IPv4, RFC 8200's source,
// destination and identification for IPv6 (the address family tells them
// apart). Like Wireshark, tcplab adds the VLAN ID of the frame's innermost
// tag to an IPv4 key when an address is private or link-local, where two
// VLANs may reuse the same addresses. Tunnels and outer addresses are not
// part of the key, as in Wireshark.
type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8 // IPv4 only
	vlan     uint16
}

// piece is one fragment held: its place in the datagram and where its
// bytes are in the datagram's buffer.
type piece struct {
	off, n, at int
}

// datagram is a datagram in progress.
type datagram struct {
	key      fragKey
	first    time.Time     // capture time of its first fragment
	timeout  time.Duration // how long it may take to complete
	end      int           // length of its data, from the last fragment; -1 until that comes
	pieces   []piece       // sorted by offset, in arrival order among equal offsets
	buf      []byte        // the fragments' bytes, in arrival order
	conflict bool          // fragments disagree (see FragmentOverlap)
	held     int           // bytes counted against maxFragmentBytes
}

// reassembler holds the datagrams in progress of one Decoder.
type reassembler struct {
	dgs  []*datagram // in progress, oldest first
	held int         // bytes held by dgs, overhead included
	free []*datagram // finished datagrams, for reuse

	// outs are the buffers completed datagrams are built in; the first
	// lent of them are in use by the frame being decoded (one per IP
	// level whose datagram that frame completes).
	outs [][]byte
	lent int
}

// newFrame makes the buffers of the previous frame's datagrams free again.
func (r *reassembler) newFrame() { r.lent = 0 }

// fragment is one IP fragment handed to the reassembler.
type fragment struct {
	key     fragKey
	now     time.Time     // capture time of the frame
	timeout time.Duration // for a datagram it starts
	off     int           // byte offset of data in the datagram
	data    []byte
	more    bool // more fragments follow
	limit   int  // the largest end of data that keeps the datagram within 65535 bytes
}

// add adds f to its datagram. When f completes the datagram, add returns
// the datagram's data, valid until the next frame, and whether its
// fragments disagreed; otherwise ok is false and f is held (or dropped,
// with its datagram, for breaking a limit).
func (r *reassembler) add(f fragment) (data []byte, conflict, ok bool) {
	r.expire(f.now)
	i := r.find(f.key)
	end := f.off + len(f.data)
	if end > f.limit {
		if i >= 0 {
			r.drop(i)
		}
		return nil, false, false
	}
	if i < 0 {
		if len(r.dgs) == maxDatagrams {
			r.drop(0)
		}
		i = r.start(f)
	}
	dg := r.dgs[i]
	if len(dg.pieces) == maxPieces {
		r.drop(i)
		return nil, false, false
	}
	cost := len(f.data) + pieceOverhead
	for r.held+cost > maxFragmentBytes {
		if r.dgs[0] == dg {
			r.drop(0)
			return nil, false, false
		}
		r.drop(0)
	}
	i = slices.Index(r.dgs, dg) // evictions moved it
	if !f.more {
		switch {
		case dg.end < 0:
			dg.end = end
		case dg.end != end:
			// Another last fragment: keep the first one's length.
			dg.conflict = true
		}
	}
	dg.held += cost
	r.held += cost
	p := piece{off: f.off, n: len(f.data), at: len(dg.buf)}
	dg.buf = append(dg.buf, f.data...)
	j := len(dg.pieces)
	for j > 0 && dg.pieces[j-1].off > p.off {
		j--
	}
	dg.pieces = append(dg.pieces, piece{})
	copy(dg.pieces[j+1:], dg.pieces[j:])
	dg.pieces[j] = p
	if dg.end < 0 || !dg.covered() {
		return nil, false, false
	}
	data, conflict = r.build(dg)
	r.finish(i)
	return data, conflict, true
}

// find returns the index of the datagram with key k, or -1.
func (r *reassembler) find(k fragKey) int {
	for i, dg := range r.dgs {
		if dg.key == k {
			return i
		}
	}
	return -1
}

// start begins a datagram for f and returns its index.
func (r *reassembler) start(f fragment) int {
	var dg *datagram
	if n := len(r.free); n > 0 {
		dg, r.free = r.free[n-1], r.free[:n-1]
	} else {
		dg = new(datagram)
	}
	dg.key, dg.first, dg.timeout, dg.end, dg.conflict, dg.held = f.key, f.now, f.timeout, -1, false, 0
	dg.pieces, dg.buf = dg.pieces[:0], dg.buf[:0]
	r.dgs = append(r.dgs, dg)
	return len(r.dgs) - 1
}

// expire drops the datagrams that took longer than their timeout. Capture
// time may go backwards; a datagram is only dropped once now is past its
// first fragment's time by more than the timeout.
func (r *reassembler) expire(now time.Time) {
	for i := 0; i < len(r.dgs); {
		if dg := r.dgs[i]; now.Sub(dg.first) > dg.timeout {
			r.drop(i)
			continue
		}
		i++
	}
}

// drop forgets the datagram at index i, incomplete.
func (r *reassembler) drop(i int) { r.finish(i) }

// What the reassembler keeps of finished datagrams for reuse: up to
// maxFree of them, each with a buffer of at most maxFreeBuffer bytes
// (a datagram of the largest size and some duplicates).
const (
	maxFree       = 8
	maxFreeBuffer = 2 * maxDatagramLength
)

// finish removes the datagram at index i and keeps it for reuse.
func (r *reassembler) finish(i int) {
	dg := r.dgs[i]
	r.held -= dg.held
	r.dgs = slices.Delete(r.dgs, i, i+1)
	if cap(dg.buf) > maxFreeBuffer {
		dg.buf = nil
	}
	if len(r.free) < maxFree {
		r.free = append(r.free, dg)
	}
}

// covered reports whether the pieces cover the datagram from 0 to its end.
func (dg *datagram) covered() bool {
	reach := 0
	for _, p := range dg.pieces {
		if p.off > reach {
			break
		}
		reach = max(reach, p.off+p.n)
	}
	return reach >= dg.end
}

// build lays the pieces of a covered datagram out in a buffer, lowest
// offset first, and reports whether overlapping pieces disagree.
func (r *reassembler) build(dg *datagram) ([]byte, bool) {
	if r.lent == len(r.outs) {
		r.outs = append(r.outs, make([]byte, maxDatagramLength))
	}
	out := r.outs[r.lent][:dg.end:dg.end]
	r.lent++
	conflict := dg.conflict
	pos := 0 // bytes of out filled
	for _, p := range dg.pieces {
		b := dg.buf[p.at : p.at+p.n]
		if p.off+p.n > dg.end {
			// Past the end the first last fragment gave.
			conflict = true
			b = b[:max(dg.end-p.off, 0)]
		}
		if p.off > pos {
			break // cannot happen: the pieces cover out
		}
		// The part already filled must agree; the rest is new.
		seen := min(pos-p.off, len(b))
		if !bytes.Equal(out[p.off:p.off+seen], b[:seen]) {
			conflict = true
		}
		pos += copy(out[pos:], b[seen:])
	}
	return out, conflict
}
