package expect

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// Mismatch says where the segments on the wire parted from the expected
// steps, in the manner of packetdrill: which step, every field that
// differs with its expected and actual value, and the segments around it.
type Mismatch struct {
	Scenario string  `json:"scenario"`
	Step     StepNum `json:"step"`
	// Diffs lists every field that differs, the first being the one a
	// report leads with.
	Diffs    []Diff `json:"diffs"`
	Expected string `json:"expected"`        // the expected step, formatted
	Actual   string `json:"actual"`          // the actual segment, formatted ("" when none)
	Frame    int    `json:"frame,omitempty"` // frame of the actual segment
	// Context lists the segments just before and after the actual one.
	Context []string `json:"context,omitempty"`
}

// Field returns the first field that differs.
func (m *Mismatch) Field() Field {
	if len(m.Diffs) == 0 {
		return 0
	}
	return m.Diffs[0].Field
}

// Error formats the mismatch as a few lines: the verdict with every field
// that differs, a table of them when there are several, then the expected
// and the actual segment side by side, then the context.
func (m *Mismatch) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s step %s: ", m.Scenario, m.Step)
	for i, d := range m.Diffs {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "field %s: expected %s vs actual %s", d.Field, d.Want, d.Got)
	}
	b.WriteString("\n")
	if len(m.Diffs) > 1 {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  field\texpected\tactual\n")
		for _, d := range m.Diffs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", d.Field, d.Want, d.Got)
		}
		tw.Flush()
	}
	fmt.Fprintf(&b, "  expected: %s\n", m.Expected)
	if m.Actual != "" {
		fmt.Fprintf(&b, "  actual:   %s\n", m.Actual)
	} else {
		fmt.Fprintf(&b, "  actual:   (no more segments)\n")
	}
	if len(m.Context) > 0 {
		b.WriteString("  around it:\n")
		for _, c := range m.Context {
			b.WriteString("    " + c + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// Verdict is the outcome of matching a capture against a scenario's steps.
type Verdict struct {
	Pass       bool       `json:"pass"`
	Mismatches []Mismatch `json:"mismatches,omitempty"`
	// StepOf gives, for each packet given to Match, the top-level step it
	// matched, or 0 when it matched none (or is not TCP); Why gives the
	// step itself (the inner one, inside Either or OneOf), for its
	// explanation.
	StepOf []StepNum `json:"-"`
	Why    []*Step   `json:"-"`
	// Matched gives, for each top-level step, the indexes of the packets
	// it matched.
	Matched [][]int `json:"-"`
	// KernelUnjudged says why what the steps require of the kernel
	// (Step.Kernel) was not judged: NoKernelAccount after Match, until
	// JudgeKernel judges it or SkipKernel says why it cannot. It is
	// Judged when no step requires anything of the kernel, or it was
	// judged.
	KernelUnjudged Unjudged `json:"-"`
}

// Options tunes Match.
type Options struct {
	// IgnoreOtherStreams lets connections that no step mentions pass
	// unjudged, for captures made outside the lab.
	IgnoreOtherStreams bool
}

// Match compares the TCP segments among pkts with the steps. Steps are
// matched in order within each connection (Step.On); connections
// interleave freely, as the kernel schedules them. name is the scenario's,
// for the reports.
func Match(name string, steps []Step, pkts []capture.Packet, opt Options) Verdict {
	v := Verdict{StepOf: make([]StepNum, len(pkts)), Why: make([]*Step, len(pkts)), Matched: make([][]int, len(steps))}
	groups := map[int][]int{} // stream -> top-level step indexes
	var order []int
	stream := 0
	for i, st := range steps {
		if s, ok := st.streamOf(); ok {
			stream = s
		}
		if _, ok := groups[stream]; !ok {
			order = append(order, stream)
		}
		groups[stream] = append(groups[stream], i)
	}
	segsOf := map[int][]int{}
	for i := range pkts {
		if pkts[i].TCP {
			s := pkts[i].Annotation.Stream
			segsOf[s] = append(segsOf[s], i)
		}
	}
	var start time.Time
	if len(pkts) > 0 {
		if start = pkts[0].Info.Timestamp; start.IsZero() {
			start = pkts[0].Segment.Time
		}
	}
	for _, s := range order {
		m := newMatcher(name, steps, pkts, segsOf[s], start)
		if !m.run(groups[s]) {
			mm := m.mismatch()
			if m.budget < 0 {
				mm.Diffs = []Diff{{FieldSteps, fmt.Sprintf("a match within %d comparisons", matchBudget), "too many ways to try"}}
			} else {
				// Show how far the segments did match: replay the search
				// up to the failure it reported.
				r := newMatcher(name, steps, pkts, segsOf[s], start)
				r.stopTop, r.stopAt = m.failTop, m.failAt
				r.run(groups[s])
				if r.snapAssign != nil {
					m.assign, m.inner = r.snapAssign, r.snapInner
				}
			}
			v.Mismatches = append(v.Mismatches, mm)
		} else {
			v.Mismatches = append(v.Mismatches, ending(name, steps, groups[s], pkts, segsOf[s])...)
		}
		for p, top := range m.assign {
			if top < 0 {
				continue
			}
			v.StepOf[m.segs[p]] = StepNum(top + 1)
			v.Why[m.segs[p]] = m.inner[p]
			v.Matched[top] = append(v.Matched[top], m.segs[p])
		}
	}
	if !opt.IgnoreOtherStreams {
		var extra []int
		for s := range segsOf {
			if _, ok := groups[s]; !ok {
				extra = append(extra, s)
			}
		}
		slices.Sort(extra)
		for _, s := range extra {
			first := &pkts[segsOf[s][0]]
			v.Mismatches = append(v.Mismatches, Mismatch{
				Scenario: name, Diffs: []Diff{{FieldStream, fmt.Sprintf("no connection %d", s), "a connection"}},
				Expected: "(no step on this connection)", Actual: Format(first, start), Frame: first.Segment.Frame,
			})
		}
	}
	v.Pass = len(v.Mismatches) == 0
	v.KernelUnjudged = kernelUnjudged(steps)
	return v
}

// ending judges the Ends steps among tops on how the connection of the
// packets at segs ended.
func ending(name string, steps []Step, tops []int, pkts []capture.Packet, segs []int) []Mismatch {
	var out []Mismatch
	var e *capture.Ending
	for _, top := range tops {
		st := &steps[top]
		if st.ends == nil {
			continue
		}
		if e == nil {
			end := capture.EndingAt(pkts, segs)
			e = &end
		}
		if err := st.ends(e); err != nil {
			out = append(out, Mismatch{Scenario: name, Step: StepNum(top + 1),
				Diffs:    []Diff{{FieldEnding, firstLine(st.Text(English)), err.Error()}},
				Expected: "(no segment) " + firstLine(st.Text(English)), Actual: "(the connection ended) " + e.String()})
		}
	}
	return out
}

// firstLine returns s up to its first sentence's end, for a report line.
func firstLine(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// Streams returns how many connections the steps are about: 1 for a
// scenario of one connection, which a capture of many can be checked
// against one connection at a time.
func Streams(steps []Step) int {
	n := 0
	for _, st := range steps {
		if s, ok := st.streamOf(); ok && s+1 > n {
			n = s + 1
		}
	}
	return n
}

// streamOf returns the connection a top-level step is about; notes have
// none.
func (s Step) streamOf() (int, bool) {
	switch s.kind {
	case segment:
		return s.stream, true
	case choice:
		for _, alt := range s.alts {
			for _, st := range alt {
				if n, ok := st.streamOf(); ok {
					return n, true
				}
			}
		}
	}
	return 0, false
}

// Format formats a packet like a step, with its frame and its time since
// start: "C>S FIN,ACK     seq=418 ack=1 len=0   (frame 6, +0.001s)".
func Format(p *capture.Packet, start time.Time) string {
	seg, a := &p.Segment, &p.Annotation
	if start.IsZero() {
		start = seg.Time
	}
	labels := ""
	if a.Labels != 0 {
		labels = " [" + a.Labels.String() + "]"
	}
	return fmt.Sprintf("%s %-11s seq=%d ack=%d len=%d%s   (frame %d, +%.3fs)",
		a.Dir, seg.Flags, a.RelSeq, a.RelAck, seg.Len, labels, seg.Frame, seg.Time.Sub(start).Round(time.Millisecond).Seconds())
}

// matchBudget bounds the comparisons of one connection's match: repeated
// and optional steps over a long capture could otherwise backtrack for
// ever. A scenario's match takes a few times its segment count.
const matchBudget = 20_000_000

// matcher matches one connection's segments against its steps by
// backtracking: repeated, optional and alternative steps try every way the
// segments allow. It remembers the deepest failure, the one worth showing.
type matcher struct {
	name   string
	steps  []Step
	pkts   []capture.Packet
	start  time.Time
	segs   []int   // indexes into pkts of this connection's segments
	assign []int   // per segment of segs: top-level step index
	inner  []*Step // per segment of segs: the step it matched

	budget int // comparisons left before the match gives up
	// A replay stops at the failure (stopTop, stopAt) of an earlier run of
	// the same search and keeps the assignment it had reached there.
	stopTop, stopAt int
	snapAssign      []int
	snapInner       []*Step
	failTop         int // top-level step of the failure
	failAt          int
	failStep        StepNum
	failExp         string
	failDiffs       []Diff
}

func newMatcher(name string, steps []Step, pkts []capture.Packet, segs []int, start time.Time) *matcher {
	m := &matcher{name: name, steps: steps, pkts: pkts, start: start, segs: segs, assign: make([]int, len(segs)),
		inner: make([]*Step, len(segs)), failAt: -1, failTop: -1, stopAt: -1, budget: matchBudget}
	for i := range m.assign {
		m.assign[i] = -1
	}
	return m
}

// run matches the connection's segments against the top-level steps idx,
// all of them and nothing more.
func (m *matcher) run(idx []int) bool {
	return m.seq(idx, 0, func(p int) bool {
		if p < len(m.segs) {
			m.failUnexpected(p)
			return false
		}
		return true
	})
}

// seq matches the top-level steps idx from segment p, then calls k.
func (m *matcher) seq(idx []int, p int, k func(int) bool) bool {
	if len(idx) == 0 {
		return k(p)
	}
	i := idx[0]
	return m.step(i, &m.steps[i], p, func(q int) bool { return m.seq(idx[1:], q, k) })
}

// innerSeq matches a sequence of steps inside an alternative.
func (m *matcher) innerSeq(top int, steps []Step, p int, k func(int) bool) bool {
	if len(steps) == 0 {
		return k(p)
	}
	return m.step(top, &steps[0], p, func(q int) bool { return m.innerSeq(top, steps[1:], q, k) })
}

// step matches st (belonging to top-level step top) repeatedly, greedily.
func (m *matcher) step(top int, st *Step, p int, k func(int) bool) bool {
	if st.kind == note {
		return k(p)
	}
	min, max := st.bounds()
	var rep func(n, p int) bool
	rep = func(n, p int) bool {
		if n < max && m.once(top, st, p, func(q int) bool { return q > p && rep(n+1, q) }) {
			return true
		}
		return n >= min && k(p)
	}
	return rep(0, p)
}

// once matches one occurrence of st at segment p.
func (m *matcher) once(top int, st *Step, p int, k func(int) bool) bool {
	if m.budget--; m.budget < 0 {
		return false
	}
	switch st.kind {
	case invalid:
		m.fail(p, top, st, []Diff{{FieldSteps, "a step built with C2S, S2C, Either, OneOf or Note", "an empty step"}})
		return false
	case choice:
		for _, alt := range st.alts {
			if m.innerSeq(top, alt, p, k) {
				return true
			}
		}
		return false
	}
	if p >= len(m.segs) {
		m.fail(p, top, st, []Diff{{FieldMissing, "a segment", "none"}})
		return false
	}
	pk := &m.pkts[m.segs[p]]
	if d := st.compare(pk); len(d) > 0 {
		m.fail(p, top, st, d)
		return false
	}
	m.assign[p], m.inner[p] = top, st
	if k(p + 1) {
		return true
	}
	m.assign[p], m.inner[p] = -1, nil
	return false
}

// fail records a failed comparison if it got further than any before:
// to a later step, or to a later segment in the same step. Ranking by step
// first keeps a greedy repetition that ran past its place from hiding the
// step that really failed.
func (m *matcher) fail(p, top int, st *Step, d []Diff) {
	m.snapshot(p, top)
	if top < m.failTop || (top == m.failTop && p <= m.failAt) {
		return
	}
	m.failTop = top
	m.failAt, m.failStep, m.failExp, m.failDiffs = p, StepNum(top+1), st.String(), d
}

// snapshot, in a replay, keeps the assignment when the search reaches the
// failure being replayed, and ends the search.
func (m *matcher) snapshot(p, top int) {
	if m.stopAt < 0 || m.snapAssign != nil || p != m.stopAt || top != m.stopTop {
		return
	}
	m.snapAssign = append([]int(nil), m.assign...)
	m.snapInner = append([]*Step(nil), m.inner...)
	m.budget = 0
}

// failUnexpected records segments left over after the last step.
func (m *matcher) failUnexpected(p int) {
	m.snapshot(p, len(m.steps))
	if m.failTop > len(m.steps) || (m.failTop == len(m.steps) && p <= m.failAt) {
		return
	}
	m.failTop = len(m.steps)
	m.failAt, m.failStep, m.failExp = p, End, "(no more segments)"
	m.failDiffs = []Diff{{FieldUnexpected, "end of connection", "another segment"}}
}

// mismatch builds the report of the deepest failure.
func (m *matcher) mismatch() Mismatch {
	mm := Mismatch{Scenario: m.name, Step: m.failStep, Diffs: m.failDiffs, Expected: m.failExp}
	if m.failAt < 0 {
		mm.Diffs = []Diff{{FieldSteps, "a match", "none"}}
		return mm
	}
	if m.failAt < len(m.segs) {
		p := &m.pkts[m.segs[m.failAt]]
		mm.Actual, mm.Frame = Format(p, m.start), p.Segment.Frame
	}
	for p := max(0, m.failAt-3); p < min(len(m.segs), m.failAt+3); p++ {
		mark := "  "
		if p == m.failAt {
			mark = "> "
		}
		mm.Context = append(mm.Context, mark+Format(&m.pkts[m.segs[p]], m.start))
	}
	return mm
}
