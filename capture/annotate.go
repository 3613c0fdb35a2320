package capture

import (
	"net/netip"
	"slices"
	"time"
)

// Annotation is what tcplab says about one TCP segment.
type Annotation struct {
	Stream int // connection index, 0, 1, … in order of first appearance (Wireshark's tcp.stream)
	Dir    Dir
	RelSeq uint32 // seq relative to the sender's initial sequence number
	RelAck uint32 // ack relative to the receiver's initial sequence number; 0 without ACK
	Win    int    // window, scaled when both SYNs announced a scale
	// Window says whether Win is the window in bytes, the raw field of a
	// connection whose scale is unknown (its SYNs were not captured, or
	// their options were cut), or unknown (the cut took the field).
	Window WindowKnown
	Labels Labels
	// Client and Server are the TCP states of the two endpoints after the
	// segment was sent and received.
	Client, Server State
}

// WindowKnown says how much is known of a segment's window.
type WindowKnown uint8

// What is known of a window.
const (
	// WindowScaled: Win is the window in bytes (the raw field shifted by
	// the scale both SYNs agreed on, or unshifted when they agreed on
	// none).
	WindowScaled WindowKnown = iota
	// WindowUnscaled: Win is the raw window field; the connection's
	// scale is unknown, so the window in bytes may be larger.
	WindowUnscaled
	// WindowUnknown: the window field was not captured; Win is 0.
	WindowUnknown
)

// Annotator follows TCP connections segment by segment and annotates each
// segment the way Wireshark's TCP analysis does. It must see the segments
// in capture order. The zero value is not usable: call NewAnnotator.
type Annotator struct {
	conns map[connKey]*conn
	// recent holds connections of conns recently found, each in the slot
	// its ports pick (recentSlot), nil when none: segments mostly go to
	// the few connections busy at the time, and comparing a key costs
	// less than the map's hash.
	recent  *[recentSlots]*conn
	streams int // streams started, the next stream's number
	// With EvictClosed: what to do with a forgotten connection's summary,
	// and the closed connections waiting out Linger, oldest first.
	onEvict func(*ConnSummary)
	closed  []*conn
	head    int // closed[:head] are gone
	// replaced holds, without EvictClosed, the connections whose 4-tuple
	// a later connection took over.
	replaced []*conn
	// With EvictClosed: the forgotten connections still known in brief
	// (tomb.go), and the order they go in.
	tombs tombRing
	// free holds, with EvictClosed, connections forgotten and out of the
	// eviction queue, which nothing refers to any more: a new connection
	// takes one rather than 1.5 KiB more for the collector, on captures
	// of many short connections.
	free []*conn
}

// NewAnnotator returns an Annotator with no connections.
func NewAnnotator() *Annotator {
	return &Annotator{conns: make(map[connKey]*conn), recent: new([recentSlots]*conn)}
}

// recentSlots is the size of Annotator.recent.
const recentSlots = 256

// recentSlot returns the slot of Annotator.recent for k, from its ports:
// a host's connections to one server differ in the client's port.
func recentSlot(k connKey) int {
	return int((k.a.Port() ^ k.b.Port()) % recentSlots)
}

// Linger is how long in capture time a closed connection is kept for late
// segments (a FIN retransmitted because the last ACK was lost, a RST
// answering a segment in flight) when the Annotator evicts closed
// connections. Retransmission timeouts start at 200 ms on Linux and 1 s
// elsewhere (RFC 6298); 5 s covers a few backoffs.
const Linger = 5 * time.Second

// EvictClosed makes the Annotator forget each connection once it has been
// closed for Linger of capture time, closed meaning a RST or both FINs
// acknowledged; fn gets the connection's final summary first. Memory then
// grows with the connections open at once (and those closed within
// Linger), not with every connection seen, and Conns returns only the
// connections not yet forgotten. A forgotten connection is still known in
// a few bytes for TombLinger: a later segment of it continues its stream,
// as Wireshark continues it, in a connection whose summary has Resumed
// set (fn gets it in turn when that closes). A segment later still, or
// beyond the MaxTombs most recently forgotten, starts a new stream, where
// Wireshark, which keeps every connection, would continue the old one.
func (a *Annotator) EvictClosed(fn func(*ConnSummary)) { a.onEvict = fn }

// connKey names a connection by its endpoints, lower endpoint first, so both
// directions find the same connection.
type connKey struct{ a, b netip.AddrPort }

func keyOf(s, d netip.AddrPort) connKey {
	if s.Addr() == d.Addr() {
		// As Compare orders them, without comparing the addresses field
		// by field: a loopback capture's connections all have one.
		if s.Port() < d.Port() {
			return connKey{s, d}
		}
		return connKey{d, s}
	}
	if s.Compare(d) < 0 {
		return connKey{s, d}
	}
	return connKey{d, s}
}

// wscaleUnknown is a half's wscale when its SYN's options were cut.
const wscaleUnknown = -2

// half is the analysis state of one direction of a connection, named after
// the fields of Wireshark's tcp_analyze_seq_info where it has them.
type half struct {
	// Fields ordered by size, so that a connection stays within 1.5 KiB
	// (TestEvictBoundsMemory).
	nextTime   time.Time
	lastAckAt  time.Time
	dupAcks    int
	base       uint32 // relative numbering base (the ISN)
	isn        uint32
	synLen     uint32 // payload of the first SYN (TCP Fast Open data)
	nextSeq    uint32
	maxToAck   uint32 // highest contiguous seq seen, for ack-lost-segment
	lastAck    uint32
	finSeq     uint32
	lastLabels Labels
	window     uint16 // raw window of the last segment
	wscale     int8   // announced in this side's SYN; -1 none, wscaleUnknown when cut
	scale      int8   // shift applied to this side's windows; -1 unknown
	state      State
	seen       bool
	baseSet    bool
	synSeen    bool
	nextSet    bool
	maxSet     bool
	lastAckSet bool
	windowSet  bool
	synWindow  bool // the last segment was a SYN: its window is never scaled
	finSent    bool
	// finPending: the other side's FIN arrived in ESTABLISHED, and this
	// side has not yet shown whether it took it there (see transition).
	finPending bool
}

type conn struct {
	key      connKey
	lastAt   time.Time // the last segment's time
	closedAt time.Time // when it was queued for eviction
	queued   bool      // in Annotator.closed
	retired  bool      // forgotten when a new connection took its 4-tuple
	stream   int
	client   netip.AddrPort
	h        [2]half // indexed by Dir of the sender: 0 client, 1 server
	synAt    time.Time
	firstRTT time.Duration
	sum      connTally
	end      EndingTracker
	hist     [maxHistory]byte // history letters
	histLen  uint8
	histSeen [2]uint8 // by direction, the letters seen (bit i of historyLetters)
	// histSeq holds by direction the seq of the last s, h, f and r
	// recorded; histN counts by direction the t and w events, up to
	// 65535.
	histSeq [2][4]uint32
	histN   [2][2]uint16
}

// connTally is what a connection counts of its ConnSummary as segments
// come; summary makes the rest (history, ending, states, first RTT) from
// the connection's own state. Without them a connection takes a quarter
// less memory.
type connTally struct {
	Stream               int
	Client, Server       netip.AddrPort
	Segments             int
	Counts               [numLabels]int32
	Cut                  int
	Completeness         Completeness
	DirSegments          [2]int
	Bytes, Retransmitted [2]int64
	zeek                 [2]zeekState
	Resumed              bool
}

// ConnSummary is what tcplab says about one whole connection.
type ConnSummary struct {
	Stream         int
	Client, Server netip.AddrPort
	Segments       int
	// History is Zeek's conn.log history: a letter per event (S syn, H
	// syn-ack, A pure ack, D data, F fin, R rst, T retransmitted payload,
	// W zero window), upper case when the client sent it, lower case for
	// the server. As in Zeek, A and D are recorded once a direction; S,
	// H, F and R again when the seq differs from the last of the same
	// letter; T and W at the 1st, 10th, 100th, ... time. At most
	// maxHistory letters.
	History string
	// Ending is how the connection ended: who closed first, whether the
	// FINs crossed, half-close, reset.
	Ending Ending
	// Counts holds how many segments carried each label (int32 keeps a
	// connection in the Annotator within 1.5 KiB).
	Counts [numLabels]int32
	// Cut is how many segments had their TCP header cut by the snap
	// length, and so were not analysed.
	Cut int
	// Client and Server are the endpoints' final states.
	ClientState, ServerState State
	// Completeness is Wireshark's tcp.completeness of the connection:
	// the kinds of segments seen in it.
	Completeness Completeness
	// DirSegments, Bytes and Retransmitted are, by the Dir of the
	// sender, the segments, their payload bytes (retransmissions
	// included), and the payload bytes of segments labelled
	// retransmission.
	DirSegments          [2]int
	Bytes, Retransmitted [2]int64
	// FirstRTT is the connection's first round trip, from the most
	// recent SYN to the first ACK without SYN, as Wireshark times
	// tcp.analysis.initial_rtt; 0 when none was seen.
	FirstRTT time.Duration
	// zeek holds each endpoint's state in Zeek's TCP analyzer, for
	// ConnState.
	zeek [2]zeekState
	// Resumed says the connection had been forgotten (EvictClosed) when a
	// late segment of it came: the summary counts the segments since,
	// and an earlier summary of the same stream those before.
	Resumed bool
}

// Count returns how many segments of the connection carried label l.
func (s *ConnSummary) Count(l Label) int { return int(s.Counts[l]) }

// Conns returns the summaries of all connections seen so far (with
// EvictClosed, of those not yet forgotten), by stream.
func (a *Annotator) Conns() []ConnSummary {
	out := make([]ConnSummary, 0, a.Held())
	a.EachConn(func(s *ConnSummary) { out = append(out, *s) })
	return out
}

// EachConn calls fn with the summary of each connection Conns returns, in
// the same order, without making the list; fn must not keep the pointer.
func (a *Annotator) EachConn(fn func(*ConnSummary)) {
	// Sorted as pointers: a summary is too big to move about.
	held := make([]*conn, 0, len(a.conns)+len(a.replaced))
	for _, c := range a.conns {
		held = append(held, c)
	}
	held = append(held, a.replaced...)
	slices.SortFunc(held, func(x, y *conn) int { return x.stream - y.stream })
	s := new(ConnSummary) // one for all: fn does not keep it
	for _, c := range held {
		*s = c.summary()
		fn(s)
	}
}

// Held returns how many connections the Annotator holds: all seen, or with
// EvictClosed those not yet forgotten.
func (a *Annotator) Held() int { return len(a.conns) + len(a.replaced) }

// retire takes c, whose 4-tuple a new connection took, out of the lookup:
// with EvictClosed it is forgotten now, else kept for Conns.
func (a *Annotator) retire(c *conn) {
	if a.onEvict == nil {
		a.replaced = append(a.replaced, c)
		return
	}
	c.retired = true
	sum := c.summary()
	a.onEvict(&sum)
}

// summary returns the connection's summary as it stands.
func (c *conn) summary() ConnSummary {
	t := &c.sum
	s := ConnSummary{Stream: t.Stream, Client: t.Client, Server: t.Server, Segments: t.Segments, Counts: t.Counts,
		Cut: t.Cut, Completeness: t.Completeness, DirSegments: t.DirSegments, Bytes: t.Bytes,
		Retransmitted: t.Retransmitted, zeek: t.zeek, Resumed: t.Resumed}
	s.History = string(c.hist[:c.histLen])
	s.ClientState, s.ServerState = c.h[0].state, c.h[1].state
	// A FIN still waiting for its receiver's answer was received all the
	// same: nothing on the wire says otherwise.
	for i, st := range [2]*State{&s.ClientState, &s.ServerState} {
		if c.h[i].finPending {
			*st = CloseWait
		}
	}
	s.Ending = c.end.Ending()
	s.FirstRTT = c.firstRTT
	return s
}

// evict forgets the connections that have been closed for Linger at now,
// in the order they closed. A connection that saw segments after it
// closed waits Linger from the last one; one that opened again is not
// closed any more and waits until it closes again.
func (a *Annotator) evict(now time.Time) {
	for a.head < len(a.closed) {
		c := a.closed[a.head]
		if c.retired {
			a.head++
			a.free = append(a.free, c)
			continue
		}
		if !c.isClosed() {
			c.queued = false
			a.head++
			continue
		}
		if now.Sub(c.lastAt) < Linger {
			if c.lastAt.Equal(c.closedAt) {
				break // the oldest is not due: none behind it is
			}
			// Seen since it closed: wait again, from the last segment.
			c.closedAt = c.lastAt
			a.closed = append(a.closed, c)
			a.head++
			continue
		}
		a.head++
		delete(a.conns, c.key)
		if r := &a.recent[recentSlot(c.key)]; *r == c {
			*r = nil
		}
		sum := c.summary()
		a.onEvict(&sum)
		a.tombs.bury(c)
		a.free = append(a.free, c)
	}
	if a.head > 1024 && a.head*2 > len(a.closed) {
		n := copy(a.closed, a.closed[a.head:])
		clear(a.closed[n:])
		a.closed, a.head = a.closed[:n], 0
	}
}

// isClosed reports whether both ends are closed: after a RST, or once both
// FINs were acknowledged (one end in TIME_WAIT).
func (c *conn) isClosed() bool {
	done := func(s State) bool { return s == Closed || s == TimeWait }
	return done(c.h[0].state) && done(c.h[1].state)
}

// Annotate analyses seg in the context of the segments before it and returns
// its annotation. It allocates only when seg opens a new connection.
func (a *Annotator) Annotate(seg *Segment) Annotation {
	if a.onEvict != nil && a.head < len(a.closed) {
		a.evict(seg.Time)
	}
	if a.tombs.n > 0 {
		a.tombs.expire(seg.Time)
	}
	c, reused := a.lookup(seg)
	c.lastAt = seg.Time
	if a.onEvict != nil {
		defer a.queueClosed(c)
	}
	dir := ServerToClient
	if seg.Src == c.client {
		dir = ClientToServer
	}
	fwd, rev := &c.h[dir], &c.h[1-dir]
	c.sum.Segments++
	c.sum.DirSegments[dir]++
	if seg.Problem == HeaderCut {
		// Without its whole header a segment cannot be analysed, as in
		// Wireshark; it is counted, and what was captured of it shown.
		c.sum.Cut++
		return c.cutAnnotation(seg, fwd, rev, dir)
	}

	// A SYN sent again with the same ISN (after the connection closed,
	// say) is a retransmission and does not start the sequence space
	// afresh, as for Wireshark.
	resent := seg.Flags.Has(SYN) && fwd.synSeen && seg.Seq == fwd.isn
	if seg.Flags.Has(SYN) {
		a.onSYN(c, seg, fwd, rev)
	}
	if !fwd.baseSet {
		fwd.base, fwd.baseSet = seg.Seq-1, true
	}
	if !rev.baseSet && seg.Flags.Has(ACK) {
		rev.base, rev.baseSet = seg.Ack-1, true
	}
	// The first round trip, from the most recent SYN (not SYN/ACK) to the
	// first ACK without SYN in either direction, as Wireshark 4.0 times it
	// (tcp.analysis.initial_rtt). It bounds out-of-order below.
	if c.firstRTT == 0 && !c.synAt.IsZero() && seg.Flags&(SYN|ACK) == ACK {
		// A zero round trip (equal timestamps) counts as none yet, as in
		// Wireshark: the next ACK measures again.
		c.firstRTT = seg.Time.Sub(c.synAt)
	}

	labels := c.analyse(seg, fwd, rev)
	if reused {
		labels = labels.With(ReusedPorts)
	}
	if seg.Flags.Has(SYN) {
		labels |= fastOpenLabels(seg, rev)
	}
	c.track(seg, fwd, labels, resent)
	fwd.lastLabels = labels
	reset := true
	if seg.Flags.Has(RST) {
		check, _ := c.end.CheckRST(seg, dir)
		reset = check == RSTReset
	}
	c.transition(seg, fwd, rev, reset)
	c.end.Add(seg, dir, c.h[0].state, c.h[1].state)
	c.record(seg, labels, dir)

	ann := Annotation{Stream: c.stream, Dir: dir, RelSeq: seg.Seq - fwd.base, Labels: labels}
	c.fields(&ann, seg, fwd, rev)
	return ann
}

// fields fills in the relative acknowledgement number, the window and the
// states of ann.
func (c *conn) fields(ann *Annotation, seg *Segment, fwd, rev *half) {
	// Without the ACK flag the field means nothing to TCP; Wireshark
	// shows it raw, and so does tcplab.
	ann.RelAck = seg.Ack
	if seg.Flags.Has(ACK) {
		ann.RelAck = seg.Ack - rev.base
	}
	ann.Win = int(seg.Window)
	switch {
	case seg.Flags.Has(SYN):
		// A SYN's window is never scaled (RFC 7323 section 2.2).
	case fwd.scale > 0:
		ann.Win <<= fwd.scale
	case fwd.scale < 0:
		ann.Window = WindowUnscaled
	}
	ann.Client, ann.Server = c.h[0].state, c.h[1].state
}

// cutAnnotation annotates a segment whose TCP header the snap length cut:
// the fields that were captured, numbered as the rest of the connection,
// and no labels.
func (c *conn) cutAnnotation(seg *Segment, fwd, rev *half, dir Dir) Annotation {
	ann := Annotation{Stream: c.stream, Dir: dir}
	if seg.Captured(8) {
		ann.RelSeq = seg.Seq - fwd.base
	}
	if !seg.Captured(14) {
		// Without the flags even the ACK flag is unknown.
		ann.Client, ann.Server, ann.Window = c.h[0].state, c.h[1].state, WindowUnknown
		return ann
	}
	c.fields(&ann, seg, fwd, rev)
	if !seg.Captured(16) {
		ann.Win, ann.Window = 0, WindowUnknown
	}
	return ann
}

// lookup finds the connection of seg or starts a new one. Any segment but
// a SYN continues the connection on its 4-tuple, however long after its
// close, as Wireshark continues it (with EvictClosed, for TombLinger). A
// SYN with a new initial sequence number on a known 4-tuple starts a new
// stream, as Wireshark does when a port pair is reused; reused says so.
func (a *Annotator) lookup(seg *Segment) (c *conn, reused bool) {
	k := keyOf(seg.Src, seg.Dst)
	syn := seg.Flags&(SYN|ACK) == SYN
	r := &a.recent[recentSlot(k)]
	c, ok := *r, *r != nil && (*r).key == k
	if !ok {
		c, ok = a.conns[k]
	}
	if ok {
		if !syn || (c.h[0].synSeen && c.h[0].isn == seg.Seq && c.client == seg.Src) {
			*r = c
			return c, false
		}
		if c.client == seg.Src && !c.h[0].synSeen && c.sum.Segments == 0 {
			*r = c
			return c, false
		}
		reused = true
	} else if t, ok := a.tombs.unbury(k); ok {
		if !syn || (t.h[0].bits&tombSynSeen != 0 && t.h[0].isn == seg.Seq && t.clientOf(k) == seg.Src) {
			*r = a.resume(k, &t)
			return *r, false
		}
		reused = true
	}
	if n := len(a.free); n > 0 {
		c, a.free = a.free[n-1], a.free[:n-1]
		*c = conn{stream: a.streams, key: k}
	} else {
		c = &conn{stream: a.streams, key: k}
	}
	a.streams++
	// The client is the SYN sender. Without a SYN, the receiver of a
	// SYN/ACK is; failing that, the side with the higher port, since
	// servers mostly listen on the lower, well-known one.
	switch {
	case seg.Flags&(SYN|ACK) == SYN:
		c.client = seg.Src
	case seg.Flags.Has(SYN | ACK):
		c.client = seg.Dst
	case seg.Src.Port() >= seg.Dst.Port():
		c.client = seg.Src
	default:
		c.client = seg.Dst
	}
	server := seg.Dst
	if c.client == seg.Dst {
		server = seg.Src
	}
	c.sum.Stream, c.sum.Client, c.sum.Server = c.stream, c.client, server
	for i := range c.h {
		c.h[i].wscale, c.h[i].scale = -1, -1
	}
	if seg.Flags.Has(SYN) {
		c.h[0].state, c.h[1].state = Closed, Listen
	} else {
		// Joined mid-stream: assume the connection is established.
		c.h[0].state, c.h[1].state = Established, Established
	}
	if old, ok := a.conns[k]; ok {
		// A new connection on the 4-tuple: no segment can reach the old
		// one any more.
		a.retire(old)
	}
	a.conns[k] = c
	*r = c
	return c, reused
}

// queueClosed puts c in the eviction queue when it has just closed.
func (a *Annotator) queueClosed(c *conn) {
	if !c.queued && c.isClosed() {
		c.queued, c.closedAt = true, c.lastAt
		a.closed = append(a.closed, c)
	}
}

// onSYN records a SYN's initial sequence number and window scale option.
func (a *Annotator) onSYN(c *conn, seg *Segment, fwd, rev *half) {
	if seg.Flags&(SYN|ACK) == SYN {
		c.synAt = seg.Time
	}
	if !fwd.synSeen {
		fwd.synSeen, fwd.isn, fwd.synLen = true, seg.Seq, uint32(seg.Len)
		fwd.base, fwd.baseSet = seg.Seq, true
		fwd.wscale = seg.Options.WindowScale
		if seg.Problem == OptionsCut && fwd.wscale < 0 {
			// The cut may have taken a window scale option.
			fwd.wscale = wscaleUnknown
		}
	}
	// Window scaling is in force only when both SYNs carried the option
	// (RFC 7323 section 2.2); once both SYNs are seen the shift is known.
	if fwd.synSeen && rev.synSeen {
		fwd.scale, rev.scale = shift(fwd.wscale, rev.wscale), shift(rev.wscale, fwd.wscale)
	}
}

// shift returns the window shift of a side that announced own in its SYN,
// the other side having announced other: none when either SYN is known to
// lack the option; unknown (-1) when the side's own SYN lost its options
// to the snap length. A side whose option is known keeps it even when the
// other side's was cut, as Wireshark does: a SYN/ACK carries the option
// only in answer to a SYN that had it (RFC 7323 section 2.2).
func shift(own, other int8) int8 {
	switch {
	case own == -1 || other == -1:
		return 0
	case own == wscaleUnknown:
		return -1
	}
	return own
}

// scaledWindow returns h's last window in bytes.
func (h *half) scaledWindow() uint32 {
	w := uint32(h.window)
	if h.scale > 0 && !h.synWindow {
		w <<= uint32(h.scale)
	}
	return w
}

// seqLT reports a < b in sequence space (RFC 9293 section 3.4).
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

// seqGT reports a > b in sequence space.
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }

// analyse computes the labels of seg. The order of the checks and where
// they stop follow Wireshark's tcp_analyze_sequence_number, so that both
// tools label the same segment the same way.
func (c *conn) analyse(seg *Segment, fwd, rev *half) Labels {
	var l Labels
	flags, n := seg.Flags, uint32(seg.Len)
	atNext := fwd.nextSet && seg.Seq == fwd.nextSeq
	sameSeqAck := atNext && fwd.lastAckSet && seg.Ack == fwd.lastAck
	sameWindow := fwd.windowSet && seg.Window == fwd.window
	// Linux probes a zero window with an empty segment at snd_una-1
	// (tcp_xmit_probe_skb); Wireshark calls it a keep-alive. tcplab calls
	// it what it is when the other side's window is closed.
	zeroRev := rev.windowSet && rev.window == 0

	if n == 1 && atNext && zeroRev {
		// A classic one-byte probe: nothing else applies to it.
		l = l.With(ZeroWindowProbe)
	} else {
		l = c.windowLabels(seg, fwd, rev, zeroRev, atNext, sameSeqAck, sameWindow)
	}
	if !fwd.lastAckSet || seg.Ack != fwd.lastAck {
		fwd.dupAcks = 0
	}
	// An ack beyond what the other side was seen to send. When that side
	// has sent nothing new since (a probe byte acknowledged, say), the
	// label is given once, and again only after that side's ack moved:
	// its dup-ack count of -1 says so. This is what tshark 4.0.17 does.
	if rev.maxSet && seqGT(seg.Ack, rev.maxToAck) && flags.Has(ACK) {
		switch {
		case seqLT(rev.maxToAck, rev.nextSeq):
			l = l.With(ACKLostSegment)
			rev.maxToAck = rev.nextSeq
		case rev.dupAcks == 0:
			l = l.With(ACKLostSegment)
			rev.dupAcks = -1
		default:
			rev.dupAcks = -1
		}
	}
	// A probe is checked too: a probe byte the other side has already
	// acknowledged is a spurious retransmission, for Wireshark as well.
	if (n > 0 || flags&(SYN|FIN) != 0) && !l.Has(KeepAlive) {
		l |= c.retransmission(seg, fwd, rev)
	}
	return l
}

// windowLabels computes the labels that depend on windows, gaps and repeated
// acknowledgements.
func (c *conn) windowLabels(seg *Segment, fwd, rev *half, zeroRev, atNext, sameSeqAck, sameWindow bool) Labels {
	var l Labels
	n := uint32(seg.Len)
	control := seg.Flags&(SYN|FIN|RST) != 0
	if seg.Window == 0 && !control {
		l = l.With(ZeroWindow)
	}
	// A SYN sets the initial sequence number: it follows no earlier
	// segment, whatever came before it (an injected RST, say).
	if fwd.nextSet && seqGT(seg.Seq, fwd.nextSeq) && seg.Flags&(RST|SYN) == 0 {
		l = l.With(LostSegment)
	}
	if n <= 1 && fwd.nextSet && seg.Seq == fwd.nextSeq-1 && !control {
		if n == 0 && zeroRev {
			l = l.With(ZeroWindowProbe)
		} else {
			l = l.With(KeepAlive)
		}
	}
	if control || n > 0 {
		if n > 0 && !control && rev.scale >= 0 && rev.lastAckSet && seg.Seq+n == rev.lastAck+rev.scaledWindow() {
			l = l.With(WindowFull)
		}
		return l
	}
	if seg.Window != 0 && fwd.windowSet && !sameWindow && sameSeqAck {
		l = l.With(WindowUpdate)
	}
	switch {
	case seg.Window != 0 && sameWindow && sameSeqAck && rev.lastLabels.Has(KeepAlive):
		l = l.With(KeepAliveACK)
	case seg.Window == 0 && sameWindow && sameSeqAck && rev.lastLabels.Has(ZeroWindowProbe):
		l = l.With(ZeroWindowProbeACK)
	case seg.Window != 0 && sameWindow && sameSeqAck:
		fwd.dupAcks = max(fwd.dupAcks, 0) + 1 // -1 (see analyse) counts as 0
		l = l.With(DupACK)
	}
	return l
}

// retransmission labels a segment that carries sequence space it does not
// advance: a spurious retransmission, a fast retransmission, an
// out-of-order segment or a plain retransmission, checked in that order as
// Wireshark 4.0.x does.
func (c *conn) retransmission(seg *Segment, fwd, rev *half) Labels {
	n := uint32(seg.Len)
	notAdvanced := fwd.nextSet && seqLT(seg.Seq, fwd.nextSeq)
	// A segment that starts one byte early but carries new data follows a
	// one-byte zero-window probe; it is not a retransmission.
	if n > 1 && fwd.nextSet && fwd.nextSeq-1 == seg.Seq {
		notAdvanced = false
	}
	var l Labels
	// Data the other side has acknowledged already.
	if n > 0 && rev.lastAckSet && rev.lastAck != 0 && !seqGT(seg.Seq+n, rev.lastAck) {
		return l.With(SpuriousRetransmission).With(Retransmission)
	}
	// Two or more dup-acks for this seq, within 20 ms: a fast retransmit.
	// A time before the one compared with (timestamps that jump
	// backwards) is never within it: Wireshark takes the difference
	// unsigned.
	if notAdvanced && rev.dupAcks >= 2 && rev.lastAck == seg.Seq && within(seg.Time, rev.lastAckAt, 20*time.Millisecond) {
		return l.With(FastRetransmission).With(Retransmission)
	}
	// Within about one round trip of the highest segment: reordered.
	thres := c.firstRTT
	if thres == 0 {
		thres = 3 * time.Millisecond
	}
	end := seg.Seq + n
	if seg.Flags&(SYN|FIN) != 0 {
		end++
	}
	if notAdvanced && within(seg.Time, fwd.nextTime, thres) && fwd.nextSeq != end {
		return l.With(OutOfOrder)
	}
	if notAdvanced {
		l = l.With(Retransmission)
	}
	return l
}

// track updates the sequence bookkeeping of the sender after seg. A zero
// window probe does not advance the next expected sequence number: its byte
// is not accepted by a closed window.
func (c *conn) track(seg *Segment, fwd *half, labels Labels, resent bool) {
	next := seg.Seq + uint32(seg.Len)
	if seg.Flags&(SYN|FIN) != 0 {
		next++
	}
	// Only a one-byte probe: an empty one (Linux's, a keep-alive to
	// Wireshark) is kept track of as Wireshark keeps a keep-alive.
	probe := labels.Has(ZeroWindowProbe) && seg.Len > 0
	// A SYN starts the sequence space afresh, so an ACK of it is no
	// ack-lost-segment, even when a segment before it (an injected RST)
	// claimed other numbers.
	// A SYN sent again (resent) does not.
	syn := seg.Flags.Has(SYN) && !resent
	if (!fwd.nextSet || seqGT(next, fwd.nextSeq) || syn) && !probe {
		fwd.nextSeq, fwd.nextSet, fwd.nextTime = next, true, seg.Time
	}
	if (!fwd.maxSet || seg.Seq == fwd.maxToAck || syn) && !probe {
		fwd.maxToAck, fwd.maxSet = fwd.nextSeq, true
	}
	fwd.window, fwd.windowSet, fwd.synWindow = seg.Window, true, seg.Flags.Has(SYN)
	fwd.lastAck, fwd.lastAckSet, fwd.lastAckAt = seg.Ack, true, seg.Time
}

// within reports whether t came at most d after from, and not before it.
func within(t, from time.Time, d time.Duration) bool {
	e := t.Sub(from)
	return e >= 0 && e < d
}
