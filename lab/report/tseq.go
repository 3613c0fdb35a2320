package report

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// TimeSeqFile is the time-sequence graph of a scenario whose capture
// carries data; a scenario without data has none.
const TimeSeqFile = "tseq.svg"

// ErrNoData is TimeSequence's error for packets that carry no payload: a
// time-sequence graph of a handshake alone would be an empty frame.
var ErrNoData = errors.New("no TCP segment carries data")

// TimeSeqConns bounds the connections a time-sequence graph draws: each
// gets a panel per direction that carries data, and the panels of many
// connections read as nothing.
const TimeSeqConns = 4

// The graph's geometry, in SVG user units: as wide as the ladder, one
// plot per direction with room on its left for the sequence axis.
const (
	tseqWidth  = ladderWidth
	tseqLeft   = 96  // left edge of a plot: the sequence axis's labels are left of it
	tseqRight  = 30  // right margin
	tseqPlotH  = 300 // height of a plot
	tseqTick   = 5   // length of an axis tick
	tseqLegend = 22  // height of a row of the legend
)

// tseqMarks bounds the marks of one kind in one plot. Marks less than a
// pixel apart are merged first, so only a pathological capture reaches
// it; the graph then says how many segments it left out.
const tseqMarks = 4000

// tseqKind is how a data segment fared, and so how its bar is coloured.
type tseqKind uint8

const (
	tseqData       tseqKind = iota // sent once, in order
	tseqRetrans                    // a retransmission (spurious ones too)
	tseqFast                       // a fast retransmission
	tseqOutOfOrder                 // out of order
	tseqSACK                       // not data: a SACK block of the receiver
	tseqZeroWin                    // not data: a zero window of the receiver
	numTseqKinds
)

// tseqClass names each kind's marks in the document, for tests and styles.
var tseqClass = [numTseqKinds]string{"seg data", "seg retransmission", "seg fast-retransmission", "seg out-of-order", "sack", "zero-window"}

// The graph's colours, after tcptrace's: data dark blue, the ACK line
// green, the window edge yellow (olive, to stay readable on white);
// retransmissions red. The kinds differ in shape too where it matters:
// zero windows are circles.
const (
	colourTseqFast   = "#e65100"
	colourTseqOOO    = colourState
	colourTseqACK    = colourPass
	colourTseqWindow = "#a08600"
	colourTseqSACK   = "#00838f"
	colourTseqAxis   = "#444444"
	colourTseqGrid   = "#e6e6e6"
)

var tseqColour = [numTseqKinds]string{colourArrow, colourBad, colourTseqFast, colourTseqOOO, colourTseqSACK, colourBad}

// kindOf returns the kind of a data segment's bar from its labels.
func kindOf(l capture.Labels) tseqKind {
	switch {
	case l.Has(capture.FastRetransmission):
		return tseqFast
	case l.Has(capture.Retransmission) || l.Has(capture.SpuriousRetransmission):
		return tseqRetrans
	case l.Has(capture.OutOfOrder):
		return tseqOutOfOrder
	}
	return tseqData
}

// TimeSequence returns the time-sequence graph of the connections in pkts
// that carry data, as an SVG document in the style of tcptrace and
// Wireshark's tcptrace graph: for each direction that carries data, from
// the sender's point of view, time since the connection's first segment
// across and the relative sequence number up. Each data segment is a
// vertical bar from its first byte to its end, coloured by what the
// analysis says of it (retransmission, fast retransmission, out of
// order); the receiver's cumulative ACK is a green step line, the right
// edge of its advertised window (ack + scaled window) a yellow one; its
// SACK blocks are teal bars and its zero windows red circles. Marks less
// than a pixel apart merge, so a bulk transfer's graph stays small; each
// mark's data-count says how many segments it stands for.
//
// pkts are annotated packets in capture order, TCP or not; the first
// TimeSeqConns connections with data are drawn. It returns ErrNoData when
// no segment carries data. The fixed texts are in lang; numbers and the
// protocol's words are not translated.
func TimeSequence(title string, pkts []capture.Packet, lang expect.Lang) ([]byte, error) {
	conns := tseqConnsOf(pkts)
	if len(conns) == 0 {
		return nil, ErrNoData
	}
	g := &tseqGraph{t: byLang(tseqTexts, lang)}
	drawn := conns
	if len(drawn) > TimeSeqConns {
		drawn = drawn[:TimeSeqConns]
	}
	g.header(title, conns)
	for _, c := range drawn {
		for _, d := range []capture.Dir{capture.ClientToServer, capture.ServerToClient} {
			if c.data[d] > 0 {
				g.panel(c, d, len(conns) > 1)
			}
		}
	}
	if n := len(conns) - len(drawn); n > 0 {
		g.y += 6
		g.text(ladderMargin, g.y, `class="note" font-style="italic" fill="`+colourMuted+`"`, g.t.connsLeft.n(n))
		g.y += 14
	}
	return g.document(title), nil
}

// tseqConn is one connection of the capture: its TCP packets in order.
type tseqConn struct {
	stream         int
	pkts           []*capture.Packet
	start, end     time.Time
	client, server netip.AddrPort
	data           [2]int // data segments by direction
	bytes          [2]int64
}

// tseqConnsOf returns the connections of pkts that carry data, in the
// order of their first segment.
func tseqConnsOf(pkts []capture.Packet) []*tseqConn {
	var all []*tseqConn
	byStream := map[int]*tseqConn{}
	for i := range pkts {
		p := &pkts[i]
		if !p.TCP || p.Segment.Problem == capture.HeaderCut {
			continue
		}
		c := byStream[p.Annotation.Stream]
		if c == nil {
			c = &tseqConn{stream: p.Annotation.Stream, start: p.Segment.Time, client: p.Segment.Src, server: p.Segment.Dst}
			if p.Annotation.Dir == capture.ServerToClient {
				c.client, c.server = c.server, c.client
			}
			byStream[c.stream] = c
			all = append(all, c)
		}
		c.pkts = append(c.pkts, p)
		c.end = p.Segment.Time
		if p.Segment.Len > 0 {
			c.data[p.Annotation.Dir&1]++
			c.bytes[p.Annotation.Dir&1] += int64(p.Segment.Len)
		}
	}
	var withData []*tseqConn
	for _, c := range all {
		if c.data[0]+c.data[1] > 0 {
			withData = append(withData, c)
		}
	}
	return withData
}

// tseqGraph is a graph being drawn: the elements so far and the top of
// the next thing to draw.
type tseqGraph struct {
	t      *tseqStrings
	body   bytes.Buffer
	defs   bytes.Buffer
	y      int
	panels int
}

// document wraps the body in the svg element, now that its height is known.
func (g *tseqGraph) document(title string) []byte {
	height := g.y + 16
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" font-family="%s" font-size="12">`+"\n",
		tseqWidth, height, tseqWidth, height, fontSans)
	fmt.Fprintf(&b, "<title>%s</title>\n", xmlText(fmt.Sprintf(g.t.title, title)))
	fmt.Fprintf(&b, "<defs>\n%s</defs>\n", g.defs.Bytes())
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", tseqWidth, height)
	b.Write(g.body.Bytes())
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// header draws the title, what the graph shows, and the legend.
func (g *tseqGraph) header(title string, conns []*tseqConn) {
	fmt.Fprintf(&g.body, `<text x="%d" y="28" font-size="20" font-weight="bold">%s</text>`+"\n", ladderMargin, xmlText(fmt.Sprintf(g.t.heading, title)))
	g.text(ladderMargin, 48, `fill="`+colourMuted+`"`, fmt.Sprintf(g.t.description, g.t.connections.n(len(conns))))

	// The legend flows left to right and wraps.
	x, y := ladderMargin, 72
	entry := func(class, sample, label string) {
		w := 28 + int(textWidth(label, 12, 6.4)) + 20
		if x+w > tseqWidth-ladderMargin {
			x, y = ladderMargin, y+tseqLegend
		}
		fmt.Fprintf(&g.body, `<g class="legend %s">%s`, class, fmt.Sprintf(sample, x, y))
		g.text(x+28, y+4, "", label)
		g.body.WriteString("</g>\n")
		x += w
	}
	bar := func(colour string) string {
		return `<path d="M%[1]d,%[2]dh20" stroke="` + colour + `" stroke-width="1.5" fill="none"/>`
	}
	for k, label := range []string{g.t.data, g.t.retrans, g.t.fast, g.t.outOfOrder} {
		entry(tseqClass[k], fmt.Sprintf(`<path d="M%%[1]d,%%[2]dm4,-6v12m-3,-12h6m-6,12h6" stroke="%s" stroke-width="%s" fill="none"/>`,
			tseqColour[k], barWidth(tseqKind(k))), label)
	}
	entry("ack", bar(colourTseqACK), g.t.ackLine)
	entry("window", bar(colourTseqWindow), g.t.windowLine)
	entry("sack", fmt.Sprintf(`<path d="M%%[1]d,%%[2]dm8,-6v12" stroke="%s" stroke-width="3" fill="none"/>`, colourTseqSACK), g.t.sack)
	entry("zero-window", fmt.Sprintf(`<circle cx="%%[1]d" cy="%%[2]d" r="4" transform="translate(8,0)" stroke="%s" stroke-width="1.5" fill="none"/>`, colourBad), g.t.zeroWindow)
	g.y = y + 12
}

// barWidth returns the stroke width of a kind's bars: the exceptions are
// drawn heavier than the data around them.
func barWidth(k tseqKind) string {
	if k == tseqData {
		return "1.2"
	}
	return "2"
}

// tseqScale maps time and sequence numbers to the pixels of one plot.
type tseqScale struct {
	x0, x1, yTop, yBottom float64 // the plot's edges
	dur                   float64 // seconds across
	seq0, seq1            float64 // sequence numbers up
}

func (s *tseqScale) x(sec float64) float64 {
	return math.Round((s.x0+(sec/s.dur)*(s.x1-s.x0))*10) / 10
}

func (s *tseqScale) y(seq float64) float64 {
	return math.Round((s.yBottom-(seq-s.seq0)/(s.seq1-s.seq0)*(s.yBottom-s.yTop))*10) / 10
}

// panel draws one direction of connection c, from the sender's side.
func (g *tseqGraph) panel(c *tseqConn, d capture.Dir, many bool) {
	g.panels++
	from, to, sender, receiver := c.client, c.server, g.t.client, g.t.server
	if d == capture.ServerToClient {
		from, to, sender, receiver = c.server, c.client, g.t.server, g.t.client
	}
	g.y += 18
	fmt.Fprintf(&g.body, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#bbbbbb"/>`+"\n", ladderMargin, g.y-10, tseqWidth-ladderMargin, g.y-10)
	heading := fmt.Sprintf(g.t.direction, sender, receiver)
	if many {
		heading = fmt.Sprintf(g.t.connection, c.stream) + ": " + heading
	}
	fmt.Fprintf(&g.body, `<text class="panel" x="%d" y="%d" font-size="15" font-weight="bold">%s <tspan font-family="%s" font-size="12" font-weight="normal">%s → %s</tspan></text>`+"\n",
		ladderMargin, g.y+6, xmlText(heading), fontMono, xmlText(from.String()), xmlText(to.String()))
	dur := c.end.Sub(c.start).Seconds()
	g.text(ladderMargin, g.y+24, `class="facts" fill="`+colourMuted+`"`,
		fmt.Sprintf(g.t.facts, g.t.segments.n(c.data[d&1]), bytesText(c.bytes[d&1]), secondsText(dur, g.t)))
	top := g.y + 40

	// The range of sequence numbers: the data and the ACKs, and the
	// window's edge unless it lies so far above that the data would be a
	// sliver at the bottom.
	lo, hi, edge := math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range c.pkts {
		s, a := &p.Segment, &p.Annotation
		switch {
		case a.Dir == d && s.Len > 0:
			lo, hi = math.Min(lo, float64(a.RelSeq)), math.Max(hi, float64(a.RelSeq)+float64(s.Len))
		case a.Dir != d && s.Flags.Has(capture.ACK) && s.Captured(12):
			lo, hi = math.Min(lo, float64(a.RelAck)), math.Max(hi, float64(a.RelAck))
			if a.Window != capture.WindowUnknown {
				edge = math.Max(edge, float64(a.RelAck)+float64(a.Win))
			}
		}
	}
	edgeAbove := edge > hi && edge-lo > 3*(hi-lo)
	if edge > hi && !edgeAbove {
		hi = edge
	}
	unit, yTicks := byteTicks(lo, hi, g.t)
	sc := &tseqScale{x0: tseqLeft, x1: tseqWidth - tseqRight, yTop: float64(top), yBottom: float64(top + tseqPlotH),
		dur: math.Max(dur, 1e-3), seq0: yTicks[0], seq1: yTicks[len(yTicks)-1]}
	tUnit, xTicks := timeTicks(sc.dur, g.t)
	sc.dur = xTicks[len(xTicks)-1]

	g.axes(sc, unit, yTicks, tUnit, xTicks)
	clip := fmt.Sprintf("tseq-plot-%d", g.panels)
	fmt.Fprintf(&g.defs, `<clipPath id="%s"><rect x="%g" y="%g" width="%g" height="%g"/></clipPath>`+"\n",
		clip, sc.x0, sc.yTop-1, sc.x1-sc.x0+1, sc.yBottom-sc.yTop+2)
	fmt.Fprintf(&g.body, `<g clip-path="url(#%s)">`+"\n", clip)
	left := g.marks(c, d, sc)
	g.body.WriteString("</g>\n")

	g.y = int(sc.yBottom) + 58
	var notes []string
	if edgeAbove {
		notes = append(notes, fmt.Sprintf(g.t.edgeAbove, bytesText(int64(edge))))
	}
	if left > 0 {
		notes = append(notes, g.t.marksLeft.n(left))
	}
	for _, n := range notes {
		g.text(tseqLeft, g.y, `class="note" font-style="italic" fill="`+colourMuted+`"`, n)
		g.y += 16
	}
}

// tseqMark is a bar of one or more segments (or SACK blocks, or zero
// windows) in one pixel column: y0 is its bottom, y1 its top, in pixels.
type tseqMark struct {
	x, y0, y1    float64
	first, last  int // frames
	count        int
	seqLo, seqHi float64
	open         bool
}

// tseqLine is a step line being drawn: its points, in pixels.
type tseqLine struct {
	pts     [][2]float64
	cur     float64 // the value now
	started bool
	n       int // segments that moved it
}

// step moves the line to v at x: across at the old value, then up or
// down. Within a pixel column only the last value stays.
func (l *tseqLine) step(x, y, v float64) {
	l.n++
	n := len(l.pts)
	switch {
	case !l.started:
		l.pts = append(l.pts, [2]float64{x, y})
		l.started = true
	case v == l.cur:
		return
	case n >= 2 && math.Round(l.pts[n-1][0]) == math.Round(x) && l.pts[n-2][0] == l.pts[n-1][0]:
		l.pts[n-1][1] = y
	default:
		l.pts = append(l.pts, [2]float64{x, l.pts[len(l.pts)-1][1]}, [2]float64{x, y})
	}
	l.cur = v
}

// marks draws what the plot holds and returns how many segments it left
// out for want of room.
func (g *tseqGraph) marks(c *tseqConn, d capture.Dir, sc *tseqScale) int {
	var open [numTseqKinds]tseqMark
	var done [numTseqKinds][]tseqMark
	left := 0
	add := func(k tseqKind, x, seqLo, seqHi float64, frame int) {
		y0, y1 := sc.y(seqLo), sc.y(seqHi)
		o := &open[k]
		if o.open && math.Round(o.x) == math.Round(x) && y0 >= o.y1-1 && y1 <= o.y0+1 {
			o.y0, o.y1 = math.Max(o.y0, y0), math.Min(o.y1, y1)
			o.seqLo, o.seqHi = math.Min(o.seqLo, seqLo), math.Max(o.seqHi, seqHi)
			o.last = frame
			o.count++
			return
		}
		if o.open {
			done[k] = append(done[k], *o)
		}
		if len(done[k]) >= tseqMarks {
			o.open = false
			left++
			return
		}
		*o = tseqMark{x: x, y0: y0, y1: y1, first: frame, last: frame, count: 1, seqLo: seqLo, seqHi: seqHi, open: true}
	}
	var ack, edge tseqLine
	var high float64 // the highest ACK so far: the line never goes back
	for _, p := range c.pkts {
		s, a := &p.Segment, &p.Annotation
		x := sc.x(s.Time.Sub(c.start).Seconds())
		if a.Dir == d {
			if s.Len > 0 {
				seq := float64(a.RelSeq)
				add(kindOf(a.Labels), x, seq, seq+float64(s.Len), s.Frame)
			}
			continue
		}
		if !s.Flags.Has(capture.ACK) || !s.Captured(12) {
			continue
		}
		v := float64(a.RelAck)
		if !ack.started || v > high {
			high = v
		}
		ack.step(x, sc.y(high), high)
		if a.Window != capture.WindowUnknown {
			e := v + float64(a.Win)
			edge.step(x, sc.y(e), e)
		}
		if a.Labels.Has(capture.ZeroWindow) {
			add(tseqZeroWin, x, v, v, s.Frame)
		}
		// SACK edges are raw: the same offset as the ACK's makes them
		// relative.
		base := s.Ack - a.RelAck
		for _, blk := range s.Options.SACK[:s.Options.NSACK] {
			add(tseqSACK, x+2, float64(blk.Left-base), float64(blk.Right-base), s.Frame)
		}
	}
	xEnd := sc.x(c.end.Sub(c.start).Seconds())
	for _, l := range []*tseqLine{&ack, &edge} {
		if l.started {
			l.pts = append(l.pts, [2]float64{xEnd, l.pts[len(l.pts)-1][1]})
		}
	}
	g.line("window", &edge, colourTseqWindow)
	g.line("ack", &ack, colourTseqACK)
	for k := range open {
		if open[k].open {
			done[k] = append(done[k], open[k])
		}
	}
	// Data under the exceptions, so a retransmission over its original
	// shows.
	for _, k := range []tseqKind{tseqSACK, tseqData, tseqOutOfOrder, tseqFast, tseqRetrans, tseqZeroWin} {
		for i := range done[k] {
			g.mark(k, &done[k][i])
		}
	}
	return left
}

// line draws a step line; its data-count is how many segments moved it.
func (g *tseqGraph) line(class string, l *tseqLine, colour string) {
	if !l.started {
		return
	}
	fmt.Fprintf(&g.body, `<polyline class="%s" data-count="%d" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="`, class, l.n, colour)
	for i, p := range l.pts {
		if i > 0 {
			g.body.WriteByte(' ')
		}
		fmt.Fprintf(&g.body, "%g,%g", p[0], p[1])
	}
	g.body.WriteString(`"/>` + "\n")
}

// mark draws one mark with its tooltip: a bar with ticks at its ends
// (tcptrace's I-beam) for data, a plain bar for SACK blocks, a circle for
// a zero window.
func (g *tseqGraph) mark(k tseqKind, m *tseqMark) {
	var tip string
	switch {
	case k == tseqZeroWin && m.count == 1:
		tip = fmt.Sprintf(g.t.tipZeroWindow, m.first, int64(m.seqLo))
	case k == tseqZeroWin:
		tip = fmt.Sprintf(g.t.tipZeroWindows, m.first, m.last, m.count, int64(m.seqLo))
	case m.count == 1:
		tip = fmt.Sprintf(g.t.tipOne, m.first, int64(m.seqLo), int64(m.seqHi))
	default:
		tip = fmt.Sprintf(g.t.tipMany, m.first, m.last, m.count, int64(m.seqLo), int64(m.seqHi))
	}
	attrs := fmt.Sprintf(`class="%s" data-frame="%d" data-count="%d"`, tseqClass[k], m.first, m.count)
	switch k {
	case tseqZeroWin:
		fmt.Fprintf(&g.body, `<circle %s cx="%g" cy="%g" r="3.5" stroke="%s" stroke-width="1.2" fill="none">`, attrs, m.x, m.y0, colourBad)
		fmt.Fprintf(&g.body, "<title>%s</title></circle>\n", xmlText(tip))
		return
	case tseqSACK:
		fmt.Fprintf(&g.body, `<path %s d="M%g,%gV%g" stroke="%s" stroke-width="3" fill="none">`, attrs, m.x, m.y0, math.Min(m.y1, m.y0-1), colourTseqSACK)
	default:
		fmt.Fprintf(&g.body, `<path %s d="M%g,%gV%gM%g,%gh4M%g,%gh4" stroke="%s" stroke-width="%s" fill="none">`,
			attrs, m.x, m.y0, m.y1, m.x-2, m.y0, m.x-2, m.y1, tseqColour[k], barWidth(k))
	}
	fmt.Fprintf(&g.body, "<title>%s</title></path>\n", xmlText(tip))
}

// text writes a line of text at x, y; attrs are fixed attributes, never
// user data.
func (g *tseqGraph) text(x, y int, attrs, s string) {
	fmt.Fprintf(&g.body, `<text x="%d" y="%d" %s>%s</text>`+"\n", x, y, attrs, xmlText(s))
}

// tseqStrings are the fixed texts of tseq.svg in one language.
type tseqStrings struct {
	title, heading string // the document's title and its heading: %s is the scenario or file
	description    string // %s counts the connections with data
	connections    plural
	connsLeft      plural // connections with data not drawn

	// The legend.
	data, retrans, fast, outOfOrder string
	ackLine, windowLine, sack       string
	zeroWindow                      string

	connection     string // a panel's connection: %d is its number
	direction      string // %[1]s sends to %[2]s: the client, the server
	client, server string
	facts          string // %[1]s counts the data segments, %[2]s the bytes, %[3]s the time
	segments       plural
	xAxis, yAxis   string // %s is the unit
	bytes          string // the unit of small sequence axes
	us, ms, s      string // the time units

	edgeAbove string // %s is the window edge's highest value
	marksLeft plural

	// The marks' tooltips: the frames, how many, the sequence numbers.
	tipOne, tipMany               string
	tipZeroWindow, tipZeroWindows string
}

// tseqTexts holds tseqStrings by language.
var tseqTexts = []tseqStrings{
	expect.English: {
		title:          "time-sequence graph of %s",
		heading:        "%s: time-sequence graph",
		description:    "%s with data. Per direction, the sender's view: time across, relative sequence number up (tcptrace style).",
		connections:    plural{"%d connection", "%d connections"},
		connsLeft:      plural{"… %d more connection with data not drawn …", "… %d more connections with data not drawn …"},
		data:           "data",
		retrans:        "retransmission",
		fast:           "fast retransmission",
		outOfOrder:     "out of order",
		ackLine:        "ACK",
		windowLine:     "window edge (ACK + window)",
		sack:           "SACK block",
		zeroWindow:     "zero window",
		connection:     "connection %d",
		direction:      "%s to %s",
		client:         "client",
		server:         "server",
		facts:          "%[1]s, %[2]s, in %[3]s",
		segments:       plural{"%d data segment", "%d data segments"},
		xAxis:          "time since the connection's first segment (%s)",
		yAxis:          "relative sequence number (%s)",
		bytes:          "bytes",
		us:             "µs",
		ms:             "ms",
		s:              "s",
		edgeAbove:      "The window edge lies above the graph (up to %s).",
		marksLeft:      plural{"%d segment not drawn: too many marks.", "%d segments not drawn: too many marks."},
		tipOne:         "frame %d: seq %d to %d",
		tipMany:        "frames %d to %d: %d segments, seq %d to %d",
		tipZeroWindow:  "frame %d: zero window at ack %d",
		tipZeroWindows: "frames %d to %d: %d zero windows at ack %d",
	},
	expect.Chinese: {
		title:          "%s 的时间-序号图",
		heading:        "%s: 时间-序号图",
		description:    "%s带数据. 每个方向一张图, 从发送方看: 横轴是时间, 纵轴是相对序号 (tcptrace 风格).",
		connections:    plural{"%d 个连接", "%d 个连接"},
		connsLeft:      plural{"… 另有 %d 个带数据的连接没有画出 …", "… 另有 %d 个带数据的连接没有画出 …"},
		data:           "数据",
		retrans:        "重传",
		fast:           "快速重传",
		outOfOrder:     "乱序",
		ackLine:        "确认号",
		windowLine:     "窗口右沿 (确认号 + 窗口)",
		sack:           "SACK 块",
		zeroWindow:     "零窗口",
		connection:     "连接 %d",
		direction:      "%s发往%s",
		client:         "客户端",
		server:         "服务端",
		facts:          "%[1]s, %[2]s, 用时 %[3]s",
		segments:       plural{"%d 个数据包", "%d 个数据包"},
		xAxis:          "自连接第一个包起的时间 (%s)",
		yAxis:          "相对序号 (%s)",
		bytes:          "字节",
		us:             "微秒",
		ms:             "毫秒",
		s:              "秒",
		edgeAbove:      "窗口右沿在图的上方 (最高 %s).",
		marksLeft:      plural{"%d 个包没有画出: 标记太多.", "%d 个包没有画出: 标记太多."},
		tipOne:         "第 %d 帧: 序号 %d 到 %d",
		tipMany:        "第 %d 到 %d 帧: %d 个包, 序号 %d 到 %d",
		tipZeroWindow:  "第 %d 帧: 零窗口, 确认号 %d",
		tipZeroWindows: "第 %d 到 %d 帧: %d 个零窗口, 确认号 %d",
	},
}
