package capture

import (
	"fmt"
)

// Ending is how a connection ended, as the wire shows it: who sent the
// first FIN, whether the FINs crossed, whether either side went on
// sending after the other's FIN, who reset it and in which state. It is
// the one definition of these facts: the annotator's summary, tcplab
// check's properties, the walkthrough and the ladder all read them from
// here, so every command says the same thing. An EndingTracker builds it
// segment by segment.
type Ending struct {
	// FIN holds each side's first FIN, by the Dir of its sender.
	FIN [2]FINSent
	// First is the sender of the first FIN on the wire; meaningful when
	// a FIN was seen (Closer says so).
	First Dir
	// Crossed says that both sides sent a FIN and neither FIN
	// acknowledges the other: each side sent its FIN before it had seen
	// the other's. That is a simultaneous close in RFC 9293's sense
	// (section 3.6, figure 13): both ends go FIN_WAIT_1 -> CLOSING ->
	// TIME_WAIT, whichever FIN the capture shows first.
	Crossed bool
	// HalfClose[d] is the first segment with data that d sent after it
	// had received the other side's FIN (its ACK covers that FIN): d went
	// on sending on a half-closed connection. Frame 0: none.
	HalfClose [2]DataAfterFIN
	// Unread[d] is the first segment with data that d sent after the
	// other side's FIN and beyond what that FIN acknowledged, but
	// without acknowledging the FIN: data already on its way when the
	// FIN left (it crossed the FIN). Frame 0: none.
	Unread [2]DataAfterFIN
	// Refused[d] is data d sent after the other side's FIN that the
	// other side answered with a RST: it had closed both ways, not
	// half-closed (data after close). It is no longer a HalfClose.
	Refused [2]DataAfterFIN
	// Reset is the first RST its receiver took: the one that reset the
	// connection; Frame 0 when none was seen (CheckRST).
	Reset ResetSent
	// Ignored is the first RST its receiver did not take (a challenged
	// or dropped RST, see CheckRST): it did not end the connection.
	// Frame 0 when none was seen; NIgnored counts them all.
	Ignored  IgnoredRST
	NIgnored int
	// events are the connection's closing events in order (Events).
	events  [MaxCloseEvents]CloseEvent
	nEvents uint8
}

// Events returns the connection's closing events in order: each side's
// first FIN, the first ACK of each FIN by the other side, and each RST
// (CloseRST when its receiver took it, CloseIgnoredRST when not), at most
// MaxCloseEvents in all.
func (e *Ending) Events() []CloseEvent { return e.events[:e.nEvents] }

// FINSent is one side's first FIN.
type FINSent struct {
	Frame int    // 0: this side sent no FIN
	Seq   uint32 // the FIN's own sequence number (after its data)
	Ack   uint32 // its acknowledgement number: what this side had received
	Data  int    // bytes of data the FIN segment carried
	// AcksPeer says that the FIN's ACK covers the other side's FIN:
	// this side had received that FIN when it sent its own.
	AcksPeer bool
	// AckedBy is the frame of the other side's first ACK of this FIN; 0
	// when none was seen.
	AckedBy int
}

// DataAfterFIN is a segment with data sent after the other side's FIN.
type DataAfterFIN struct {
	Frame int
	Len   int
}

// ResetSent is a RST: who sent it and in which state its sender was.
type ResetSent struct {
	Frame int // 0: no RST
	By    Dir
	// State is the sender's state before the RST, as inferred from the
	// wire (SYN_SENT refused, ESTABLISHED aborted, ...); Unknown when the
	// tracker was given no states.
	State State
	// Peer is the state of the side that received it.
	Peer State
}

// String says who reset the connection and in which state: "reset by
// the client (frame 9) in ESTABLISHED", or "refused: the server answered
// the client's SYN with a RST (frame 2)".
func (r ResetSent) String() string { return string(r.appendTo(nil)) }

// appendTo appends String's words to dst.
func (r ResetSent) appendTo(dst []byte) []byte {
	if r.Peer == SynSent && r.By == ServerToClient {
		dst = append(dst, "refused: the server answered the client's SYN with a RST (frame "...)
		dst = appendInt(dst, int64(r.Frame))
		return append(dst, ')')
	}
	dst = append(dst, "reset by the "...)
	dst = append(dst, Side(r.By)...)
	dst = append(dst, " (frame "...)
	dst = appendInt(dst, int64(r.Frame))
	dst = append(dst, ')')
	if r.State != Unknown {
		dst = append(dst, " in "...)
		dst = append(dst, r.State.String()...)
	}
	return dst
}

// RSTCheck is what the receiver of a RST makes of it, by RFC 5961
// section 3 (RFC 9293 section 3.10.7.4) as Linux applies it
// (tcp_validate_incoming, tcp_reset_check, tcp_rcv_synsent_state_process,
// tcp_check_req, tcp_timewait_state_process).
type RSTCheck uint8

// The outcomes of a RST.
const (
	// RSTReset: the receiver takes the RST and the connection is reset.
	// In a synchronized state its sequence number is exactly RCV.NXT
	// (or, after a FIN from its sender was received, RCV.NXT-1; or the
	// right edge of the receiver's highest SACK block); in SYN_SENT it
	// acknowledges the SYN; in SYN_RECEIVED it is in the window.
	RSTReset RSTCheck = iota
	// RSTChallenged: inside the receiver's window but not exact; the
	// receiver answers with a challenge ACK carrying RCV.NXT and the
	// connection goes on (a real peer answers that ACK with an exact
	// RST; a blind attacker never sees it).
	RSTChallenged
	// RSTDropped: outside the window (or not exact in TIME_WAIT), or in
	// SYN_SENT without an ACK of the SYN: dropped without a word.
	RSTDropped
)

// String returns "reset", "challenged" or "dropped".
func (c RSTCheck) String() string {
	switch c {
	case RSTChallenged:
		return "challenged"
	case RSTDropped:
		return "dropped"
	}
	return "reset"
}

// IgnoredRST is a RST its receiver did not take.
type IgnoredRST struct {
	Frame int // 0: none
	// Past is how far its sequence number lies past RCV.NXT as the wire
	// shows it (negative: before it), in SYN_SENT 0.
	Past  int32
	By    Dir // its sender
	Check RSTCheck
	// Peer is the receiver's state, which the RST left as it was.
	Peer State
}

// String says which RST was ignored and why: "the server ignored the
// client's RST (frame 4): inside its window, but 1000 past RCV.NXT, so it
// answered with a challenge ACK (RFC 5961 3.2)".
func (r IgnoredRST) String() string {
	who := fmt.Sprintf("the %s ignored the %s's RST (frame %d)", Side(1-r.By), Side(r.By), r.Frame)
	switch {
	case r.Peer == SynSent:
		return who + ": in SYN_SENT a RST counts only if it acknowledges the SYN (RFC 9293 3.10.7.3), so it was dropped"
	case r.Check == RSTChallenged:
		return fmt.Sprintf("%s: inside its window, but %d past RCV.NXT, so it answered with a challenge ACK and the connection went on (RFC 5961 3.2)", who, r.Past)
	case r.Peer == TimeWait:
		return fmt.Sprintf("%s: in TIME_WAIT only a RST at RCV.NXT counts, and it was %d past it, so it was dropped", who, r.Past)
	}
	return fmt.Sprintf("%s: outside its window (%d past RCV.NXT), so it was dropped (RFC 5961 3.2)", who, r.Past)
}

// CloseEvent is one event of a connection's close.
type CloseEvent struct {
	Frame int // first, so that an event takes 16 bytes (Ending is in every connection)
	Dir   Dir
	Kind  CloseKind
	// Merged marks an ACK carried by the segment that also carries the
	// same side's FIN.
	Merged bool
}

// CloseKind is what a CloseEvent is.
type CloseKind uint8

// The closing events.
const (
	CloseFIN        CloseKind = iota // a side's first FIN
	CloseACK                         // the first ACK of the other side's FIN
	CloseRST                         // a RST its receiver took
	CloseIgnoredRST                  // a RST its receiver did not take (RSTCheck)
)

// String returns "FIN", "ACK", "RST" or "ignored-RST".
func (k CloseKind) String() string {
	switch k {
	case CloseFIN:
		return "FIN"
	case CloseACK:
		return "ACK"
	case CloseIgnoredRST:
		return "ignored-RST"
	}
	return "RST"
}

// String returns the event as tcplab check writes it: "C>S FIN".
func (e CloseEvent) String() string { return e.Dir.String() + " " + e.Kind.String() }

// MaxCloseEvents bounds Ending.Events: two FINs, their two ACKs, and
// RSTs up to the bound; later RSTs are left out.
const MaxCloseEvents = 8

// Closer is who closed a connection first.
type Closer uint8

// The closers.
const (
	NoCloser     Closer = iota // no FIN: open at the end of the capture, or reset
	ClientCloser               // the client's FIN came first, and the server's acknowledges it (or is missing)
	ServerCloser               // the server's, likewise
	Simultaneous               // the FINs crossed
)

// String returns "client", "server", "simultaneous" or "none", the
// words of tcplab check's closer= property.
func (c Closer) String() string {
	switch c {
	case ClientCloser:
		return "client"
	case ServerCloser:
		return "server"
	case Simultaneous:
		return "simultaneous"
	}
	return "none"
}

// Closer returns who closed first: the side whose FIN came first, or
// Simultaneous when the FINs crossed.
func (e *Ending) Closer() Closer {
	switch {
	case e.Crossed:
		return Simultaneous
	case e.FIN[e.First].Frame == 0:
		return NoCloser
	case e.First == ServerToClient:
		return ServerCloser
	}
	return ClientCloser
}

// Complete reports whether both FINs were sent and acknowledged.
func (e *Ending) Complete() bool {
	return e.FIN[0].AckedBy != 0 && e.FIN[1].AckedBy != 0
}

// Abandoned reports whether the connection saw no FIN and no RST that
// its receiver took: it was open when the capture ended.
func (e *Ending) Abandoned() bool {
	return e.FIN[0].Frame == 0 && e.FIN[1].Frame == 0 && e.Reset.Frame == 0
}

// Side returns "client" or "server", the endpoint that sends in direction d.
func Side(d Dir) string {
	if d == ServerToClient {
		return "server"
	}
	return "client"
}

// String says in one line how the connection ended, in the words every
// tcplab command uses: "the client closed first (FIN frame 8), the server
// after it (FIN frame 10); both FINs acknowledged".
func (e *Ending) String() string { return string(e.appendTo(nil)) }

// appendTo appends String's words to dst: a part for who closed first,
// for each side's half-close and data after close, and for the RST, then
// whether the close is complete, the parts joined by "; ".
func (e *Ending) appendTo(dst []byte) []byte {
	start := len(dst)
	part := func() {
		if len(dst) > start {
			dst = append(dst, "; "...)
		}
	}
	ignored := func() {
		if r := e.Ignored; r.Frame != 0 {
			part()
			dst = append(dst, r.String()...)
			if e.NIgnored > 1 {
				dst = append(dst, " ("...)
				dst = appendInt(dst, int64(e.NIgnored))
				dst = append(dst, " RSTs ignored in all)"...)
			}
		}
	}
	if e.Abandoned() {
		// A connection with no FIN and no RST taken may still have had
		// RSTs its receiver ignored.
		dst = append(dst, "not closed: no FIN or RST by the end of the capture"...)
		ignored()
		return dst
	}
	side := func(s string, d Dir) { dst = append(append(dst, s...), Side(d)...) }
	num := func(s string, v int) { dst = appendInt(append(dst, s...), int64(v)) }
	first, second := e.First, 1-e.First
	switch e.Closer() {
	case Simultaneous:
		side("simultaneous close: the FINs crossed (the ", first)
		num("'s frame ", e.FIN[first].Frame)
		side(", the ", second)
		num("'s frame ", e.FIN[second].Frame)
		dst = append(dst, ": neither acknowledges the other), so both ends went FIN_WAIT_1 -> CLOSING -> TIME_WAIT"...)
	case ClientCloser, ServerCloser:
		side("the ", first)
		num(" closed first (FIN frame ", e.FIN[first].Frame)
		dst = append(dst, ')')
		if f := e.FIN[second].Frame; f != 0 {
			side(", the ", second)
			num(" after it (FIN frame ", f)
			dst = append(dst, ')')
		} else {
			side(", the ", second)
			dst = append(dst, " sent no FIN"...)
		}
	}
	for _, d := range [2]Dir{first, second} {
		if h := e.HalfClose[d]; h.Frame != 0 {
			part()
			side("half-close: the ", d)
			num(" sent ", h.Len)
			num(" bytes (frame ", h.Frame)
			side(") after it received the ", 1-d)
			num("'s FIN (frame ", e.FIN[1-d].Frame)
			dst = append(dst, ')')
		}
	}
	for _, d := range [2]Dir{first, second} {
		if h := e.Refused[d]; h.Frame != 0 {
			part()
			side("data after close: the ", d)
			num(" sent ", h.Len)
			num(" bytes (frame ", h.Frame)
			side(") after the ", 1-d)
			num("'s FIN (frame ", e.FIN[1-d].Frame)
			side("), and the ", 1-d)
			dst = append(dst, " answered with a RST: it had closed, not half-closed"...)
		}
	}
	if r := e.Reset; r.Frame != 0 {
		part()
		dst = r.appendTo(dst)
	}
	ignored()
	switch {
	case e.Reset.Frame != 0:
	case e.Complete():
		part()
		dst = append(dst, "both FINs acknowledged"...)
	default:
		part()
		dst = append(dst, "not finished: "...)
		n := 0
		for _, d := range [2]Dir{ClientToServer, ServerToClient} {
			switch {
			case e.FIN[d].Frame == 0:
				if n++; n > 1 {
					dst = append(dst, ", "...)
				}
				side("no FIN from the ", d)
			case e.FIN[d].AckedBy == 0:
				if n++; n > 1 {
					dst = append(dst, ", "...)
				}
				side("the ", d)
				dst = append(dst, "'s FIN never acknowledged"...)
			}
		}
	}
	return dst
}

// EndingTracker follows the close of one connection segment by segment.
// The zero value is ready to use.
type EndingTracker struct {
	e    Ending
	last [2]State // the endpoints' states before the segment now added
	sent [2]sentSeq
}

// sentSeq is what an EndingTracker knows of the segments one side sent:
// enough to tell whether the other side takes a RST (CheckRST).
type sentSeq struct {
	next     uint32 // the highest seq+len(+SYN+FIN) sent: the peer's RCV.NXT as the wire shows it
	ack      uint32 // the last ACK sent: the start of its receive window (RCV.WUP)
	isn      uint32 // its SYN's sequence number
	sackEdge uint32 // the right edge of the highest SACK block of its last segment
	win      uint16 // the raw window of its last segment
	wscale   int8   // its SYN's window scale; -1 none, wscaleCut unknown
	nextSet  bool
	ackSet   bool
	synSeen  bool
	sack     bool // its last segment had SACK blocks
	winSYN   bool // its last segment was a SYN: its window is not scaled
}

// wscaleCut is sentSeq.wscale when the snap length cut the SYN's options.
const wscaleCut = -2

// maxWindow is the largest receive window TCP can announce: 65535 << 14
// (RFC 7323 section 2.3), the window assumed when the scale is unknown.
const maxWindow = 65535 << 14

// CheckRST says what the receiver of seg, a RST sent in direction d, made
// of it, by RFC 5961 section 3 as Linux applies it (see RSTCheck), from
// the segments added so far and the receiver's state before seg. The
// receiver's RCV.NXT is read from the wire as the next sequence number of
// the RST's sender: the highest seq+len(+SYN+FIN) it sent; its window is
// the last it announced. The wire cannot know what the receiver did not
// take in: a capture taken away from the receiver (on the sender's host,
// or on a path that lost segments after the capture point) shows data the
// receiver never got, and then its RCV.NXT is lower than the wire says; a
// RST whose sender sent nothing before it (a capture begun after its
// last segment, or a third party's) has no RCV.NXT to compare, and is
// taken. A receiver in an unknown, CLOSED or LISTEN state takes it too.
func (t *EndingTracker) CheckRST(seg *Segment, d Dir) (RSTCheck, int32) {
	o := 1 - d
	snd, rcv := &t.sent[d], &t.sent[o]
	switch t.last[o] {
	case Unknown, Closed, Listen:
		return RSTReset, 0
	case SynSent:
		// RFC 9293 3.10.7.3: in SYN_SENT, a RST counts only when its ACK
		// acknowledges the SYN (SND.UNA < SEG.ACK <= SND.NXT); Linux drops
		// any other (tcp_rcv_synsent_state_process).
		if seg.Flags.Has(ACK) && rcv.synSeen && seqGT(seg.Ack, rcv.isn) && seqGE(rcv.next, seg.Ack) {
			return RSTReset, 0
		}
		return RSTDropped, 0
	}
	if !snd.nextSet {
		return RSTReset, 0
	}
	past := int32(seg.Seq - snd.next)
	switch {
	case past == 0:
		return RSTReset, 0
	case past == -1 && t.e.FIN[d].Frame != 0 && t.last[o] != TimeWait:
		// The receiver has its sender's FIN: Linux takes RCV.NXT-1 too in
		// CLOSE_WAIT, LAST_ACK and CLOSING (tcp_reset_check).
		return RSTReset, 0
	case rcv.sack && seg.Seq == rcv.sackEdge:
		// The right edge of the receiver's highest SACK block (Linux,
		// tcp_validate_incoming).
		return RSTReset, 0
	}
	// The window: from the receiver's last ACK (its RCV.WUP) to RCV.NXT
	// plus the window it last announced (Linux's tcp_sequence).
	lo := snd.next
	if rcv.ackSet && seqGT(lo, rcv.ack) {
		lo = rcv.ack
	}
	win := uint32(maxWindow)
	if s, ok := t.scale(o); ok {
		win = uint32(rcv.win) << s
	}
	in := seqGE(seg.Seq, lo) && seqGE(snd.next+win, seg.Seq)
	switch {
	case t.last[o] == SynReceived && in:
		// Before the handshake's last ACK Linux takes any RST in the
		// window (tcp_check_req).
		return RSTReset, 0
	case in && t.last[o] != TimeWait && t.last[o] != SynReceived:
		return RSTChallenged, past
	}
	return RSTDropped, past
}

// scale returns the shift of the windows side o announces, when known.
func (t *EndingTracker) scale(o Dir) (uint8, bool) {
	a, b := &t.sent[o], &t.sent[1-o]
	switch {
	case !a.synSeen || !b.synSeen || a.wscale == wscaleCut || b.wscale == wscaleCut:
		return 0, false
	case a.winSYN || a.wscale < 0 || b.wscale < 0:
		return 0, true
	}
	return uint8(min(a.wscale, 14)), true
}

// see records what seg, sent in direction d, tells of its sender's
// sequence space. A RST takes no sequence space and is not counted.
func (t *EndingTracker) see(seg *Segment, d Dir) {
	s := &t.sent[d]
	f := seg.Flags
	if f.Has(SYN) {
		s.isn, s.synSeen, s.wscale = seg.Seq, true, seg.Options.WindowScale
		if seg.Problem == OptionsCut {
			s.wscale = wscaleCut
		}
		s.next, s.nextSet = seg.Seq, true
	}
	if !f.Has(RST) {
		end := seg.Seq + uint32(seg.Len)
		if f&(SYN|FIN) != 0 {
			end++
		}
		if !s.nextSet || seqGT(end, s.next) {
			s.next, s.nextSet = end, true
		}
	}
	if f.Has(ACK) {
		s.ack, s.ackSet = seg.Ack, true
	}
	s.win, s.winSYN = seg.Window, f.Has(SYN)
	s.sack = seg.Options.NSACK > 0
	if s.sack {
		s.sackEdge = seg.Options.SACK[0].Right
		for _, b := range seg.Options.SACK[1:seg.Options.NSACK] {
			if seqGT(b.Right, s.sackEdge) {
				s.sackEdge = b.Right
			}
		}
	}
}

// Add records seg, sent in direction d; client and server are the
// endpoints' states after it, as the Annotator infers them (Unknown when
// not known). Segments must come in capture order.
func (t *EndingTracker) Add(seg *Segment, d Dir, client, server State) {
	if seg.Problem == HeaderCut {
		return // its flags and numbers may be lost: nothing to tell
	}
	e := &t.e
	o := 1 - d
	f := seg.Flags
	if f.Has(RST) {
		check, past := t.CheckRST(seg, d)
		if check != RSTReset {
			// Its receiver did not take it: nothing changes but the count.
			if e.Ignored.Frame == 0 {
				e.Ignored = IgnoredRST{Frame: seg.Frame, By: d, Check: check, Past: past, Peer: t.last[o]}
			}
			e.NIgnored++
			e.event(CloseEvent{Dir: d, Kind: CloseIgnoredRST, Frame: seg.Frame})
			t.see(seg, d)
			t.last[0], t.last[1] = client, server
			return
		}
		// Data the other side sent after this side's FIN, answered by a
		// RST: this side had closed, and refused it.
		if h := e.HalfClose[o]; h.Frame != 0 && e.Refused[o].Frame == 0 {
			e.Refused[o], e.HalfClose[o] = h, DataAfterFIN{}
		}
		if e.Reset.Frame == 0 {
			e.Reset = ResetSent{Frame: seg.Frame, By: d, State: t.last[d], Peer: t.last[o]}
		}
		e.event(CloseEvent{Dir: d, Kind: CloseRST, Frame: seg.Frame})
	}
	// What the segment's ACK acknowledges comes before its own FIN.
	ackEv := -1
	acksPeer := f.Has(ACK) && e.FIN[o].Frame != 0 && seqGE(seg.Ack, e.FIN[o].Seq+1)
	if acksPeer && e.FIN[o].AckedBy == 0 && !f.Has(RST) {
		e.FIN[o].AckedBy = seg.Frame
		ackEv = int(e.nEvents)
		e.event(CloseEvent{Dir: d, Kind: CloseACK, Frame: seg.Frame})
	}
	// New data after the other side's FIN: data that FIN did not
	// acknowledge (a retransmission of what it did is not new).
	if seg.Len > 0 && e.FIN[o].Frame != 0 && !f.Has(RST) && seqGT(seg.Seq+uint32(seg.Len), e.finAck(o)) {
		switch {
		case acksPeer && e.HalfClose[d].Frame == 0:
			e.HalfClose[d] = DataAfterFIN{Frame: seg.Frame, Len: seg.Len}
		case !acksPeer && e.Unread[d].Frame == 0:
			e.Unread[d] = DataAfterFIN{Frame: seg.Frame, Len: seg.Len}
		}
	}
	if f.Has(FIN) && !f.Has(RST) && e.FIN[d].Frame == 0 {
		e.FIN[d] = FINSent{Frame: seg.Frame, Seq: seg.Seq + uint32(seg.Len), Ack: seg.Ack, Data: seg.Len, AcksPeer: acksPeer}
		if e.FIN[o].Frame == 0 {
			e.First = d
		} else if !acksPeer && !e.FIN[o].AcksPeer {
			e.Crossed = true
		}
		if ackEv >= 0 && ackEv < int(e.nEvents) {
			e.events[ackEv].Merged = true
		}
		e.event(CloseEvent{Dir: d, Kind: CloseFIN, Frame: seg.Frame})
	}
	t.see(seg, d)
	t.last[0], t.last[1] = client, server
}

// finAck returns the acknowledgement number d's FIN carried: what d had
// received of the other side when it closed.
func (e *Ending) finAck(d Dir) uint32 { return e.FIN[d].Ack }

// event appends ev while there is room.
func (e *Ending) event(ev CloseEvent) {
	if int(e.nEvents) < MaxCloseEvents {
		e.events[e.nEvents] = ev
		e.nEvents++
	}
}

// Ending returns the facts as they stand.
func (t *EndingTracker) Ending() Ending { return t.e }

// EndingOf runs an EndingTracker over the packets of one connection, in
// capture order.
func EndingOf(pkts []Packet) Ending {
	var t EndingTracker
	for i := range pkts {
		p := &pkts[i]
		t.Add(&p.Segment, p.Annotation.Dir, p.Annotation.Client, p.Annotation.Server)
	}
	return t.Ending()
}

// EndingAt is EndingOf over the packets of pkts at idx, one connection's
// among others.
func EndingAt(pkts []Packet, idx []int) Ending {
	var t EndingTracker
	for _, i := range idx {
		p := &pkts[i]
		t.Add(&p.Segment, p.Annotation.Dir, p.Annotation.Client, p.Annotation.Server)
	}
	return t.Ending()
}

// seqGE reports a >= b in sequence space.
func seqGE(a, b uint32) bool { return int32(a-b) >= 0 }
