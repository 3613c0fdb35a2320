package report

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/safefile"
	"github.com/tcplab/tcplab/lab/expect"
)

// Run is what the artifacts of one scenario run are made of.
type Run struct {
	Result  *Result
	Steps   []expect.Step
	Verdict *expect.Verdict // of expect.Match on Steps and Packets
	// Packets are every frame of the capture in order, TCP or not, with
	// their data, as capture.Walk yields them; Link is their link type.
	Packets []capture.Packet
	Link    layers.LinkType
	// Points names where the packets were captured when the lab captured
	// at more than one place: Packets at Points[0], Others[i] at
	// Points[i+1], each annotated on its own. Write then also writes
	// PointsFile, and the walkthrough says when each segment was seen at
	// the other points.
	Points []capture.Point
	Others [][]capture.Packet
	// Kernel says, by index of Packets, what the kernel's view of the
	// sockets changed to when it was sampled after the segment ("client:
	// cwnd 10 -> 20"), in Lang; the walkthrough shows it under the
	// segment. It is the fallback of KernelEvents, where the run could
	// not trace the kernel.
	Kernel map[int]string
	// Logs are the files beside the artifacts that hold what the user's
	// own server or client printed (server.log, client.log), which
	// walkthrough.html links to.
	Logs []string
	// KernelEvents are what the kernel did, by index of Packets: each
	// event tied to the segment it is about. The walkthrough and the
	// ladder show them under it, each drop as a row of its own, and take
	// the sides' states from them.
	KernelEvents map[int][]KernelEvent
	// KernelAlone are the drops of packets the capture did not see.
	KernelAlone []KernelEvent
	// KernelPaths are the paths through the kernel of the segments the
	// run followed, by index of Packets: the walkthrough shows each under
	// its segment.
	KernelPaths map[int]*PathTimeline
	// Lang is the language of walkthrough.md, walkthrough.html and
	// ladder.svg. capture.pcapng's comments are English in every run (see
	// WriteCapture).
	Lang expect.Lang
}

// Write writes a run's capture.pcapng, walkthrough.md, walkthrough.html,
// ladder.svg and, when a segment carries data, tseq.svg into dir
// (result.json is WriteResult's, once the run is over). It writes every
// file it can and returns the errors of those it could not. Each file
// appears whole or not at all, made in dir without following a symlink
// (package safefile).
func Write(dir *safefile.Dir, run *Run) error {
	errs := []error{
		WriteCapture(dir, CaptureFile, run.Link, run.Packets, run.Verdict),
		dir.WriteFile(WalkthroughFile, Walkthrough(run)),
		dir.WriteFile(LadderFile, LadderNotes(run.Result.Scenario, withKernelStates(run), run.Verdict, run.Lang, ladderNotes(run))),
	}
	switch graph, err := TimeSequence(run.Result.Scenario, run.Packets, run.Lang); {
	case err == nil:
		errs = append(errs, dir.WriteFile(TimeSeqFile, graph))
	case !errors.Is(err, ErrNoData):
		errs = append(errs, fmt.Errorf("%s: %w", TimeSeqFile, err))
	}
	if len(run.Points) > 1 {
		errs = append(errs, WritePoints(dir, PointsFile, run.Points, append([][]capture.Packet{run.Packets}, run.Others...)))
	}
	page, err := WalkthroughHTML(run)
	if err == nil {
		err = dir.WriteFile(WalkthroughHTMLFile, page)
	}
	return errors.Join(append(errs, err)...)
}

// Note is a remark on a packet of a capture point, kept in its
// CaptureInfo.AncillaryData: WritePoints adds it to the packet's comment.
type Note string

// WritePoints writes the pcapng file name in dir with one interface per capture point,
// named as points names them, and every packet of each point (seen[i] at
// points[i]) in time order, each TCP packet commented with its point's
// own annotation. Wireshark shows where each packet was seen
// (frame.interface_name), and the time between a segment's two sightings
// is its one-way delay. The file appears complete or not at all.
func WritePoints(dir *safefile.Dir, name string, points []capture.Point, seen [][]capture.Packet) error {
	return writePcapng(dir, name, points, func(w *capture.Writer) error {
		next := make([]int, len(seen))
		for {
			// The earliest packet not yet written, over all points.
			pick := -1
			for i := range seen {
				if next[i] < len(seen[i]) && (pick < 0 || seen[i][next[i]].Info.Timestamp.Before(seen[pick][next[pick]].Info.Timestamp)) {
					pick = i
				}
			}
			if pick < 0 {
				return nil
			}
			p := &seen[pick][next[pick]]
			next[pick]++
			ci := p.Info
			ci.InterfaceIndex = pick
			comment := "tcplab at " + points[pick].Name + ": not TCP"
			if p.TCP {
				comment = "tcplab at " + points[pick].Name + ": " + strings.TrimPrefix(capture.Comment(p), "tcplab: ")
			}
			for _, a := range p.Info.AncillaryData {
				if n, ok := a.(Note); ok {
					comment += " | " + string(n)
				}
			}
			if err := w.WritePacket(ci, p.Data, comment); err != nil {
				return err
			}
		}
	})
}

// WriteCapture writes the pcapng file name in dir of every packet, each TCP packet with
// a comment holding its annotation and the step it matched, or the news
// that it matched none. The file appears complete or not at all.
//
// The comments are English whatever the run's language: tools read them
// (tshark prints them as frame.comment, and scripts grep them), so they
// say the same in every run, like the annotation they extend.
func WriteCapture(dir *safefile.Dir, name string, link layers.LinkType, pkts []capture.Packet, v *expect.Verdict) error {
	return writePcapng(dir, name, []capture.Point{{Name: "tcplab", Link: link}}, func(w *capture.Writer) error {
		for i := range pkts {
			p := &pkts[i]
			comment := "tcplab: not TCP"
			if p.TCP {
				comment = capture.Comment(p) + " | " + stepComment(v.StepOf[i], v.Why[i]) + scriptedComment(p)
			}
			if err := w.WritePacket(p.Info, p.Data, comment); err != nil {
				return err
			}
		}
		return nil
	})
}

// writePcapng writes the pcapng file name in dir of the capture points
// with write, so that it appears complete or not at all.
func writePcapng(dir *safefile.Dir, name string, points []capture.Point, write func(*capture.Writer) error) error {
	f, err := dir.Create(name)
	if err != nil {
		return err
	}
	defer f.Discard()
	w, err := capture.NewWriterPoints(f, points)
	if err == nil {
		err = write(w)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	return f.Commit()
}

// stepComment says which step a segment matched, in English, for the
// capture's comments.
func stepComment(step expect.StepNum, st *expect.Step) string {
	if step <= 0 {
		return "matched no expected step"
	}
	if st == nil || st.Text(expect.English) == "" {
		return "step " + step.String()
	}
	return "step " + step.String() + ": " + firstSentence(st.Text(expect.English))
}

// firstSentence returns s up to the end of its first sentence, English or
// Chinese.
func firstSentence(s string) string {
	end := len(s)
	if i := strings.Index(s, ". "); i >= 0 {
		end = i + 1
	}
	if i := strings.Index(s, "。"); i >= 0 && i+len("。") < end {
		end = i + len("。")
	}
	return s[:end]
}

// walkthrough is what walkthrough.md and walkthrough.html tell, in the
// run's language: both are made from it, so they cannot tell different
// stories.
type walkthrough struct {
	Name, Summary           string
	Verdict                 verdict
	Segments, Frames, Drops int
	Seconds                 float64
	Steps                   []walkStep
	// Extra are the TCP segments that matched no step, the first
	// walkthroughExtra of them; ExtraMore counts the rest.
	Extra     []walkSegment
	ExtraMore int
	Events    []string
	// Endings say how each connection ended, as capture.Ending tells it
	// for every command.
	Endings []string
	Failure string // Result.Failure
	// Alone are the kernel's drops of packets the capture did not show.
	Alone []string
}

// walkStep is one expected step and what became of it.
type walkStep struct {
	Num  int
	Text string // the explanation
	Note bool   // a remark that matches no segment
	// Optional, for an optional step that did not happen in a run that
	// passed, describes what it would have been; otherwise NotSeen is the
	// step, formatted, when no segment matched it.
	Optional, NotSeen string
	// KernelWant says what the step requires of the kernel's own account
	// (expect.Step.Kernel), and that it went unjudged when it did.
	KernelWant string
	// Mismatches are where the matching failed at this step.
	Mismatches []*expect.Mismatch
	Segments   []walkSegment
}

// walkSegment is a segment as the walkthrough lists it, or, when Elided is
// not 0, the place of that many segments left out of a long step.
type walkSegment struct {
	Line           string // as expect.Format puts it
	Frame          int
	Client, Server capture.State
	// Elsewhere says when the other capture points saw the segment, such
	// as "server tun0 20.4 ms later": its one-way delay.
	Elsewhere string
	// Kernel are the kernel's lines under it: what it did, or what a
	// sample after it showed.
	Kernel []string
	// Drops are the kernel's drops of it, each shown as a row of its own.
	Drops []string
	// Path is its path through the kernel (PathLines), when it was
	// followed.
	Path []string
	Why  string // the explanation of the inner step it matched, when it has one of its own
	// Mismatches are those that name this segment as where the matching
	// failed.
	Mismatches []*expect.Mismatch
	Elided     int

	// Scripted says that a scripted peer sent it, and at which step.
	Scripted string
}

// newWalkthrough works out what the walkthrough of run tells.
func newWalkthrough(run *Run) *walkthrough {
	r, v, pkts, steps := run.Result, run.Verdict, run.Packets, run.Steps
	w := &walkthrough{
		Name: r.Scenario, Summary: r.Summary, Verdict: verdictOf(r),
		Segments: r.Segments, Frames: r.Frames, Drops: r.Drops, Seconds: r.Seconds,
		Events: r.Events, Failure: r.Failure(), Endings: endings(pkts, run.Lang),
		Alone: kernelAlone(run),
	}
	pkts = withKernelStates(run)
	var start time.Time
	if len(pkts) > 0 {
		start = pkts[0].Info.Timestamp
	}
	mismatchAt := map[int][]*expect.Mismatch{}
	for k := range v.Mismatches {
		if m := &v.Mismatches[k]; m.Frame != 0 {
			mismatchAt[m.Frame] = append(mismatchAt[m.Frame], m)
		}
	}
	elsewhere := sightings(run)
	segment := func(j int) walkSegment {
		p := &pkts[j]
		lines, drops := kernelLines(run, j)
		return walkSegment{Line: expect.Format(p, start), Frame: p.Segment.Frame, Client: p.Annotation.Client,
			Server: p.Annotation.Server, Mismatches: mismatchAt[p.Segment.Frame], Elsewhere: elsewhere[j], Kernel: lines, Drops: drops,
			Scripted: scriptedNote(p, run.Lang), Path: pathLines(run, j)}
	}
	for i := range steps {
		st := &steps[i]
		ws := walkStep{Num: i + 1, Text: st.Text(run.Lang), Note: st.IsNote(), KernelWant: kernelWant(st, v, run.Lang)}
		if ws.Text == "" {
			// A step without an explanation says what it expects, rather
			// than leave its heading empty.
			ws.Text = sentence(st.DescribeIn(run.Lang), run.Lang)
		}
		for k := range v.Mismatches {
			if m := &v.Mismatches[k]; m.Step == expect.StepNum(i+1) {
				ws.Mismatches = append(ws.Mismatches, m)
			}
		}
		if !ws.Note && len(v.Matched[i]) == 0 {
			if min, _ := st.Bounds(); min == 0 && r.Pass {
				ws.Optional = st.DescribeIn(run.Lang)
			} else {
				ws.NotSeen = st.String()
			}
		}
		for k, j := range v.Matched[i] {
			// A step that matched a bulk transfer shows its ends.
			if n := len(v.Matched[i]); n > 2*walkthroughEnds+1 && k >= walkthroughEnds && k < n-walkthroughEnds {
				if k == walkthroughEnds {
					ws.Segments = append(ws.Segments, walkSegment{Elided: n - 2*walkthroughEnds})
				}
				continue
			}
			s := segment(j)
			if in := v.Why[j]; in != nil && in != st {
				s.Why = in.Text(run.Lang)
			}
			ws.Segments = append(ws.Segments, s)
		}
		w.Steps = append(w.Steps, ws)
	}
	for j := range pkts {
		if pkts[j].TCP && v.StepOf[j] <= 0 {
			if len(w.Extra) < walkthroughExtra {
				w.Extra = append(w.Extra, segment(j))
			} else {
				w.ExtraMore++
			}
		}
	}
	return w
}

// sentence makes a description a sentence of lang: a capital and a full
// stop in English, a full stop in Chinese too, as tcplab's Chinese texts
// punctuate.
func sentence(d string, lang expect.Lang) string {
	if lang == expect.Chinese {
		return d + "."
	}
	if d != "" && d[0] >= 'a' && d[0] <= 'z' {
		d = string(d[0]-'a'+'A') + d[1:]
	}
	return d + "."
}

// Walkthrough returns walkthrough.md: the scenario's steps numbered as the
// story tells them, each with the segments it matched and its
// explanation, then whatever did not match.
func Walkthrough(run *Run) []byte {
	var b bytes.Buffer
	w := newWalkthrough(run)
	t := byLang(walkthroughTexts, run.Lang)
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", w.Name, w.Summary)
	fmt.Fprintf(&b, t.result, w.Verdict.Word, w.Segments, w.Frames, w.Drops, w.Seconds)
	for _, st := range w.Steps {
		fmt.Fprintf(&b, "%d. %s\n", st.Num, st.Text)
		if st.Note {
			b.WriteString("\n")
			continue
		}
		if st.KernelWant != "" {
			fmt.Fprintf(&b, "   - %s\n", st.KernelWant)
		}
		switch {
		case st.Optional != "":
			fmt.Fprintf(&b, t.optional, st.Optional)
		case st.NotSeen != "":
			fmt.Fprintf(&b, t.notSeen, st.NotSeen)
		}
		for _, s := range st.Segments {
			if s.Elided > 0 {
				fmt.Fprintf(&b, "   - … %d more segments …\n", s.Elided)
				continue
			}
			fmt.Fprintf(&b, "   - `%s`  %s/%s", s.Line, s.Client, s.Server)
			if s.Scripted != "" {
				fmt.Fprintf(&b, " [%s]", s.Scripted)
			}
			if s.Elsewhere != "" {
				fmt.Fprintf(&b, " (%s)", s.Elsewhere)
			}
			if s.Why != "" {
				fmt.Fprintf(&b, ": %s", s.Why)
			}
			for _, k := range s.Kernel {
				fmt.Fprintf(&b, "\n     %s", k)
			}
			for _, k := range s.Path {
				fmt.Fprintf(&b, "\n     %s", k)
			}
			b.WriteString("\n")
			for _, d := range s.Drops {
				fmt.Fprintf(&b, "   - %s\n", d)
			}
		}
		b.WriteString("\n")
	}
	var extra []string
	for _, s := range w.Extra {
		extra = append(extra, fmt.Sprintf("- `%s`", s.Line))
	}
	if w.ExtraMore > 0 {
		extra = append(extra, fmt.Sprintf("- … %d more", w.ExtraMore))
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, t.extra, strings.Join(extra, "\n"))
	}
	if len(w.Endings) > 0 {
		b.WriteString(t.ended)
		for _, e := range w.Endings {
			fmt.Fprintf(&b, "- %s\n", e)
		}
		b.WriteString("\n")
	}
	if len(w.Alone) > 0 {
		b.WriteString(byLang(kernelTexts, run.Lang).alone)
		for _, d := range w.Alone {
			fmt.Fprintf(&b, "- %s\n", d)
		}
		b.WriteString("\n")
	}
	if len(w.Events) > 0 {
		b.WriteString(t.events)
		for _, e := range w.Events {
			fmt.Fprintf(&b, "- %s\n", e)
		}
		b.WriteString("\n")
	}
	if w.Failure != "" {
		fmt.Fprintf(&b, t.failed, w.Failure)
	}
	return b.Bytes()
}

// walkthroughEnds is how many segments of a long step the walkthrough
// shows at each end.
const walkthroughEnds = 5

// walkthroughExtra is how many of the segments that matched no step the
// walkthrough lists: a run that went wrong early can leave thousands.
const walkthroughExtra = 50

// walkthroughStrings are the fixed texts of walkthrough.md in one language.
type walkthroughStrings struct {
	result, notSeen, optional, extra, events, failed string
	ended                                            string
	// kernelWant says what a step requires of the kernel (%s), unjudged
	// adds why it was not judged (%s).
	kernelWant, unjudged string
}

// walkthroughTexts holds walkthroughStrings by language.
var walkthroughTexts = []walkthroughStrings{
	expect.English: {
		result:   "Result: **%s**: %d TCP segments in %d frames, %d dropped, %.2f s (capture: " + CaptureFile + ").\n\n",
		notSeen:  "   - expected `%s`: not seen\n",
		optional: "   - (optional, did not happen this time: %s)\n",
		extra:    "## Segments that matched no step\n\n%s\n\n",
		events:   "## What the peers saw\n\n",
		ended:    "## How the connection ended\n\n",
		failed:   "## Why it failed\n\n```\n%s```\n",

		kernelWant: "the kernel's own account must show: %s",
		unjudged:   " (not judged: %s)",
	},
	expect.Chinese: {
		result:   "结果: **%s**: %d 个TCP包, 共 %d 帧, 丢弃 %d 个, 用时 %.2f 秒 (抓包文件: " + CaptureFile + ").\n\n",
		notSeen:  "   - 预期 `%s`: 没有出现\n",
		optional: "   - (可选的, 这次没有出现: %s)\n",
		extra:    "## 没有匹配任何步骤的包\n\n%s\n\n",
		events:   "## 两端看到的\n\n",
		ended:    "## 连接如何结束\n\n",
		failed:   "## 失败原因\n\n```\n%s```\n",

		kernelWant: "内核自己的记录必须显示: %s",
		unjudged:   " (没有判定: %s)",
	},
}

// ladderNotes are the lines under each arrow of the run's ladder: when the
// other points saw the segment, and what the kernel said after it.
func ladderNotes(run *Run) map[int][]string {
	notes := map[int][]string{}
	for j, s := range sightings(run) {
		notes[j] = append(notes[j], s)
	}
	for j := range run.Packets {
		lines, drops := kernelLines(run, j)
		notes[j] = append(notes[j], append(lines, drops...)...)
	}
	for j := range run.Packets {
		if s := scriptedNote(&run.Packets[j], run.Lang); s != "" {
			notes[j] = append([]string{s}, notes[j]...)
		}
	}
	return notes
}

// sightings says, for each TCP packet of run.Packets by index, when the
// other capture points saw the same segment: its one-way delay from or to
// them, in run.Lang. A segment is the same at two points when its
// addresses, numbers, flags and length are; the n-th such at one point is
// the n-th at the other.
func sightings(run *Run) map[int]string {
	if len(run.Others) == 0 {
		return nil
	}
	type key struct {
		src, dst netip.AddrPort
		seq, ack uint32
		flags    capture.Flags
		len      int
	}
	keyOf := func(p *capture.Packet) key {
		s := &p.Segment
		return key{s.Src, s.Dst, s.Seq, s.Ack, s.Flags, s.Len}
	}
	t := byLang(sightingTexts, run.Lang)
	out := map[int]string{}
	for i, others := range run.Others {
		seen := map[key][]time.Time{}
		for k := range others {
			if p := &others[k]; p.TCP {
				seen[keyOf(p)] = append(seen[keyOf(p)], p.Segment.Time)
			}
		}
		name := ""
		if i+1 < len(run.Points) {
			name = run.Points[i+1].Name
		}
		for j := range run.Packets {
			p := &run.Packets[j]
			if !p.TCP {
				continue
			}
			k := keyOf(p)
			times := seen[k]
			if len(times) == 0 {
				continue
			}
			seen[k] = times[1:]
			d := times[0].Sub(p.Segment.Time)
			text := fmt.Sprintf(t.later, name, float64(d)/float64(time.Millisecond))
			if d < 0 {
				text = fmt.Sprintf(t.earlier, name, float64(-d)/float64(time.Millisecond))
			}
			if out[j] != "" {
				text = out[j] + "; " + text
			}
			out[j] = text
		}
	}
	return out
}

// sightingTexts say when another point saw a segment, by language.
var sightingTexts = []struct{ later, earlier string }{
	expect.English: {later: "at %s %.1f ms later", earlier: "at %s %.1f ms earlier"},
	expect.Chinese: {later: "%s晚%.1f毫秒看到", earlier: "%s早%.1f毫秒看到"},
}

// kernelWant says in lang what st requires of the kernel's own account,
// and why it was not judged when v says so; "" when it requires nothing.
// The requirements keep the kernel's names, as the kernel's lines do.
func kernelWant(st *expect.Step, v *expect.Verdict, lang expect.Lang) string {
	checks := st.KernelChecks()
	if len(checks) == 0 {
		return ""
	}
	t := byLang(walkthroughTexts, lang)
	parts := make([]string, len(checks))
	for i, c := range checks {
		parts[i] = c.StringIn(lang)
	}
	s := fmt.Sprintf(t.kernelWant, strings.Join(parts, "; "))
	if v.KernelUnjudged != expect.Judged {
		s += fmt.Sprintf(t.unjudged, v.KernelUnjudged.StringIn(lang))
	}
	return s
}
