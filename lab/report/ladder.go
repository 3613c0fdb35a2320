package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// The ladder's geometry, in SVG user units (pixels at 100%). The label
// between the lanes is the widest thing in a row: lanes 560 apart leave
// room for about 70 characters of 12px monospace.
const (
	ladderWidth   = 940
	ladderMargin  = 12  // left edge of the title and the time column
	ladderClientX = 200 // client lane
	ladderServerX = 760 // server lane
	ladderRow     = 44  // height of a segment's row
	ladderDetail  = 18  // extra height of a row that explains a mismatch
	ladderNote    = 14  // extra height of each line of a note under an arrow
	// ladderNoteChars is the longest note line drawn whole; a longer one
	// is cut at a comma before it (whole in the tooltip).
	ladderNoteChars = 72
	ladderGapRow    = 28  // height of a gap marker
	ladderFall      = 12  // how far an arrow falls from sender to receiver
	ladderCharW     = 7.3 // advance of a 12px monospace character
)

// ladderGap is the pause between two segments that earns a gap marker: rows
// are evenly spaced, so without one a keep-alive idle would not show.
const ladderGap = 200 * time.Millisecond

// The ladder's colours. Matched arrows are blue, anything that went wrong
// is red, so a failure shows at a glance and survives greyscale printing
// as a dashed or heavy line.
const (
	colourArrow = "#1d4f91"
	colourBad   = "#c62828"
	colourPass  = "#2e7d32"
	colourState = "#6a3d9a"
	colourMuted = "#666666"
	colourLane  = "#444444"
	// colourAmber is an interrupted run's, in index.html and
	// walkthrough.html: neither the pass's green nor the failure's red.
	colourAmber = "#b45309"
)

const (
	fontSans = "DejaVu Sans, Liberation Sans, Helvetica, Arial, " + fontCJK + ", sans-serif"
	fontMono = "DejaVu Sans Mono, Liberation Mono, Menlo, Consolas, Noto Sans Mono CJK SC, " + fontCJK + ", monospace"
	// fontCJK names fonts with Chinese characters, for a -lang zh run's
	// texts (and names written in Chinese) where the Latin fonts have none:
	// Noto/Source Han on Linux, PingFang on macOS, YaHei on Windows.
	fontCJK = "Noto Sans CJK SC, Source Han Sans SC, WenQuanYi Micro Hei, PingFang SC, Microsoft YaHei"
)

// segKind says how a segment fared against the steps, and so how its arrow
// is drawn.
type segKind uint8

const (
	segMatched  segKind = iota // matched a step
	segNoStep                  // matched no step
	segMismatch                // where the matching failed
)

// Ladder returns the ladder diagram of a scenario's segments as an SVG
// document: the client's lane on the left, the server's on the right, one
// arrow per segment in capture order with time going down, labelled with
// its flags, relative numbers, length, analysis labels and the step it
// matched. Segments that matched no step are red, the segment where the
// matching failed is red and heavy with the reason under it. Each side's
// TCP state is written at its edge when it changes. Each connection gets
// its own section. v is nil when the segments were not judged (tcplab
// annotate -ladder): every arrow is then drawn plain, with no step. The
// diagram's fixed texts (legend, lane names, markers) are in lang; the
// segments' flags, numbers, labels and states are the protocol's and stay
// as Wireshark shows them.
func Ladder(name string, pkts []capture.Packet, v *expect.Verdict, lang expect.Lang) []byte {
	return LadderNotes(name, pkts, v, lang, nil)
}

// LadderNotes is Ladder with a note under some arrows, by index of pkts:
// when another capture point saw the segment, what the kernel said after
// it. A note is one or two lines, muted; a line too long for the diagram
// is cut, whole in the arrow's tooltip.
func LadderNotes(name string, pkts []capture.Packet, v *expect.Verdict, lang expect.Lang, notes map[int][]string) []byte {
	judged := v != nil
	if v == nil {
		v = &expect.Verdict{Pass: true}
	}
	l := &ladder{v: v, judged: judged, lang: lang, t: byLang(ladderTexts, lang), mismatchAt: map[int][]*expect.Mismatch{}}
	for i := range pkts {
		if !pkts[i].TCP {
			continue
		}
		l.seen = append(l.seen, pkts[i])
		var step expect.StepNum
		var why *expect.Step
		if i < len(v.StepOf) {
			step, why = v.StepOf[i], v.Why[i]
		}
		l.stepOf, l.why = append(l.stepOf, step), append(l.why, why)
		l.notes = append(l.notes, notes[i])
	}
	seen := l.seen
	if len(seen) > 0 {
		l.start = seen[0].Segment.Time
	}
	frames := map[int]bool{}
	for i := range seen {
		frames[seen[i].Segment.Frame] = true
	}
	var loose []*expect.Mismatch // mismatches with no segment to point at
	for k := range v.Mismatches {
		m := &v.Mismatches[k]
		if m.Frame != 0 && frames[m.Frame] {
			l.mismatchAt[m.Frame] = append(l.mismatchAt[m.Frame], m)
		} else {
			loose = append(loose, m)
		}
	}

	l.header(name)
	var streams []int
	byStream := map[int][]int{}
	for i := range seen {
		s := seen[i].Annotation.Stream
		if _, ok := byStream[s]; !ok {
			streams = append(streams, s)
		}
		byStream[s] = append(byStream[s], i)
	}
	if len(seen) == 0 {
		l.y += 10
		l.text(ladderMargin, l.y, `font-style="italic" fill="`+colourMuted+`"`, l.t.noSegments)
		l.y += 20
	}
	for _, s := range streams {
		l.section(s, byStream[s], len(streams) > 1)
		l.ending(byStream[s])
	}
	for _, m := range loose {
		l.y += 4
		l.text(ladderMargin, l.y, `class="mismatch-note" fill="`+colourBad+`" font-family="`+fontMono+`"`, "✗ "+mismatchText(m, &l.t.mismatchStrings))
		l.y += 18
	}
	return l.document(name)
}

// ladder is a diagram being drawn: the elements so far and the top of the
// next row. The lanes have a layer of their own, under the arrows, since
// their length is known only once a connection's rows are drawn.
type ladder struct {
	seen       []capture.Packet // the TCP packets
	stepOf     []expect.StepNum // per packet of seen
	why        []*expect.Step   // per packet of seen
	v          *expect.Verdict
	judged     bool // v is a real verdict, not a stand-in
	lang       expect.Lang
	t          *ladderStrings // the fixed texts in lang
	start      time.Time
	mismatchAt map[int][]*expect.Mismatch // by frame
	notes      [][]string                 // per packet of seen: lines under its arrow
	lanes      bytes.Buffer
	body       bytes.Buffer
	y          int
}

// document wraps the body in the svg element, now that its height is known.
func (l *ladder) document(name string) []byte {
	height := l.y + 16
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" font-family="%s" font-size="12">`+"\n",
		ladderWidth, height, ladderWidth, height, fontSans)
	fmt.Fprintf(&b, "<title>%s</title>\n", xmlText(fmt.Sprintf(l.t.title, name)))
	b.WriteString("<defs>\n")
	for _, m := range []struct{ id, colour string }{{"head", colourArrow}, {"head-bad", colourBad}} {
		fmt.Fprintf(&b, `<marker id="%s" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="10" markerHeight="10" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`+"\n", m.id, m.colour)
	}
	b.WriteString("</defs>\n")
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", ladderWidth, height)
	b.Write(l.lanes.Bytes())
	b.Write(l.body.Bytes())
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// header draws the title, the counts and the legend.
func (l *ladder) header(name string) {
	verdict, colour := "PASS", colourPass
	if !l.v.Pass {
		verdict, colour = "FAIL", colourBad
	}
	if l.judged {
		fmt.Fprintf(&l.body, `<text x="%d" y="28" font-size="20" font-weight="bold">%s <tspan class="verdict" fill="%s">%s</tspan></text>`+"\n",
			ladderMargin, xmlText(name), colour, verdict)
	} else {
		fmt.Fprintf(&l.body, `<text x="%d" y="28" font-size="20" font-weight="bold">%s</text>`+"\n", ladderMargin, xmlText(name))
	}
	conns := map[int]bool{}
	for i := range l.seen {
		conns[l.seen[i].Annotation.Stream] = true
	}
	l.text(ladderMargin, 48, `fill="`+colourMuted+`"`, fmt.Sprintf(l.t.description, l.t.segments.n(len(l.seen)), l.t.connections.n(len(conns))))

	// The legend: a sample of each kind of arrow, then what the edges say.
	y := 70
	x := ladderMargin
	kinds := []segKind{segMatched, segNoStep, segMismatch}
	if !l.judged {
		kinds = nil // nothing was matched: every arrow is plain
	}
	for _, k := range kinds {
		fmt.Fprintf(&l.body, `<line class="legend" x1="%d" y1="%d" x2="%d" y2="%d" %s/>`+"\n", x, y-4, x+36, y-4, arrowStyle(k))
		text := map[segKind]string{segMatched: l.t.legendMatched, segNoStep: l.t.legendNoStep, segMismatch: l.t.legendMismatch}[k]
		l.text(x+44, y, "", text)
		x += 44 + int(textWidth(text, 12, 6.8)) + 24
	}
	l.text(x, y, `fill="`+colourState+`" font-weight="bold"`, l.t.legendState)
	l.text(x+int(textWidth(l.t.legendState, 12, 8.4))+4, y, "", l.t.legendStateText)
	l.y = 84
}

// section draws the rows of one connection under its two lanes.
func (l *ladder) section(stream int, idx []int, heading bool) {
	if heading {
		l.y += 8
		fmt.Fprintf(&l.body, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#bbbbbb"/>`+"\n", ladderMargin, l.y, ladderWidth-ladderMargin, l.y)
		l.y += 20
		l.text(ladderMargin, l.y, `class="connection" font-size="15" font-weight="bold"`, fmt.Sprintf(l.t.connection, stream))
		l.y += 6
	}
	first := &l.seen[idx[0]]
	client, server := first.Segment.Src, first.Segment.Dst
	if first.Annotation.Dir == capture.ServerToClient {
		client, server = server, client
	}
	l.y += 8
	l.laneHead(ladderClientX, l.t.client, client)
	l.laneHead(ladderServerX, l.t.server, server)
	l.y += 42

	top := l.y
	var gaps [][2]int // vertical extents of the gap markers
	var client0, server0 capture.State = capture.Unknown, capture.Unknown
	shown := l.shown(idx)
	for k, i := range idx {
		if !shown[k] {
			continue
		}
		if k > 0 && !shown[k-1] {
			n := 0
			for j := k - 1; j >= 0 && !shown[j]; j-- {
				n++
			}
			gaps = append(gaps, [2]int{l.y, l.y + ladderGapRow})
			l.elided(n)
		} else if k > 0 {
			if d := l.seen[i].Segment.Time.Sub(l.seen[idx[k-1]].Segment.Time); d > ladderGap {
				gaps = append(gaps, [2]int{l.y, l.y + ladderGapRow})
				l.gap(d)
			}
		}
		a := &l.seen[i].Annotation
		l.row(i, a.Client != client0, a.Server != server0)
		client0, server0 = a.Client, a.Server
	}
	for _, x := range []int{ladderClientX, ladderServerX} {
		from := top - 4
		for _, g := range gaps {
			l.lane(x, from, g[0], false)
			l.lane(x, g[0], g[1], true)
			from = g[1]
		}
		l.lane(x, from, l.y, false)
	}
	l.y += 6
}

// laneHead draws the box naming a lane's endpoint.
func (l *ladder) laneHead(x int, who string, addr netip.AddrPort) {
	fmt.Fprintf(&l.body, `<rect x="%d" y="%d" width="170" height="36" rx="4" fill="#f1f3f6" stroke="%s"/>`+"\n", x-85, l.y, colourLane)
	fmt.Fprintf(&l.body, `<text class="lane" x="%d" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n", x, l.y+15, xmlText(who))
	if addr.IsValid() {
		fmt.Fprintf(&l.body, `<text x="%d" y="%d" text-anchor="middle" font-family="%s" font-size="11">%s</text>`+"\n", x, l.y+29, fontMono, xmlText(addr.String()))
	}
}

// lane draws a piece of a lane, dashed across a gap marker.
func (l *ladder) lane(x, y1, y2 int, dashed bool) {
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="2 4"`
	}
	fmt.Fprintf(&l.lanes, `<line class="lane" x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", x, y1, x, y2, colourLane, dash)
}

// ladderRows bounds the rows drawn for one connection: a bulk transfer has
// tens of thousands of segments, and a diagram of them all is unreadable.
// The first and last rows are drawn, and every row that went wrong.
const ladderRows = 120

// shown reports, for each of a connection's segments, whether it gets a row.
func (l *ladder) shown(idx []int) []bool {
	shown := make([]bool, len(idx))
	for k, i := range idx {
		seg := &l.seen[i].Segment
		wrong := len(l.mismatchAt[seg.Frame]) > 0 || (l.stepOf[i] <= 0 && !l.v.Pass)
		shown[k] = len(idx) <= ladderRows || k < ladderRows/2 || k >= len(idx)-ladderRows/2 || wrong
	}
	return shown
}

// elided draws the marker of rows left out.
func (l *ladder) elided(n int) {
	mid := (ladderClientX + ladderServerX) / 2
	fmt.Fprintf(&l.body, `<text class="gap" x="%d" y="%d" text-anchor="middle" font-style="italic" fill="%s">%s</text>`+"\n",
		mid, l.y+ladderGapRow/2+4, colourMuted, xmlText(l.t.elided.n(n)))
	l.y += ladderGapRow
}

// gap draws the marker of a pause between two rows.
func (l *ladder) gap(d time.Duration) {
	mid := (ladderClientX + ladderServerX) / 2
	fmt.Fprintf(&l.body, `<text class="gap" x="%d" y="%d" text-anchor="middle" font-style="italic" fill="%s">%s</text>`+"\n",
		mid, l.y+ladderGapRow/2+4, colourMuted, xmlText(fmt.Sprintf(l.t.gap, l.t.gapText(d))))
	l.y += ladderGapRow
}

// row draws segment i: its time, its arrow and label, the reason of a
// mismatch at it, and the states that changed.
func (l *ladder) row(i int, clientChanged, serverChanged bool) {
	s := &l.seen[i]
	seg, a := &s.Segment, &s.Annotation
	step, why := l.stepOf[i], l.why[i]
	mism := l.mismatchAt[seg.Frame]
	kind := segMatched
	switch {
	case len(mism) > 0:
		kind = segMismatch
	case step <= 0 && l.judged:
		kind = segNoStep
	}

	y0 := l.y
	yFrom, yTo := y0+22, y0+22+ladderFall
	x1, x2 := ladderClientX, ladderServerX-1
	yClient, yServer := yFrom, yTo
	if a.Dir == capture.ServerToClient {
		x1, x2 = ladderServerX, ladderClientX+1
		yClient, yServer = yTo, yFrom
	}
	tip := fmt.Sprintf(l.t.frame, seg.Frame, l.stepTip(step, why))
	if !l.judged {
		tip = strings.TrimSuffix(tip, ": ")
	}
	for _, n := range l.notes[i] {
		tip += "\n" + n
	}
	fmt.Fprintf(&l.body, "<g>\n<title>%s</title>\n", xmlText(tip))
	fmt.Fprintf(&l.body, `<text class="time" x="%d" y="%d" font-family="%s" fill="%s">%s</text>`+"\n",
		ladderMargin, yFrom+4, fontMono, colourMuted, fmt.Sprintf("+%.3fs", seg.Time.Sub(l.start).Seconds()))
	fmt.Fprintf(&l.body, `<line class="%s" data-frame="%d" x1="%d" y1="%d" x2="%d" y2="%d" %s/>`+"\n",
		segClass(kind), seg.Frame, x1, yFrom, x2, yTo, arrowStyle(kind))
	l.label(y0+15, seg, a, step, kind)
	if clientChanged {
		l.state(ladderClientX-10, yClient+4, "end", "client", a.Client)
	}
	if serverChanged {
		l.state(ladderServerX+10, yServer+4, "start", "server", a.Server)
	}
	l.y += ladderRow
	for _, n := range l.notes[i] {
		l.fitted((ladderClientX+ladderServerX)/2, l.y+2, `class="note" font-size="11" fill="`+colourMuted+`"`, cut(n, ladderNoteChars), "")
		l.y += ladderNote
	}
	for _, m := range mism {
		l.fitted((ladderClientX+ladderServerX)/2, l.y+6, `class="mismatch-note" fill="`+colourBad+`"`, "✗ "+mismatchText(m, &l.t.mismatchStrings), "")
		l.y += ladderDetail
	}
	l.body.WriteString("</g>\n")
}

// label writes a segment's label over its arrow: flags, relative numbers,
// length, analysis labels, and the step it matched.
func (l *ladder) label(y int, seg *capture.Segment, a *capture.Annotation, step expect.StepNum, kind segKind) {
	text := fmt.Sprintf("%s seq=%d ack=%d len=%d", seg.Flags, a.RelSeq, a.RelAck, seg.Len)
	if a.Labels != 0 {
		text += " [" + a.Labels.String() + "]"
	}
	tail := fmt.Sprintf(l.t.step, step)
	switch {
	case !l.judged:
		tail = ""
	case kind == segMismatch:
		tail = l.t.mismatch
	case step <= 0:
		tail = l.t.noStep
	}
	attrs := `class="label"`
	if kind != segMatched {
		attrs += ` fill="` + colourBad + `"`
	}
	l.fitted((ladderClientX+ladderServerX)/2, y, attrs, text+"  ", tail)
}

// cut returns s, or when it is longer than n characters, s up to the last
// ", " or "; " before n, and "…".
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	head := string(r[:n])
	if i := strings.LastIndexAny(head, ",;"); i > 0 {
		head = head[:i]
	}
	return head + " …"
}

// fitted writes a centred line of monospace text, then bold in a tspan,
// squeezing it between the lanes when it is too long to fit.
func (l *ladder) fitted(x, y int, attrs, text, bold string) {
	room := ladderServerX - ladderClientX - 40
	fit := ""
	if w := textWidth(text+bold, 12, ladderCharW); w > float64(room) {
		fit = fmt.Sprintf(` textLength="%d" lengthAdjust="spacingAndGlyphs"`, room)
	}
	fmt.Fprintf(&l.body, `<text %s x="%d" y="%d" text-anchor="middle" font-family="%s"%s>%s`, attrs, x, y, fontMono, fit, xmlText(text))
	if bold != "" {
		fmt.Fprintf(&l.body, `<tspan class="step" font-weight="bold">%s</tspan>`, xmlText(bold))
	}
	l.body.WriteString("</text>\n")
}

// state writes one side's state at its edge.
func (l *ladder) state(x, y int, anchor, side string, st capture.State) {
	fmt.Fprintf(&l.body, `<text class="state %s" x="%d" y="%d" text-anchor="%s" font-family="%s" font-weight="bold" fill="%s">%s</text>`+"\n",
		side, x, y, anchor, fontMono, colourState, st)
}

// stepTip says which step a segment matched, with the first sentence of
// its explanation, for the row's tooltip.
func (l *ladder) stepTip(step expect.StepNum, st *expect.Step) string {
	switch {
	case !l.judged:
		return ""
	case step <= 0:
		return l.t.tipNoStep
	case st == nil || st.Text(l.lang) == "":
		return fmt.Sprintf(l.t.step, step)
	}
	return fmt.Sprintf(l.t.step, step) + ": " + firstSentence(st.Text(l.lang))
}

// ending writes under a connection's rows how it ended, as
// capture.Ending tells it for every command: a line cut to the diagram's
// width, whole in its tooltip.
func (l *ladder) ending(idx []int) {
	e := capture.EndingAt(l.seen, idx)
	whole := fmt.Sprintf(l.t.ended, endingText(&e, l.lang))
	l.y += 18
	fmt.Fprintf(&l.body, "<g class=\"ending\">\n<title>%s</title>\n", xmlText(whole))
	l.text(ladderMargin, l.y, `font-style="italic"`, cut(whole, ladderEndingChars))
	l.body.WriteString("</g>\n")
	l.y += 6
}

// ladderEndingChars is as much of the ending's line as the diagram's
// width holds.
const ladderEndingChars = 140

// text writes a line of text at x, y; attrs are fixed attributes, never
// user data.
func (l *ladder) text(x, y int, attrs, s string) {
	fmt.Fprintf(&l.body, `<text x="%d" y="%d" %s>%s</text>`+"\n", x, y, attrs, xmlText(s))
}

// segClass returns the class of a segment's arrow: "seg" and its kind.
func segClass(k segKind) string {
	switch k {
	case segNoStep:
		return "seg nostep"
	case segMismatch:
		return "seg mismatch"
	}
	return "seg matched"
}

// arrowStyle returns the presentation attributes of an arrow of kind k.
func arrowStyle(k segKind) string {
	switch k {
	case segNoStep:
		return `stroke="` + colourBad + `" stroke-width="1.5" stroke-dasharray="6 3" marker-end="url(#head-bad)"`
	case segMismatch:
		return `stroke="` + colourBad + `" stroke-width="3" marker-end="url(#head-bad)"`
	}
	return `stroke="` + colourArrow + `" stroke-width="1.5" marker-end="url(#head)"`
}

// xmlText returns s with the characters XML reserves escaped.
func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ladderStrings are the fixed texts of ladder.svg in one language.
type ladderStrings struct {
	title       string // the document's title: %s is the scenario
	description string // %[1]s counts the segments, %[2]s the connections
	segments    plural
	connections plural

	// The legend: the three kinds of arrow, the sample of a state and what
	// it means.
	legendMatched, legendNoStep, legendMismatch string
	legendState, legendStateText                string

	noSegments     string // in place of the rows when there are none
	connection     string // a connection's heading: %d is its number
	ended          string // under a connection's rows: %s is how it ended (capture.Ending)
	client, server string // the lanes

	step             string // an arrow's step: %s is its number
	noStep, mismatch string // an arrow's tail otherwise
	frame            string // a row's tooltip: %d is the frame, %s its step
	tipNoStep        string // the tooltip of a segment that matched no step

	gap         string // a pause: %s is gapMS or gapS
	gapMS, gapS string // %d milliseconds, %.1f seconds
	elided      plural // rows not drawn

	mismatchStrings
}

// gapText formats a pause for a gap marker: "480 ms", "1.0 s".
func (t *ladderStrings) gapText(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf(t.gapMS, d.Round(time.Millisecond).Milliseconds())
	}
	return fmt.Sprintf(t.gapS, d.Seconds())
}

// ladderTexts holds ladderStrings by language.
var ladderTexts = []ladderStrings{
	expect.English: {
		title:           "ladder diagram of the %s scenario",
		description:     "%[1]s on %[2]s. Time goes down, one row per segment; seq and ack are relative.",
		segments:        plural{"%d TCP segment", "%d TCP segments"},
		connections:     plural{"%d connection", "%d connections"},
		legendMatched:   "matched step N",
		legendNoStep:    "matched no step",
		legendMismatch:  "mismatch (reason below it)",
		legendState:     "STATE",
		legendStateText: "TCP state after the segment, when it changes",
		noSegments:      "No TCP segments were captured.",
		connection:      "connection %d",
		ended:           "How it ended: %s",
		client:          "client",
		server:          "server",
		step:            "step %s",
		noStep:          "no step",
		mismatch:        "mismatch",
		frame:           "frame %d: %s",
		tipNoStep:       "matched no expected step",
		gap:             "… %s later …",
		gapMS:           "%d ms",
		gapS:            "%.1f s",
		elided:          plural{"… %d segment not drawn …", "… %d segments not drawn …"},
		mismatchStrings: mismatchStrings{
			atStep: "step %s", afterLast: "after the last step", atNoStep: "no step", diff: "%s: expected %s, got %s",
		},
	},
	expect.Chinese: {
		title:           "%s 场景的时序图",
		description:     "%[2]s上的 %[1]s. 时间自上而下, 每行一个包; seq 和 ack 是相对序号.",
		segments:        plural{"%d 个TCP包", "%d 个TCP包"},
		connections:     plural{"%d 个连接", "%d 个连接"},
		legendMatched:   "匹配步骤 N",
		legendNoStep:    "没有匹配任何步骤",
		legendMismatch:  "不匹配 (原因写在下方)",
		legendState:     "状态",
		legendStateText: "这个包之后的TCP状态, 变化时标出",
		noSegments:      "没有抓到TCP包.",
		connection:      "连接 %d",
		ended:           "连接如何结束: %s",
		client:          "客户端",
		server:          "服务端",
		step:            "步骤 %s",
		noStep:          "无步骤",
		mismatch:        "不匹配",
		frame:           "第 %d 帧: %s",
		tipNoStep:       "没有匹配任何预期步骤",
		gap:             "… %s后 …",
		gapMS:           "%d 毫秒",
		gapS:            "%.1f 秒",
		elided:          plural{"… 省略 %d 个包 …", "… 省略 %d 个包 …"},
		mismatchStrings: mismatchStrings{
			atStep: "步骤 %s", afterLast: "最后一步之后", atNoStep: "无步骤", diff: "%s: 预期 %s, 实际 %s",
		},
	},
}
