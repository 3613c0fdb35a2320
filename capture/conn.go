package capture

import "math/bits"

// transition moves both endpoints' states after seg was sent by fwd and
// received by rev. On a loopback capture a segment is seen as it is
// delivered, so sending and receiving happen at the same step. A RST
// closes both ends only when reset says its receiver took it
// (EndingTracker.CheckRST, RFC 5961 section 3): one it challenged or
// dropped changes nothing.
func (c *conn) transition(seg *Segment, fwd, rev *half, reset bool) {
	f := seg.Flags
	if f.Has(RST) {
		if !reset {
			return
		}
		fwd.state, rev.state = Closed, Closed
		fwd.finPending, rev.finPending = false, false
		return
	}
	// A FIN received in ESTABLISHED waits for its receiver's next
	// segment: one that acknowledges it shows the receiver took it in
	// ESTABLISHED (CLOSE_WAIT); a FIN of the receiver's own that does not
	// shows the two FINs crossed, and the receiver goes through
	// FIN_WAIT_1 to CLOSING (RFC 9293 figure 13). Moving to CLOSE_WAIT at
	// once would draw CLOSE_WAIT -> CLOSING, which TCP never does.
	if fwd.finPending && f.Has(ACK) && seqGE(seg.Ack, rev.finSeq+1) {
		fwd.finPending = false
		fwd.state = CloseWait
	}
	// The sender's side.
	switch {
	case f.Has(SYN) && !f.Has(ACK):
		if fwd.state == Closed || fwd.state == Unknown {
			fwd.state = SynSent
		}
	case f.Has(SYN | ACK):
		if fwd.state == Listen || fwd.state == Unknown || fwd.state == SynSent {
			fwd.state = SynReceived
		}
	}
	if f.Has(FIN) && !fwd.finSent {
		fwd.finSent, fwd.finSeq = true, seg.Seq+uint32(seg.Len)
		switch fwd.state {
		case CloseWait:
			fwd.state = LastACK
		case Established, SynReceived:
			fwd.state = FinWait1
		}
		if fwd.finPending {
			// The FINs crossed: the peer's FIN reaches a FIN_WAIT_1.
			fwd.finPending, fwd.state = false, Closing
		}
	}
	// The receiver's side: what the segment's ACK acknowledges first, then
	// its FIN.
	if f.Has(ACK) {
		switch rev.state {
		case SynSent:
			if f.Has(SYN) {
				rev.state = Established
			}
		case SynReceived:
			if !f.Has(SYN) && rev.synSeen && seg.Ack == rev.isn+1 {
				rev.state = Established
			}
		}
		if rev.finSent && seg.Ack == rev.finSeq+1 {
			switch rev.state {
			case FinWait1:
				rev.state = FinWait2
			case Closing:
				rev.state = TimeWait
			case LastACK:
				rev.state = Closed
			}
		}
	}
	// A SYN received in LISTEN is not shown as SYN_RECEIVED until the
	// receiver answers it with its SYN/ACK (above): a RST may answer it
	// instead, from a port where nothing listens.
	if f.Has(FIN) {
		switch rev.state {
		case Established, SynReceived:
			rev.finPending = true
		case FinWait1:
			rev.state = Closing
		case FinWait2:
			rev.state = TimeWait
		}
	}
}

// history letters, lower case; upper case is for the client.
const historyLetters = "shadfrtw"

// record adds seg to the connection's label counts and history.
func (c *conn) record(seg *Segment, labels Labels, dir Dir) {
	// Only the labels set: most segments have none.
	for m := labels & (1<<numLabels - 1); m != 0; m &= m - 1 {
		c.sum.Counts[bits.TrailingZeros32(uint32(m))]++
	}
	f := seg.Flags
	c.sum.Completeness |= completenessOf(f, seg.Len)
	c.sum.Bytes[dir] += int64(seg.Len)
	if labels.Has(Retransmission) {
		c.sum.Retransmitted[dir] += int64(seg.Len)
	}
	zeekAdd(&c.sum.zeek, dir, f, seg.Len)
	switch {
	case f.Has(SYN) && !f.Has(ACK):
		c.event(0, dir, seg.Seq)
	case f.Has(SYN | ACK):
		c.event(1, dir, seg.Seq)
	case seg.Len == 0 && f&(FIN|RST) == 0 && f.Has(ACK):
		c.event(2, dir, 0)
	}
	if seg.Len > 0 {
		c.event(3, dir, 0)
	}
	if f.Has(FIN) {
		c.event(4, dir, seg.Seq)
	}
	if f.Has(RST) {
		c.event(5, dir, seg.Seq)
	}
	// Zeek's T is a retransmitted payload: a SYN or FIN sent again is
	// none.
	if labels.Has(Retransmission) && seg.Len > 0 {
		c.event(6, dir, 0)
	}
	if labels.Has(ZeroWindow) {
		c.event(7, dir, 0)
	}
}

// maxHistory bounds a connection's history letters.
const maxHistory = 24

// histSeqIndex is the index in histSeq of the letters recorded again
// when their seq differs: s, h, f, r.
var histSeqIndex = [len(historyLetters)]int8{0, 1, -1, -1, 2, 3, -1, -1}

// event appends history letter i for direction dir when Zeek's conn.log
// would (see ConnSummary.History); seq is the segment's, for s, h, f and r.
func (c *conn) event(i int, dir Dir, seq uint32) {
	seen := c.histSeen[dir]&(1<<i) != 0
	switch {
	case i == 6 || i == 7: // t, w: the 1st, 10th, 100th, ... time
		n := &c.histN[dir][i-6]
		if *n < 65535 {
			*n++
		}
		if !powerOf10(*n) {
			return
		}
	case histSeqIndex[i] >= 0: // s, h, f, r: again with another seq
		last := &c.histSeq[dir][histSeqIndex[i]]
		if seen && *last == seq {
			return
		}
		*last = seq
	case seen: // a, d: once
		return
	}
	c.histSeen[dir] |= 1 << i
	if int(c.histLen) == len(c.hist) {
		return
	}
	b := historyLetters[i]
	if dir == ClientToServer {
		b -= 'a' - 'A'
	}
	c.hist[c.histLen] = b
	c.histLen++
}

// powerOf10 reports whether n is 1, 10, 100, 1000 or 10000.
func powerOf10(n uint16) bool {
	return n == 1 || n == 10 || n == 100 || n == 1000 || n == 10000
}
