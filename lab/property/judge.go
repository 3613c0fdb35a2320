package property

import (
	"fmt"
	"slices"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// MaxFrames bounds the frames a failing Result lists; its Detail says when
// there were more.
const MaxFrames = 20

// The context of a failure: the segments from contextBefore before the
// first frame that breaks the property to contextAfter after the last, at
// most contextLines of them.
const (
	contextBefore = 3
	contextAfter  = 3
	contextLines  = 20
)

// kind is what a Property asserts, read from its name once.
type kind uint8

const (
	kindHandshake kind = iota
	kindNoRST
	kindNoRetransmission
	kindNoZeroWindow
	kindCloser
	kindHalfClose
	kindTeardown
	kindKeepalive
	kindMaxSYNRetries
)

func kindOf(name string) kind {
	switch name {
	case "no-rst":
		return kindNoRST
	case "no-retransmission":
		return kindNoRetransmission
	case "no-zero-window":
		return kindNoZeroWindow
	case "closer":
		return kindCloser
	case "half-close":
		return kindHalfClose
	case "teardown":
		return kindTeardown
	case "keepalive":
		return kindKeepalive
	case "max-syn-retries":
		return kindMaxSYNRetries
	}
	return kindHandshake
}

// readsEnding tells the properties judged on capture.Ending.
func (k kind) readsEnding() bool {
	return k == kindCloser || k == kindHalfClose || k == kindTeardown
}

// retransmitted are the labels of a retransmission.
var retransmitted = capture.Labels(0).With(capture.Retransmission).With(capture.FastRetransmission).With(capture.SpuriousRetransmission)

// breaks reports whether the segment l counts against a property that
// counts segments: a RST, a retransmission, a zero window, a SYN from the
// client.
func (k kind) breaks(l *line) bool {
	switch k {
	case kindNoRST:
		return l.flags&capture.RST != 0
	case kindNoRetransmission:
		return l.labels&retransmitted != 0
	case kindNoZeroWindow:
		return l.labels.Has(capture.ZeroWindow)
	case kindMaxSYNRetries:
		return l.dir == capture.ClientToServer && l.flags&(capture.SYN|capture.ACK) == capture.SYN
	}
	return false
}

// line is what a context line shows of a segment, kept in place of the
// packet.
type line struct {
	idx            int // the segment's place in the connection, from 0
	frame          int
	time           time.Time
	relSeq, relAck uint32
	len            int
	labels         capture.Labels
	flags          capture.Flags
	dir            capture.Dir
}

func lineOf(p *capture.Packet, idx int) line {
	return line{idx: idx, frame: p.Segment.Frame, time: p.Segment.Time, relSeq: p.Annotation.RelSeq, relAck: p.Annotation.RelAck,
		len: p.Segment.Len, labels: p.Annotation.Labels, flags: p.Segment.Flags, dir: p.Annotation.Dir}
}

// format writes l as the scenario matcher writes a segment.
func (l *line) format(start time.Time) string {
	p := capture.Packet{
		Segment:    capture.Segment{Frame: l.frame, Time: l.time, Flags: l.flags, Len: l.len},
		Annotation: capture.Annotation{Dir: l.dir, RelSeq: l.relSeq, RelAck: l.relAck, Labels: l.labels},
	}
	return expect.Format(&p, start)
}

// judged is what a Judge keeps for one property as the segments go by.
type judged struct {
	kind kind
	// Segments that break a property that counts them (for
	// max-syn-retries, the client's SYNs): how many, the first MaxFrames
	// frames, the places of the first and the last.
	count       int
	frames      []int
	first, last int
	// handshake: the places of the SYN/ACK and of the ACK that completes
	// it (-1: not yet), and a failure decided on the way.
	synAck, ack int
	decided     bool
	why         string
	whyFrame    int
	// keepalive: the first probe (-1: none yet), and the frame that
	// answered it.
	probe    int
	probeDir capture.Dir
	answer   int
}

// Judge judges properties on one connection fed to it segment by segment,
// in capture order, keeping only what they need: counts, the first frames
// that break each, the few segments around them for the context lines,
// and a capture.EndingTracker for the properties about the close. Its
// memory is bounded whatever the length of the connection, and its time
// is linear in it.
type Judge struct {
	props  []Property
	st     []judged
	start  time.Time // of the capture, for the times shown
	n      int       // segments seen
	end    capture.EndingTracker
	ending bool // a property reads the Ending
	fin    bool // a FIN or RST was seen: the Ending may change
	// ring holds the last contextBefore segments; kept the segments of
	// the contexts opened so far, in order; keepTo the place up to which
	// (excluded) segments are kept.
	ring   [contextBefore]line
	kept   []line
	keepTo int
}

// NewJudge returns a Judge of props for one connection of a capture that
// started at start (the times shown are relative to it; the zero time
// shows each segment at +0).
func NewJudge(props []Property, start time.Time) *Judge {
	j := &Judge{props: props, st: make([]judged, len(props)), start: start}
	for k, p := range props {
		s := &j.st[k]
		s.kind = kindOf(p.name)
		s.synAck, s.ack, s.probe = -1, -1, -1
		j.ending = j.ending || s.kind.readsEnding()
	}
	return j
}

// Add feeds the connection's next segment to the judge.
func (j *Judge) Add(p *capture.Packet) {
	i := j.n
	l := lineOf(p, i)
	j.fin = j.fin || p.Segment.Flags&(capture.FIN|capture.RST) != 0
	if j.ending && j.fin {
		// The frames a close property shows are the Ending's events:
		// keep the segments around each of them.
		before := j.end.Ending()
		j.end.Add(&p.Segment, p.Annotation.Dir, p.Annotation.Client, p.Annotation.Server)
		if j.end.Ending() != before {
			j.keep(i)
		}
	} else {
		j.end.Add(&p.Segment, p.Annotation.Dir, p.Annotation.Client, p.Annotation.Server)
	}
	for k := range j.st {
		j.update(&j.st[k], p, &l)
	}
	if i < j.keepTo {
		j.kept = append(j.kept, l)
	}
	j.ring[i%contextBefore] = l
	j.n++
}

// keep keeps the segments of a context that begins contextBefore segments
// before segment i.
func (j *Judge) keep(i int) {
	lo := max(0, i-contextBefore)
	for k := max(lo, j.keepTo); k < i; k++ {
		j.kept = append(j.kept, j.ring[k%contextBefore])
	}
	j.keepTo = max(j.keepTo, lo+contextLines)
}

// update records what segment p, at l.idx, means for one property.
func (j *Judge) update(s *judged, p *capture.Packet, l *line) {
	i := l.idx
	switch s.kind {
	case kindHandshake:
		j.handshakeAdd(s, p, i)
	case kindNoRST, kindNoRetransmission, kindNoZeroWindow, kindMaxSYNRetries:
		if !s.kind.breaks(l) {
			return
		}
		s.count++
		// max-syn-retries shows the retries: the SYNs after the first.
		if s.kind == kindMaxSYNRetries && s.count == 1 {
			s.whyFrame = l.frame
			return
		}
		if len(s.frames) == 0 {
			s.first = i
			j.keep(i)
		}
		if len(s.frames) < MaxFrames {
			s.frames = append(s.frames, l.frame)
		}
		s.last = i
	case kindKeepalive:
		a := &p.Annotation
		switch {
		case s.probe < 0 && a.Labels.Has(capture.KeepAlive):
			s.probe, s.probeDir, s.whyFrame = i, a.Dir, l.frame
			j.keep(i)
		case s.probe >= 0 && s.answer == 0 && a.Labels.Has(capture.KeepAliveACK) && a.Dir != s.probeDir:
			s.answer = l.frame
		}
	}
}

// handshakeAdd follows the opening: SYN, SYN/ACK, ACK.
func (j *Judge) handshakeAdd(s *judged, p *capture.Packet, i int) {
	if s.decided || s.ack >= 0 {
		return
	}
	seg, a := &p.Segment, &p.Annotation
	if i == 0 {
		j.keep(i)
		s.whyFrame = seg.Frame
		if f := seg.Flags; f&(capture.SYN|capture.ACK) != capture.SYN {
			s.decided = true
			s.why = fmt.Sprintf("the capture begins in the middle of the connection: its first segment is %s %s, not the client's SYN", a.Dir, f)
			return
		}
	}
	switch {
	case s.synAck < 0 && a.Dir == capture.ServerToClient && seg.Flags&(capture.SYN|capture.ACK|capture.RST) == capture.SYN|capture.ACK:
		s.synAck, s.frames = i, append(s.frames, seg.Frame)
		j.keep(i)
	case s.synAck >= 0 && a.Dir == capture.ClientToServer && seg.Flags&capture.ACK != 0 && seg.Flags&(capture.SYN|capture.RST) == 0:
		s.ack, s.frames = i, append(s.frames, seg.Frame)
	case seg.Flags&capture.RST != 0:
		s.decided = true
		s.why, s.whyFrame = fmt.Sprintf("%s RST before the handshake completed", a.Dir), seg.Frame
		j.keep(i)
	}
}

// Results returns the verdict of each property, in the order NewJudge got
// them, on the segments fed so far.
func (j *Judge) Results() []Result {
	out := make([]Result, len(j.props))
	end := j.end.Ending()
	for k, p := range j.props {
		out[k] = j.result(p, &j.st[k], &end)
	}
	return out
}

// Ending returns how the connection ended, as capture.Ending defines it,
// on the segments fed so far.
func (j *Judge) Ending() capture.Ending { return j.end.Ending() }

// result judges one property.
func (j *Judge) result(p Property, s *judged, end *capture.Ending) Result {
	r := Result{Property: p.String(), Pass: true}
	fail := func(detail string, frames ...int) Result { return j.fail(r, detail, frames...) }
	switch s.kind {
	case kindHandshake:
		return j.handshake(r, s)
	case kindNoRST:
		if s.count > 0 {
			return j.failCount(r, s, fmt.Sprintf("%d segment(s) with RST", s.count))
		}
	case kindNoRetransmission:
		if s.count > 0 {
			return j.failCount(r, s, fmt.Sprintf("%d retransmitted segment(s)", s.count))
		}
	case kindNoZeroWindow:
		if s.count > 0 {
			return j.failCount(r, s, fmt.Sprintf("%d segment(s) announce a zero window", s.count))
		}
	case kindCloser:
		return closer(r, end, p.arg, fail)
	case kindHalfClose:
		return halfClose(r, end, fail)
	case kindTeardown:
		return teardown(r, end, p.events, fail)
	case kindKeepalive:
		switch {
		case s.probe < 0:
			return fail(fmt.Sprintf("no keep-alive probe in %d segments", j.n))
		case s.answer == 0:
			return fail(fmt.Sprintf("keep-alive probe in frame %d never answered", s.whyFrame), s.whyFrame)
		}
		r.Detail = fmt.Sprintf("probe frame %d, answered in frame %d", s.whyFrame, s.answer)
	case kindMaxSYNRetries:
		if s.count > p.n+1 {
			return j.failCount(r, s, fmt.Sprintf("the client sent its SYN %d times: %d retries, more than %d", s.count, s.count-1, p.n))
		}
		r.Detail = fmt.Sprintf("%d SYN retries", max(s.count-1, 0))
	}
	return r
}

// handshake judges the opening as handshakeAdd followed it.
func (j *Judge) handshake(r Result, s *judged) Result {
	switch {
	case j.n == 0:
		return j.fail(r, "no segments")
	case s.decided:
		return j.fail(r, s.why, s.whyFrame)
	case s.synAck < 0:
		return j.fail(r, "the server never answered the SYN with SYN,ACK", s.whyFrame)
	case s.ack < 0:
		return j.fail(r, "the client never acknowledged the SYN,ACK", s.frames[0])
	}
	r.Detail = fmt.Sprintf("frames %d, %d, %d", s.whyFrame, s.frames[0], s.frames[1])
	return r
}

// failFunc fails a result for detail, showing frames.
type failFunc func(detail string, frames ...int) Result

// fail returns r failed, for detail, with the frames that break the
// property shown among their neighbours.
func (j *Judge) fail(r Result, detail string, frames ...int) Result {
	r.Pass, r.Detail, r.Frames = false, detail, frames
	first, last := -1, -1
	for k := range j.kept {
		if slices.Contains(frames, j.kept[k].frame) {
			if first < 0 {
				first = j.kept[k].idx
			}
			last = j.kept[k].idx
		}
	}
	if first >= 0 {
		r.Context = j.context(first, last, func(l *line) bool { return slices.Contains(frames, l.frame) })
	}
	return r
}

// failCount fails r for the segments s counted: it lists the first
// MaxFrames of them, and says so when there were more.
func (j *Judge) failCount(r Result, s *judged, detail string) Result {
	listed := s.count
	if s.kind == kindMaxSYNRetries {
		listed-- // the first SYN is not a retry
	}
	if listed > len(s.frames) {
		detail += fmt.Sprintf(" (the first %d listed)", len(s.frames))
	}
	r.Pass, r.Detail, r.Frames = false, detail, s.frames
	// For max-syn-retries, whyFrame is the first SYN, not a retry.
	r.Context = j.context(s.first, s.last, func(l *line) bool {
		return s.kind.breaks(l) && (s.kind != kindMaxSYNRetries || l.frame != s.whyFrame)
	})
	return r
}

// context shows the segments from contextBefore before segment first to
// contextAfter after segment last, at most contextLines, those that break
// the property marked with ">".
func (j *Judge) context(first, last int, marked func(*line) bool) []string {
	lo := max(0, first-contextBefore)
	hi := min(j.n, last+contextAfter+1, lo+contextLines)
	at, _ := slices.BinarySearchFunc(j.kept, lo, func(l line, idx int) int { return l.idx - idx })
	var lines []string
	for k := at; k < len(j.kept) && j.kept[k].idx < hi; k++ {
		l := &j.kept[k]
		mark := "  "
		if marked(l) {
			mark = "> "
		}
		lines = append(lines, mark+l.format(j.start))
	}
	return lines
}
