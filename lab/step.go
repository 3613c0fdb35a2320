package lab

import (
	"fmt"
	"strings"

	"github.com/tcplab/tcplab/capture"
)

// Step is one expected segment (or a choice of segment sequences) of a
// scenario. Fields left at their zero value are not checked: a step says
// what TCP guarantees and nothing more. Build steps with C2S, S2C, OneOf
// and Note, then refine them with the methods below; each returns a copy.
type Step struct {
	Stream int // connection, 0, 1, … in order of first appearance
	Dir    capture.Dir
	Flags  capture.Flags
	// Seq, Ack and Len are relative numbers, checked when Check has them.
	Seq, Ack uint32
	Len      int
	// Labels must all be on the segment; NotLabels must all be absent.
	Labels    capture.Labels
	NotLabels capture.Labels
	// Check, when set, checks what the fields above cannot say (TCP
	// options, for example); its error is the mismatch.
	Check func(*capture.Segment) error
	// Min and Max repeat the step; both zero means exactly once. Max
	// below zero means no upper bound.
	Min, Max int
	// Alts, when set, makes the step a choice: one of these sequences
	// must match, in place of the step.
	Alts [][]Step
	// Why explains the step; the walkthrough prints it.
	Why string
	// ZH is the explanation in Chinese, the seed's language.
	ZH string
	// note marks a step that matches no segment: a remark in the story.
	note bool
	has  fieldSet
}

type fieldSet uint8

const (
	hasSeq fieldSet = 1 << iota
	hasAck
	hasLen
	hasData
)

// C2S expects a segment from the client to the server with exactly these
// flags.
func C2S(flags capture.Flags) Step { return Step{Dir: capture.ClientToServer, Flags: flags} }

// S2C expects a segment from the server to the client with exactly these
// flags.
func S2C(flags capture.Flags) Step { return Step{Dir: capture.ServerToClient, Flags: flags} }

// OneOf expects one of several sequences of steps: for example an ACK that
// Linux may piggyback on the FIN that follows it, or send alone.
func OneOf(seqs ...[]Step) Step { return Step{Alts: seqs} }

// Seq is a convenience to write a sequence of steps for OneOf.
func Seq(steps ...Step) []Step { return steps }

// Note is a step of the story that puts no segment on the wire, such as
// "the connection is established"; zh, when given, is its Chinese text.
func Note(why string, zh ...string) Step { return Step{note: true}.Explain(why, zh...) }

// SeqNum expects relative sequence number n.
func (s Step) SeqNum(n uint32) Step { s.Seq, s.has = n, s.has|hasSeq; return s }

// AckNum expects relative acknowledgement number n.
func (s Step) AckNum(n uint32) Step { s.Ack, s.has = n, s.has|hasAck; return s }

// Length expects n bytes of payload.
func (s Step) Length(n int) Step { s.Len, s.has = n, s.has|hasLen; return s }

// WithData expects a payload of at least one byte, of any length.
func (s Step) WithData() Step { s.has |= hasData; return s }

// With expects these labels on the segment.
func (s Step) With(labels ...capture.Label) Step {
	for _, l := range labels {
		s.Labels = s.Labels.With(l)
	}
	return s
}

// Without expects these labels to be absent.
func (s Step) Without(labels ...capture.Label) Step {
	for _, l := range labels {
		s.NotLabels = s.NotLabels.With(l)
	}
	return s
}

// On expects the segment on connection n (0 is the first); for a OneOf,
// every alternative's segments.
func (s Step) On(stream int) Step {
	s.Stream = stream
	if len(s.Alts) > 0 {
		alts := make([][]Step, len(s.Alts))
		for i, alt := range s.Alts {
			alts[i] = make([]Step, len(alt))
			for j, st := range alt {
				alts[i][j] = st.On(stream)
			}
		}
		s.Alts = alts
	}
	return s
}

// Checking adds a check of the segment that fields cannot express.
func (s Step) Checking(f func(*capture.Segment) error) Step { s.Check = f; return s }

// Times repeats the step between min and max times; max < 0 is unbounded.
func (s Step) Times(min, max int) Step { s.Min, s.Max = min, max; return s }

// Optional lets the step be absent.
func (s Step) Optional() Step { return s.Times(0, 1) }

// Explain sets the step's explanation, in English and, when given, Chinese.
func (s Step) Explain(en string, zh ...string) Step {
	s.Why = en
	if len(zh) > 0 {
		s.ZH = zh[0]
	}
	return s
}

// reps returns the step's repetition bounds.
func (s Step) reps() (min, max int) {
	if s.Min == 0 && s.Max == 0 {
		return 1, 1
	}
	if s.Max < 0 {
		return s.Min, int(^uint(0) >> 1)
	}
	return s.Min, s.Max
}

// String formats the step the way a segment is formatted, so the two can be
// shown side by side.
func (s Step) String() string {
	if s.note {
		return "(no segment)"
	}
	if len(s.Alts) > 0 {
		var parts []string
		for _, alt := range s.Alts {
			var seq []string
			for _, st := range alt {
				seq = append(seq, st.String())
			}
			parts = append(parts, strings.Join(seq, " then "))
		}
		return "one of: " + strings.Join(parts, " | ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-11s", s.Dir, s.Flags)
	num := func(name string, set bool, v any) {
		if set {
			fmt.Fprintf(&b, " %s=%v", name, v)
		} else {
			fmt.Fprintf(&b, " %s=*", name)
		}
	}
	num("seq", s.has&hasSeq != 0, s.Seq)
	num("ack", s.has&hasAck != 0, s.Ack)
	if s.has&hasData != 0 {
		b.WriteString(" len>0")
	} else {
		num("len", s.has&hasLen != 0, s.Len)
	}
	if s.Labels != 0 {
		fmt.Fprintf(&b, " [%s]", s.Labels)
	}
	if s.NotLabels != 0 {
		fmt.Fprintf(&b, " not[%s]", s.NotLabels)
	}
	if s.Min != 0 || s.Max != 0 {
		min, max := s.reps()
		if s.Max < 0 {
			fmt.Fprintf(&b, " x%d..", min)
		} else {
			fmt.Fprintf(&b, " x%d..%d", min, max)
		}
	}
	return b.String()
}

// compare returns the first field in which seg differs from the step, and
// the expected and actual values, or "" when seg matches.
func (s Step) compare(seg *capture.Segment, ann *capture.Annotation) (field, want, got string) {
	switch {
	case ann.Stream != s.Stream:
		return "stream", fmt.Sprint(s.Stream), fmt.Sprint(ann.Stream)
	case ann.Dir != s.Dir:
		return "dir", s.Dir.String(), ann.Dir.String()
	case seg.Flags != s.Flags:
		return "flags", s.Flags.String(), seg.Flags.String()
	case s.has&hasSeq != 0 && ann.RelSeq != s.Seq:
		return "seq", fmt.Sprint(s.Seq), fmt.Sprint(ann.RelSeq)
	case s.has&hasAck != 0 && ann.RelAck != s.Ack:
		return "ack", fmt.Sprint(s.Ack), fmt.Sprint(ann.RelAck)
	case s.has&hasLen != 0 && seg.Len != s.Len:
		return "len", fmt.Sprint(s.Len), fmt.Sprint(seg.Len)
	case s.has&hasData != 0 && seg.Len == 0:
		return "len", ">0", "0"
	case ann.Labels&s.Labels != s.Labels:
		return "labels", "[" + s.Labels.String() + "]", "[" + ann.Labels.String() + "]"
	case ann.Labels&s.NotLabels != 0:
		return "labels", "not [" + s.NotLabels.String() + "]", "[" + ann.Labels.String() + "]"
	}
	if s.Check != nil {
		if err := s.Check(seg); err != nil {
			return "options", "check passes", err.Error()
		}
	}
	return "", "", ""
}
