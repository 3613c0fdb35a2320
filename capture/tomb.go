package capture

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// TombLinger is how long in capture time an evicting Annotator still
// knows a connection it forgot: a segment of it within that time (a FIN
// retransmitted long after the last ACK, data sent after an injected
// RST) continues its stream with its numbering and labels, as Wireshark
// continues it, and a SYN that starts a new connection on its 4-tuple is
// labelled reused-ports. Two maximum segment lifetimes (RFC 9293 section
// 3.4.2 takes two minutes for the MSL) are the longest a segment of the
// old connection may wander.
const TombLinger = 4 * time.Minute

// MaxTombs bounds the forgotten connections an evicting Annotator still
// knows, about 200 bytes each; beyond it the oldest goes first.
const MaxTombs = 1 << 14

// tombKey is a connKey in 37 bytes: both endpoints as 16-byte addresses
// and ports, and whether the addresses are IPv4.
type tombKey [37]byte

func tombKeyOf(k connKey) tombKey {
	var t tombKey
	a, b := k.a.Addr().As16(), k.b.Addr().As16()
	copy(t[0:16], a[:])
	binary.BigEndian.PutUint16(t[16:], k.a.Port())
	copy(t[18:34], b[:])
	binary.BigEndian.PutUint16(t[34:], k.b.Port())
	if k.a.Addr().Is4() {
		t[36] = 4
	}
	return t
}

// tombHalf is the part of a half that the analysis of a later segment
// reads. The times are left out: a segment Linger late is no
// out-of-order segment nor fast retransmission.
type tombHalf struct {
	base, isn, nextSeq, maxToAck, lastAck, finSeq uint32
	window                                        uint16
	lastLabels                                    Labels
	wscale, scale                                 int8
	dupAcks                                       int8
	state                                         State
	bits                                          tombBits
}

// tombBits are a half's flags.
type tombBits uint16

const (
	tombSeen tombBits = 1 << iota
	tombBaseSet
	tombSynSeen
	tombNextSet
	tombMaxSet
	tombLastAckSet
	tombWindowSet
	tombSynWindow
	tombFinSent
	tombFinPending
)

// tomb is what an evicting Annotator keeps of a connection it forgot.
type tomb struct {
	h       [2]tombHalf
	stream  int32
	clientA bool // the client is the key's endpoint a
}

// tombSlot is a tomb in the ring that keeps them in the order they were
// made, the order they are dropped in.
type tombSlot struct {
	key  tombKey
	t    tomb
	at   int64 // capture time it was made, Unix nanoseconds
	live bool  // not taken out by unbury
}

// tombRing holds the tombs: a ring of slots, oldest at head, that grows
// up to MaxTombs, and an index by key.
type tombRing struct {
	slots   []tombSlot
	head, n int
	index   map[tombKey]uint32
}

func (h *half) bury() tombHalf {
	t := tombHalf{base: h.base, isn: h.isn, nextSeq: h.nextSeq, maxToAck: h.maxToAck, lastAck: h.lastAck, finSeq: h.finSeq,
		window: h.window, lastLabels: h.lastLabels, wscale: h.wscale, scale: h.scale, dupAcks: int8(min(max(h.dupAcks, -1), 100)), state: h.state}
	for _, f := range [...]struct {
		set bool
		bit tombBits
	}{{h.seen, tombSeen}, {h.baseSet, tombBaseSet}, {h.synSeen, tombSynSeen}, {h.nextSet, tombNextSet}, {h.maxSet, tombMaxSet},
		{h.lastAckSet, tombLastAckSet}, {h.windowSet, tombWindowSet}, {h.synWindow, tombSynWindow}, {h.finSent, tombFinSent},
		{h.finPending, tombFinPending}} {
		if f.set {
			t.bits |= f.bit
		}
	}
	return t
}

func (t *tombHalf) half() half {
	b := t.bits
	return half{base: t.base, isn: t.isn, nextSeq: t.nextSeq, maxToAck: t.maxToAck, lastAck: t.lastAck, finSeq: t.finSeq,
		window: t.window, lastLabels: t.lastLabels, wscale: t.wscale, scale: t.scale, dupAcks: int(t.dupAcks), state: t.state,
		seen: b&tombSeen != 0, baseSet: b&tombBaseSet != 0, synSeen: b&tombSynSeen != 0, nextSet: b&tombNextSet != 0,
		maxSet: b&tombMaxSet != 0, lastAckSet: b&tombLastAckSet != 0, windowSet: b&tombWindowSet != 0,
		synWindow: b&tombSynWindow != 0, finSent: b&tombFinSent != 0, finPending: b&tombFinPending != 0}
}

// bury remembers the evicted connection c in a few bytes, dropping the
// oldest tomb when MaxTombs are kept.
func (r *tombRing) bury(c *conn) {
	if r.index == nil {
		r.index = make(map[tombKey]uint32)
	}
	if r.n == MaxTombs {
		r.drop()
	}
	if r.n == len(r.slots) {
		// Grow, the oldest first again.
		grown := make([]tombSlot, min(max(2*len(r.slots), 64), MaxTombs))
		for i := range r.n {
			s := &r.slots[(r.head+i)%len(r.slots)]
			grown[i] = *s
			if s.live {
				r.index[s.key] = uint32(i)
			}
		}
		r.slots, r.head = grown, 0
	}
	k := tombKeyOf(c.key)
	if i, ok := r.index[k]; ok {
		r.slots[i].live = false
	}
	i := (r.head + r.n) % len(r.slots)
	r.slots[i] = tombSlot{key: k, at: c.lastAt.UnixNano(), live: true,
		t: tomb{h: [2]tombHalf{c.h[0].bury(), c.h[1].bury()}, stream: int32(c.stream), clientA: c.client == c.key.a}}
	r.index[k] = uint32(i)
	r.n++
}

// drop forgets the oldest tomb.
func (r *tombRing) drop() {
	s := &r.slots[r.head]
	if s.live {
		delete(r.index, s.key)
	}
	*s = tombSlot{}
	r.head = (r.head + 1) % len(r.slots)
	r.n--
}

// expire forgets the tombs older than TombLinger at now.
func (r *tombRing) expire(now time.Time) {
	limit := now.UnixNano() - int64(TombLinger)
	for r.n > 0 && r.slots[r.head].at < limit {
		r.drop()
	}
}

// unbury returns the tomb of the connection on k, taking it out.
func (r *tombRing) unbury(k connKey) (tomb, bool) {
	if len(r.index) == 0 {
		return tomb{}, false
	}
	tk := tombKeyOf(k)
	i, ok := r.index[tk]
	if !ok {
		return tomb{}, false
	}
	delete(r.index, tk)
	r.slots[i].live = false
	return r.slots[i].t, true
}

// resume makes a connection of the tomb t of the connection on k: its
// stream, client and sequence analysis go on; its summary starts afresh
// and says it was resumed.
func (a *Annotator) resume(k connKey, t *tomb) *conn {
	c := &conn{stream: int(t.stream), key: k}
	c.client, c.sum.Server = k.a, k.b
	if !t.clientA {
		c.client, c.sum.Server = k.b, k.a
	}
	c.sum.Stream, c.sum.Client, c.sum.Resumed = c.stream, c.client, true
	for i := range c.h {
		c.h[i] = t.h[i].half()
	}
	a.conns[k] = c
	return c
}

// clientOf returns which endpoint of the tomb's connection is the client.
func (t *tomb) clientOf(k connKey) netip.AddrPort {
	if t.clientA {
		return k.a
	}
	return k.b
}
