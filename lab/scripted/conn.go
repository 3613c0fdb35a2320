package scripted

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// TB is what the calls need of a test; *testing.T and *testing.B have
// it. A call that fails calls Fatalf and does not return.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// DefaultWindow is the window of a sent segment whose template leaves it
// unset.
const DefaultWindow = 64240

// Conn is one scripted TCP connection with the kernel: the two ports, the
// two initial sequence numbers, and how far each side's sequence has gone,
// moved only by frames really sent or matched.
type Conn struct {
	p      *Peer
	local  uint16 // the script's port
	remote uint16 // the kernel's port; 0 until its first segment (Listen)

	iss, irs       uint32 // the script's and the kernel's initial sequence numbers
	synced         bool   // irs is known
	sndNxt, rcvNxt uint32 // relative to iss and irs
	sndMax         uint32 // the end of the furthest segment sent, relative
	window         uint16 // the kernel's last window, raw

	sentSynTS, gotSynTS bool      // each SYN carried timestamps
	tsRecent            uint32    // the kernel's last TSval
	tsBase              uint32    // the script's TSval at tsStart
	tsStart             time.Time // when the connection was made

	anchor time.Time // the script's time of the previous event
	sentAt time.Time // when the kernel took in the last segment sent
	lastAt time.Time // when the kernel sent the last segment matched
}

// Dial returns a connection on which the script is the client of the
// kernel's port: its first step is usually Send of a SYN.
func (p *Peer) Dial(port uint16) *Conn {
	c := p.conn()
	c.remote = port
	return c
}

// Listen returns a connection on which the script is the server on its
// port: its first step is usually Expect of the kernel's SYN, which tells
// the kernel's port.
func (p *Peer) Listen(port uint16) *Conn {
	c := p.conn()
	c.local = port
	return c
}

func (p *Peer) conn() *Conn {
	now := time.Now()
	c := &Conn{p: p, local: p.nextPort, iss: rand.Uint32(), tsBase: 1000, tsStart: now, anchor: now}
	p.nextPort++
	return c
}

// NextSeq returns the script's next sequence number, relative: what the
// kernel's RCV.NXT should be.
func (c *Conn) NextSeq() uint32 { return c.sndNxt }

// NextAck returns the kernel's next sequence number, relative: all it has
// sent that the script matched.
func (c *Conn) NextAck() uint32 { return c.rcvNxt }

// KernelWindow returns the raw window of the kernel's last matched
// segment.
func (c *Conn) KernelWindow() uint16 { return c.window }

// KernelAddrPort returns the kernel's end of the connection (port 0 before
// a Listen connection saw its SYN).
func (c *Conn) KernelAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(c.p.KernelAddr(), c.remote)
}

// AddrPort returns the script's end of the connection.
func (c *Conn) AddrPort() netip.AddrPort { return netip.AddrPortFrom(c.p.Addr(), c.local) }

// timestamps reports whether both SYNs carried timestamps, so that every
// segment after them does (RFC 7323 3.2).
func (c *Conn) timestamps() bool { return c.sentSynTS && c.gotSynTS }

// tsNow is the script's timestamp clock: one tick a millisecond.
func (c *Conn) tsNow() uint32 {
	return c.tsBase + uint32(time.Since(c.tsStart)/time.Millisecond)
}

// Send sends the segment seg describes, its unset fields taken from the
// connection. It fails when the kernel sent something on the connection
// that no expectation took.
func (c *Conn) Send(t TB, seg TCP) {
	t.Helper()
	step := c.p.nextStep()
	err := c.send(step, seg)
	var m *Mismatch
	switch {
	case errors.As(err, &m):
		t.Fatalf("%v", err)
	case err != nil:
		t.Fatalf("step %d: send %v: %v", step, seg, err)
	}
}

func (c *Conn) send(step int, seg TCP) error {
	if err := c.clear(step, seg.String()); err != nil {
		return err
	}
	if c.remote == 0 {
		return errors.New("the kernel's port is not known yet: expect its SYN first")
	}
	w := wire{
		src: c.AddrPort(), dst: c.KernelAddrPort(), flags: seg.Flags,
		seq: c.iss + c.sndNxt, window: DefaultWindow, payload: seg.Payload,
		mss: seg.Options.MSS, wscale: seg.Options.WindowScale, sackOK: seg.Options.SACKPermitted, fastOpen: seg.Options.FastOpen, raw: seg.Options.Raw,
		identifier: c.p.ipID, ae: seg.AE,
	}
	if seg.ECN != nil {
		w.ecn = *seg.ECN
	}
	if seg.Options.AccECN != nil {
		w.raw = append([]RawOption{seg.Options.AccECN.raw()}, w.raw...)
	}
	c.p.ipID++
	rel := c.sndNxt
	if seg.Seq != nil {
		rel = *seg.Seq
		w.seq = c.iss + rel
	}
	switch {
	case seg.Ack != nil:
		w.ack = c.irs + *seg.Ack
	case seg.Flags.Has(ACK):
		if !c.synced {
			return errors.New("ACK of nothing: the kernel's SYN was not matched yet; give Ack")
		}
		w.ack = c.irs + c.rcvNxt
	}
	if seg.Window != nil {
		w.window = *seg.Window
	}
	if seg.Urgent != nil {
		w.urgent = *seg.Urgent
	}
	o := seg.Options
	if o.TSVal != nil || o.TSEcr != nil || (c.timestamps() && !seg.Flags.Has(RST)) {
		w.ts, w.tsVal, w.tsEcr = true, c.tsNow(), c.tsRecent
		if o.TSVal != nil {
			// The clock goes on from the script's value.
			c.tsBase += *o.TSVal - w.tsVal
			w.tsVal = *o.TSVal
		}
		if o.TSEcr != nil {
			w.tsEcr = *o.TSEcr
		}
	}
	for _, b := range o.SACK {
		w.sack = append(w.sack, SACKBlock{Left: c.irs + b.Left, Right: c.irs + b.Right})
	}
	b, err := w.frame()
	if err != nil {
		return err
	}
	at, err := c.p.write(b, fmt.Sprintf("scripted: step %d: %s", step, c.wireLine(&w)))
	if err != nil {
		return err
	}
	if seg.Flags.Has(SYN) {
		c.sentSynTS = w.ts
	}
	if !seg.Flags.Has(RST) {
		end := rel + uint32(len(seg.Payload))
		if seg.Flags.Has(SYN) {
			end++
		}
		if seg.Flags.Has(FIN) {
			end++
		}
		if rel == c.sndNxt {
			c.sndNxt = end
		}
		if after(end, c.sndMax) {
			c.sndMax = end
		}
	}
	c.anchor, c.sentAt = at, at
	return nil
}

// Expect waits up to timeout for the kernel's next segment on the
// connection and returns it; it fails if none comes or if the first that
// comes does not match want.
func (c *Conn) Expect(t TB, want TCP, timeout time.Duration) Segment {
	t.Helper()
	step := c.p.nextStep()
	got, err := c.expect(step, want, time.Now().Add(timeout), nil)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return got
}

// ExpectAt is Expect of a segment due after the previous event (the
// script's last send, or the time the last timed expectation was due),
// within the peer's Tolerance of after, neither earlier nor later.
func (c *Conn) ExpectAt(t TB, want TCP, after time.Duration) Segment {
	t.Helper()
	step := c.p.nextStep()
	due := &due{at: c.anchor.Add(after), after: after, tol: c.p.cfg.Tolerance.Of(after)}
	got, err := c.expect(step, want, due.at.Add(due.tol), due)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return got
}

// ExpectAfter is ExpectAt of a segment whose timer the kernel started
// when it sent the last segment the script matched, such as a
// retransmission after a retransmission: it is due after that segment's
// own time, not after when it was due, since the kernel's timers run on
// from when they really fired.
func (c *Conn) ExpectAfter(t TB, want TCP, after time.Duration) Segment {
	t.Helper()
	if !c.lastAt.IsZero() {
		c.anchor = c.lastAt
	}
	return c.ExpectAt(t, want, after)
}

// ExpectNone fails if the kernel sends anything on the connection within
// d.
func (c *Conn) ExpectNone(t TB, d time.Duration) {
	t.Helper()
	step := c.p.nextStep()
	if err := c.p.err(); err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	end := time.Now().Add(d)
	f, seen, ok := c.take(end)
	if ok && f.at.After(end) {
		c.unread(f)
		return
	}
	if ok {
		c.p.record(f.at, f.data, fmt.Sprintf("unexpected: step %d: nothing expected", step))
		t.Fatalf("%v", &Mismatch{Step: step, Want: fmt.Sprintf("nothing within %v", d), Got: c.line(f), Seen: c.lines(append(seen, f))})
	}
}

// maxNoise bounds how much longer a due segment is waited for because
// the machine was busy (Config.Noise): a machine that stalls longer has
// failed the script.
const maxNoise = 10 * time.Second

// due is when a timed expectation's segment must come: at, give or take
// tol.
type due struct {
	at    time.Time
	after time.Duration
	tol   time.Duration
}

func (c *Conn) expect(step int, want TCP, deadline time.Time, due *due) (Segment, error) {
	if err := c.p.err(); err != nil {
		return Segment{}, fmt.Errorf("step %d: %w", step, err)
	}
	wantLine := want.String()
	if due != nil {
		wantLine += fmt.Sprintf(" at +%v ± %v", due.after, due.tol)
	}
	f, seen, ok := c.take(deadline)
	// A due segment not come by its deadline is waited for as long as
	// the machine's noise since it was due allows, which grows while
	// the machine stays busy.
	for !ok && due != nil && c.p.cfg.Noise != nil {
		later := due.at.Add(due.tol + min(c.p.cfg.Noise(due.at.Add(-due.tol), time.Now()), maxNoise))
		if !later.After(deadline) {
			break
		}
		deadline = later
		var more []frame
		f, more, ok = c.take(deadline)
		seen = append(seen, more...)
	}
	if !ok {
		if due != nil && c.p.cfg.Noise != nil {
			wantLine += fmt.Sprintf(" (noise +%v)", c.p.cfg.Noise(due.at.Add(-due.tol), time.Now()).Round(time.Microsecond))
		}
		return Segment{}, &Mismatch{Step: step, Want: wantLine, Seen: c.lines(seen)}
	}
	got := c.relative(f)
	var parts []frame
	if c.p.cfg.Aggregate && want.Len != nil && len(got.Payload) > 0 && len(got.Payload) < *want.Len {
		var more []frame
		got, parts, more = c.aggregate(f, got, *want.Len, deadline)
		seen = append(seen, more...)
	}
	rows := diff(want, got)
	if due == nil && f.at.After(deadline) {
		rows = append(rows, Row{Field: "time", Got: fmt.Sprintf("%v late", f.at.Sub(deadline).Round(time.Millisecond)), Want: "by the timeout"})
	}
	var noise time.Duration
	if due != nil {
		var in bool
		if in, noise = Within(f.at, due.at, due.tol, c.p.cfg.Noise); !in {
			want := fmt.Sprintf("+%v ± %v", due.after, due.tol)
			if noise > 0 {
				want += fmt.Sprintf(" (late by noise +%v)", noise.Round(time.Microsecond))
			}
			got := fmt.Sprintf("%v", f.at.Sub(due.at.Add(-due.after)).Round(time.Millisecond))
			if !strings.HasPrefix(got, "-") {
				got = "+" + got
			}
			rows = append(rows, Row{Field: "time", Got: got, Want: want})
		}
	}
	if len(rows) > 0 {
		c.p.record(f.at, f.data, fmt.Sprintf("unexpected: step %d: want %s", step, wantLine))
		for _, g := range parts {
			c.p.record(g.at, g.data, fmt.Sprintf("unexpected: step %d: want %s (part of the segment)", step, wantLine))
		}
		return got, &Mismatch{Step: step, Want: wantLine, Got: c.line(f), Rows: rows, Seen: c.lines(append(append(seen, f), parts...))}
	}
	c.p.record(f.at, f.data, fmt.Sprintf("expected: step %d: %s", step, wantLine))
	for i, g := range parts {
		c.p.record(g.at, g.data, fmt.Sprintf("expected: step %d: %s (part %d of %d)", step, wantLine, i+2, len(parts)+1))
	}
	if due != nil {
		c.p.timed(Timing{Step: step, Due: due.after, Offset: f.at.Sub(due.at), Tolerance: due.tol + noise, Noise: noise})
	}
	c.advance(f, got)
	c.lastAt = f.at
	if due != nil {
		c.anchor = due.at
	} else {
		c.anchor = f.at
	}
	return got, nil
}

// aggregate joins to first (got, relative) the connection's next
// segments that follow it in sequence, each but the last as long as the
// one before, until their payloads make n bytes or more
// (Config.Aggregate). It returns the joined segment, the frames it took
// after first, and the other connections' frames seen meanwhile. A
// frame that does not follow is put back for the next step.
func (c *Conn) aggregate(first frame, got Segment, n int, deadline time.Time) (Segment, []frame, []frame) {
	var parts, seen []frame
	payload := slices.Clone(got.Payload)
	last := len(got.Payload)
	firstSeg, lastSeg := got, got
	// The parts come in one burst, or nearly (packetdrill waits for
	// them as for any packet): a second more for each.
	for len(payload) < n {
		if now := time.Now().Add(time.Second); deadline.Before(now) {
			deadline = now
		}
		f, more, ok := c.take(deadline)
		seen = append(seen, more...)
		if !ok {
			break
		}
		g := c.relative(f)
		// As packetdrill compares two parts: all of the header but
		// FIN, PSH and CWR (which the kernel's GSO puts on one part
		// only), and the length.
		loose := FIN | PSH | CWR
		follows := g.Seq == firstSeg.Seq+uint32(len(payload)) && g.Flags&^loose == lastSeg.Flags&^loose && g.AE == lastSeg.AE &&
			g.Ack == lastSeg.Ack && g.Window == lastSeg.Window
		// As packetdrill: every part but the last as long as the one
		// before; a last one past n is taken, and the length fails.
		if !follows || len(g.Payload) == 0 || len(payload)+len(g.Payload) < n && len(g.Payload) != last {
			c.unread(f)
			break
		}
		parts = append(parts, f)
		payload = append(payload, g.Payload...)
		lastSeg = g
		last = len(g.Payload)
	}
	// packetdrill's joined segment: the last part's header (its flags,
	// window, options, ECN field) with the first's sequence number and
	// CWR flag, and every part's payload.
	got = lastSeg
	got.At, got.Seq = firstSeg.At, firstSeg.Seq
	got.Flags = lastSeg.Flags&^CWR | firstSeg.Flags&CWR
	got.Payload = payload
	return got, parts, seen
}

// advance moves the connection's state past a matched segment of the
// kernel.
func (c *Conn) advance(f frame, got Segment) {
	if c.remote == 0 {
		c.remote = f.seg.Src.Port()
	}
	c.window = got.Window
	// An ACK past the next sequence number covers segments the script
	// sent out of order, and filled: the script goes on from there.
	if got.Flags.Has(ACK) && after(got.Ack, c.sndNxt) && !after(got.Ack, c.sndMax) {
		c.sndNxt = got.Ack
	}
	if got.Options.HasTimestamps {
		c.tsRecent = got.Options.TSVal
	}
	if got.Flags.Has(SYN) && !c.synced {
		c.irs, c.synced = f.seg.Seq, true
		c.gotSynTS = got.Options.HasTimestamps
		c.rcvNxt = 1 + uint32(len(got.Payload))
		return
	}
	if got.Seq == c.rcvNxt && !got.Flags.Has(RST) {
		c.rcvNxt += uint32(len(got.Payload))
		if got.Flags.Has(FIN) {
			c.rcvNxt++
		}
	}
}

// after reports whether sequence number a comes after b, modulo 2^32.
func after(a, b uint32) bool { return int32(a-b) > 0 }

// owns reports whether f is a segment of the connection. Before the
// kernel's port is known (Listen), only a SYN starts the connection: what
// an earlier connection on the same port of the script's left is not
// this one's.
func (c *Conn) owns(f frame) bool {
	return f.tcp && f.seg.Src.Addr() == c.p.KernelAddr() && f.seg.Dst.Addr() == c.p.Addr() &&
		f.seg.Dst.Port() == c.local && (c.remote == 0 && f.seg.Flags.Has(SYN) || f.seg.Src.Port() == c.remote)
}

// take returns the kernel's next segment on the connection, sent by
// deadline, and the frames of other connections seen meanwhile, which
// stay for their own connections' expectations. At the deadline it waits
// for the tap's reader to catch up (Peer.settle), so a segment the kernel
// sent in time counts even when the reader was late to a CPU; the
// caller judges the segment's time, which may be past deadline.
func (c *Conn) take(deadline time.Time) (f frame, seen []frame, ok bool) {
	for i, f := range c.p.pending {
		if c.owns(f) {
			c.p.pending = append(c.p.pending[:i], c.p.pending[i+1:]...)
			return f, nil, true
		}
	}
	// poll takes what is queued; a select with a fired timer would pick
	// among the two at random.
	poll := func() (frame, bool) {
		for {
			select {
			case f := <-c.p.inbox:
				if c.owns(f) {
					return f, true
				}
				seen = append(seen, f)
				c.p.other(f)
			default:
				return frame{}, false
			}
		}
	}
	if f, ok := poll(); ok {
		return f, seen, true
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case f := <-c.p.inbox:
			if c.owns(f) {
				return f, seen, true
			}
			seen = append(seen, f)
			c.p.other(f)
		case <-timer.C:
			c.p.settle()
			f, ok := poll()
			return f, seen, ok
		}
	}
}

// unread puts back a segment that came after the step that took it, for
// the next step.
func (c *Conn) unread(f frame) {
	c.p.pending = append([]frame{f}, c.p.pending...)
}

// Segment is a segment of the kernel's as the script saw it: sequence
// numbers relative, as in templates.
type Segment struct {
	At       time.Time // when the device gave it
	Flags    capture.Flags
	Seq, Ack uint32
	Window   uint16
	Options  capture.Options // SACK blocks relative to the script's sequence
	Payload  []byte
	// FastOpenCookie is the cookie of the segment's Fast Open option
	// (kind 34, or 254 with the magic 0xF989); nil when it has none or
	// asks for one.
	FastOpenCookie []byte
	// ECN is the IP header's ECN field, AE the AccECN flag, and AccECN
	// the AccECN option (nil when absent).
	ECN    ECN
	AE     bool
	AccECN *AccECN
	// Urgent is the urgent pointer field.
	Urgent uint16
}

// relative returns f, a segment of the connection, with its sequence
// numbers relative.
func (c *Conn) relative(f frame) Segment {
	s := &f.seg
	got := Segment{At: f.at, Flags: s.Flags, Seq: s.Seq - c.irs, Ack: s.Ack - c.iss, Window: s.Window, Options: s.Options}
	if s.Flags.Has(SYN) && !c.synced {
		got.Seq = 0
	}
	if !s.Flags.Has(ACK) {
		got.Ack = s.Ack
	}
	for i := range got.Options.NSACK {
		b := &got.Options.SACK[i]
		b.Left, b.Right = b.Left-c.iss, b.Right-c.iss
	}
	got.FastOpenCookie = fastOpenCookie(f.data)
	got.ECN, got.AE, got.AccECN = ecnOf(f.data)
	got.Urgent = urgentOf(f.data)
	if s.Len > 0 && s.Len <= len(f.data) {
		got.Payload = f.data[len(f.data)-s.Len:]
	}
	return got
}
