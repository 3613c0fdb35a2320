package lab

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// Seen is one captured TCP segment with its annotation: what the matcher
// compares against the steps.
type Seen struct {
	Segment    capture.Segment
	Annotation capture.Annotation
}

// Mismatch says where the segments on the wire parted from the expected
// steps, in the manner of packetdrill: which step, which field, what was
// expected and what was seen.
type Mismatch struct {
	Scenario string `json:"scenario"`
	Step     string `json:"step"`            // step number, as the walkthrough numbers it
	Field    string `json:"field"`           // "flags", "seq", "missing", "unexpected", …
	Want     string `json:"want"`            // expected value of the field
	Got      string `json:"got"`             // actual value
	Expected string `json:"expected"`        // the expected step, formatted
	Actual   string `json:"actual"`          // the actual segment, formatted ("" when none)
	Frame    int    `json:"frame,omitempty"` // frame of the actual segment
	// Context lists the segments just before and after the actual one.
	Context []string `json:"context,omitempty"`
}

// Error formats the mismatch as a few lines: the verdict, then the expected
// and the actual segment side by side, then the context.
func (m *Mismatch) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s step %s: field %s: expected %s vs actual %s\n", m.Scenario, m.Step, m.Field, m.Want, m.Got)
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
	// StepOf gives, for each segment in order, the number of the step it
	// matched, or "" when it matched none; Why gives that step's
	// explanation (the inner step's, inside a OneOf).
	StepOf []string `json:"-"`
	Why    []*Step  `json:"-"`
	// Matched gives, for each top-level step, the indexes of the segments
	// it matched.
	Matched [][]int `json:"-"`
}

// MatchOptions tunes Match.
type MatchOptions struct {
	// IgnoreOtherStreams lets connections that no step mentions pass
	// unjudged, for captures made outside the lab.
	IgnoreOtherStreams bool
}

// Match compares the captured segments with the steps. Steps are matched in
// order within each connection (Step.Stream); connections interleave
// freely, as the kernel schedules them.
func Match(name string, steps []Step, seen []Seen, opt MatchOptions) Verdict {
	v := Verdict{StepOf: make([]string, len(seen)), Why: make([]*Step, len(seen)), Matched: make([][]int, len(steps))}
	groups := map[int][]int{} // stream -> top-level step indexes
	var order []int
	stream := 0
	for i, st := range steps {
		if s, ok := st.stream(); ok {
			stream = s
		}
		if _, ok := groups[stream]; !ok {
			order = append(order, stream)
		}
		groups[stream] = append(groups[stream], i)
	}
	segsOf := map[int][]int{}
	for i := range seen {
		s := seen[i].Annotation.Stream
		segsOf[s] = append(segsOf[s], i)
	}
	for _, s := range order {
		m := newMatcher(name, steps, seen, segsOf[s])
		if !m.run(groups[s]) {
			mm := m.mismatch()
			if m.budget < 0 {
				mm.Field, mm.Want, mm.Got = "steps", "a match within "+strconv.Itoa(matchBudget)+" comparisons", "too many ways to try"
			} else {
				// Show how far the segments did match: replay the search
				// up to the failure it reported.
				r := newMatcher(name, steps, seen, segsOf[s])
				r.stopTop, r.stopAt = m.failTop, m.failAt
				r.run(groups[s])
				if r.snapAssign != nil {
					m.assign, m.inner = r.snapAssign, r.snapInner
				}
			}
			v.Mismatches = append(v.Mismatches, mm)
		}
		for p, top := range m.assign {
			if top < 0 {
				continue
			}
			v.StepOf[m.segs[p]] = strconv.Itoa(top + 1)
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
		sort.Ints(extra)
		for _, s := range extra {
			first := segsOf[s][0]
			v.Mismatches = append(v.Mismatches, Mismatch{
				Scenario: name, Step: "-", Field: "stream", Want: "no connection " + strconv.Itoa(s), Got: "a connection",
				Expected: "(no step on this connection)", Actual: formatSeen(&seen[first], &seen[0]), Frame: seen[first].Segment.Frame,
			})
		}
	}
	v.Pass = len(v.Mismatches) == 0
	return v
}

// stream returns the connection a top-level step is about; notes have none.
func (s Step) stream() (int, bool) {
	if s.note {
		return 0, false
	}
	if len(s.Alts) > 0 {
		for _, alt := range s.Alts {
			for _, st := range alt {
				if n, ok := st.stream(); ok {
					return n, true
				}
			}
		}
		return 0, false
	}
	return s.Stream, true
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
	seen   []Seen
	segs   []int   // indexes into seen of this connection's segments
	assign []int   // per segment of segs: top-level step index
	inner  []*Step // per segment of segs: the step it matched
	top    int     // top-level step being matched

	budget int // comparisons left before the match gives up
	// A replay stops at the failure (stopTop, stopAt) of an earlier run of
	// the same search and keeps the assignment it had reached there.
	stopTop, stopAt         int
	snapAssign              []int
	snapInner               []*Step
	failTop                 int // top-level step of the failure
	failAt                  int
	failStep                string
	failExp                 string
	failField, failW, failG string
}

func newMatcher(name string, steps []Step, seen []Seen, segs []int) *matcher {
	m := &matcher{name: name, steps: steps, seen: seen, segs: segs, assign: make([]int, len(segs)), inner: make([]*Step, len(segs)),
		failAt: -1, failTop: -1, stopAt: -1, budget: matchBudget}
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

// inner matches a sequence of steps inside an alternative.
func (m *matcher) innerSeq(top int, steps []Step, p int, k func(int) bool) bool {
	if len(steps) == 0 {
		return k(p)
	}
	return m.step(top, &steps[0], p, func(q int) bool { return m.innerSeq(top, steps[1:], q, k) })
}

// step matches st (belonging to top-level step top) repeatedly, greedily.
func (m *matcher) step(top int, st *Step, p int, k func(int) bool) bool {
	if st.note {
		return k(p)
	}
	min, max := st.reps()
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
	if len(st.Alts) > 0 {
		for _, alt := range st.Alts {
			if m.innerSeq(top, alt, p, k) {
				return true
			}
		}
		return false
	}
	if p >= len(m.segs) {
		m.fail(p, top, st, "missing", "a segment", "none")
		return false
	}
	s := &m.seen[m.segs[p]]
	if f, w, g := st.compare(&s.Segment, &s.Annotation); f != "" {
		m.fail(p, top, st, f, w, g)
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
func (m *matcher) fail(p, top int, st *Step, field, want, got string) {
	m.snapshot(p, top)
	if top < m.failTop || (top == m.failTop && p <= m.failAt) {
		return
	}
	m.failTop = top
	m.failAt, m.failStep, m.failExp = p, strconv.Itoa(top+1), st.String()
	m.failField, m.failW, m.failG = field, want, got
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
	m.failAt, m.failStep, m.failExp = p, "end", "(no more segments)"
	m.failField, m.failW, m.failG = "unexpected", "end of connection", "another segment"
}

// mismatch builds the report of the deepest failure.
func (m *matcher) mismatch() Mismatch {
	mm := Mismatch{Scenario: m.name, Step: m.failStep, Field: m.failField, Want: m.failW, Got: m.failG, Expected: m.failExp}
	if m.failAt < 0 {
		mm.Step, mm.Field, mm.Want, mm.Got = "?", "steps", "a match", "none"
		return mm
	}
	var first *Seen
	if len(m.seen) > 0 {
		first = &m.seen[0]
	}
	if m.failAt < len(m.segs) {
		s := &m.seen[m.segs[m.failAt]]
		mm.Actual, mm.Frame = formatSeen(s, first), s.Segment.Frame
	}
	for p := max(0, m.failAt-3); p < min(len(m.segs), m.failAt+3); p++ {
		mark := "  "
		if p == m.failAt {
			mark = "> "
		}
		mm.Context = append(mm.Context, mark+formatSeen(&m.seen[m.segs[p]], first))
	}
	return mm
}

// formatSeen formats a segment like a step, with its frame and its time
// since first.
func formatSeen(s, first *Seen) string {
	seg, a := &s.Segment, &s.Annotation
	if first == nil {
		first = s
	}
	labels := ""
	if a.Labels != 0 {
		labels = " [" + a.Labels.String() + "]"
	}
	return fmt.Sprintf("%s %-11s seq=%d ack=%d len=%d%s   (frame %d, +%.3fs)",
		a.Dir, seg.Flags, a.RelSeq, a.RelAck, seg.Len, labels, seg.Frame, seg.Time.Sub(first.Segment.Time).Round(time.Millisecond).Seconds())
}
