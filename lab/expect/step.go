package expect

import (
	"fmt"
	"strings"

	"github.com/tcplab/tcplab/capture"
)

// Step is one expected segment, a choice of segment sequences, or a remark
// that matches no segment. Its fields are set only through C2S, S2C,
// Either, OneOf and Note and the methods below, each of which returns a
// copy: a Step literal checks nothing and matches nothing, so the zero Step
// is refused by Match rather than passed silently.
type Step struct {
	stream int
	dir    capture.Dir
	flags  capture.Flags
	seq    uint32
	ack    uint32
	length int
	has    fieldSet
	labels capture.Labels
	absent capture.Labels
	check  func(*capture.Segment) error
	kernel []KernelCheck
	ends   func(*capture.Ending) error
	min    int
	max    int // below zero: no upper bound
	reps   bool
	alts   [][]Step
	text   [langs]string
	kind   stepKind
}

type stepKind uint8

const (
	invalid stepKind = iota
	segment
	choice
	note
)

type fieldSet uint8

const (
	hasSeq fieldSet = 1 << iota
	hasAck
	hasLen
	hasData
)

// C2S expects a segment from the client to the server with exactly these
// flags.
func C2S(flags capture.Flags) Step {
	return Step{kind: segment, dir: capture.ClientToServer, flags: flags}
}

// S2C expects a segment from the server to the client with exactly these
// flags.
func S2C(flags capture.Flags) Step {
	return Step{kind: segment, dir: capture.ServerToClient, flags: flags}
}

// Either expects one of several single steps: Either(S2C(ACK), S2C(PSH|ACK))
// is one segment with either set of flags.
func Either(steps ...Step) Step {
	seqs := make([][]Step, len(steps))
	for i, st := range steps {
		seqs[i] = []Step{st}
	}
	return OneOf(seqs...)
}

// OneOf expects one of several sequences of steps: for example an ACK that
// Linux may piggyback on the FIN that follows it, or send alone.
func OneOf(seqs ...[]Step) Step { return Step{kind: choice, alts: seqs} }

// Seq writes a sequence of steps for OneOf.
func Seq(steps ...Step) []Step { return steps }

// Note is a step of the story that puts no segment on the wire, such as
// "the connection is established"; zh, when given, is its Chinese text.
func Note(en string, zh ...string) Step { return Step{kind: note}.Explain(en, zh...) }

// Ends is a step of the story that puts no segment on the wire but is
// judged on how the connection ended, as capture.Ending tells it for every
// tcplab command, once the connection's segments have matched the steps:
// check returns why the ending is not the one the story needs (a full
// close where a half-close was due, say). It reads as a Note in the
// walkthrough; give it its explanation with Explain.
func Ends(check func(*capture.Ending) error) Step { return Step{kind: note, ends: check} }

// The refinements below (SeqNum to Checking, and Kernel) are about one segment. On a
// choice (Either, OneOf) they refine every segment of every alternative,
// so that Either(C2S(ACK), C2S(PSH|ACK)).With(capture.WindowFull) means
// what it says; on a Note they do nothing.

// SeqNum expects relative sequence number n.
func (s Step) SeqNum(n int) Step {
	return s.refine(func(s *Step) { s.seq, s.has = uint32(n), s.has|hasSeq })
}

// AckNum expects relative acknowledgement number n.
func (s Step) AckNum(n int) Step {
	return s.refine(func(s *Step) { s.ack, s.has = uint32(n), s.has|hasAck })
}

// Length expects n bytes of payload.
func (s Step) Length(n int) Step {
	return s.refine(func(s *Step) { s.length, s.has = n, s.has|hasLen })
}

// WithData expects a payload of at least one byte, of any length.
func (s Step) WithData() Step { return s.refine(func(s *Step) { s.has |= hasData }) }

// With expects these labels on the segment.
func (s Step) With(labels ...capture.Label) Step {
	return s.refine(func(s *Step) {
		for _, l := range labels {
			s.labels = s.labels.With(l)
		}
	})
}

// Without expects these labels to be absent.
func (s Step) Without(labels ...capture.Label) Step {
	return s.refine(func(s *Step) {
		for _, l := range labels {
			s.absent = s.absent.With(l)
		}
	})
}

// refine applies f to the step, or to every segment step of a choice,
// copying the alternatives so that the original choice is unchanged.
func (s Step) refine(f func(*Step)) Step {
	switch s.kind {
	case segment:
		f(&s)
	case choice:
		alts := make([][]Step, len(s.alts))
		for i, alt := range s.alts {
			alts[i] = make([]Step, len(alt))
			for j, st := range alt {
				alts[i][j] = st.refine(f)
			}
		}
		s.alts = alts
	}
	return s
}

// On expects the segment on connection n, counted from 0 in order of
// first appearance; for Either and OneOf, every alternative's segments.
func (s Step) On(stream int) Step { return s.refine(func(s *Step) { s.stream = stream }) }

// Checking adds a check of what the fields cannot say (TCP options, for
// example); its error is the mismatch.
func (s Step) Checking(f func(*capture.Segment) error) Step {
	return s.refine(func(s *Step) { s.check = f })
}

// Times repeats the step at least min and at most max times.
func (s Step) Times(min, max int) Step { s.min, s.max, s.reps = min, max, true; return s }

// AtLeast repeats the step n or more times.
func (s Step) AtLeast(n int) Step { return s.Times(n, -1) }

// AnyNumber lets the step occur any number of times, none included.
func (s Step) AnyNumber() Step { return s.Times(0, -1) }

// Optional lets the step be absent.
func (s Step) Optional() Step { return s.Times(0, 1) }

// Explain sets the step's explanation, in English and, when given, Chinese.
func (s Step) Explain(en string, zh ...string) Step {
	s.text[English] = en
	if len(zh) > 0 {
		s.text[Chinese] = zh[0]
	}
	return s
}

// Text returns the step's explanation in lang, or in English when it has
// none in lang.
func (s *Step) Text(lang Lang) string {
	if lang < langs && s.text[lang] != "" {
		return s.text[lang]
	}
	return s.text[English]
}

// IsNote reports whether the step is a remark that matches no segment.
func (s *Step) IsNote() bool { return s.kind == note }

// Bounds returns how many times the step may occur: exactly once unless
// Times, AtLeast, AnyNumber or Optional said otherwise; max is -1 when
// there is no upper bound.
func (s *Step) Bounds() (min, max int) {
	if !s.reps {
		return 1, 1
	}
	return s.min, s.max
}

// bounds returns the repetition bounds with "no upper bound" as the
// largest int, for counting.
func (s *Step) bounds() (min, max int) {
	min, max = s.Bounds()
	if max < 0 {
		max = int(^uint(0) >> 1)
	}
	return min, max
}

// String formats the step the way a segment is formatted, so that the two
// can be shown side by side: "S>C ACK         seq=* ack=415 len=0".
func (s Step) String() string {
	switch s.kind {
	case invalid:
		return "(empty step: build steps with C2S, S2C, Either, OneOf or Note)"
	case note:
		return "(no segment)"
	case choice:
		var parts []string
		for _, alt := range s.alts {
			var seq []string
			for _, st := range alt {
				seq = append(seq, st.String())
			}
			parts = append(parts, strings.Join(seq, " then "))
		}
		return "one of: " + strings.Join(parts, " | ") + s.repeatString()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-11s", s.dir, s.flags)
	num := func(name string, set bool, v any) {
		if set {
			fmt.Fprintf(&b, " %s=%v", name, v)
		} else {
			fmt.Fprintf(&b, " %s=*", name)
		}
	}
	num("seq", s.has&hasSeq != 0, s.seq)
	num("ack", s.has&hasAck != 0, s.ack)
	if s.has&hasData != 0 {
		b.WriteString(" len>0")
	} else {
		num("len", s.has&hasLen != 0, s.length)
	}
	if s.labels != 0 {
		fmt.Fprintf(&b, " [%s]", s.labels)
	}
	if s.absent != 0 {
		fmt.Fprintf(&b, " not[%s]", s.absent)
	}
	b.WriteString(s.kernelString())
	b.WriteString(s.repeatString())
	return b.String()
}

func (s Step) repeatString() string {
	if !s.reps {
		return ""
	}
	min, max := s.Bounds()
	if max < 0 {
		return fmt.Sprintf(" x%d..", min)
	}
	return fmt.Sprintf(" x%d..%d", min, max)
}

// Describe says in words what the step expects, for readers rather than
// for the matcher: "a C>S FIN,ACK", "a S>C ACK or a S>C PSH,ACK with data".
func (s Step) Describe() string { return s.DescribeIn(English) }

// describeStrings are the words of DescribeIn in one language.
type describeStrings struct {
	note, nothing, then, or      string
	segment                      string // %s the direction, %s the flags, %s what it carries
	withData, withoutData, bytes string // bytes: %d of them
	labels                       string // %s the labels, Wireshark's names
}

// describeTexts holds describeStrings by language.
var describeTexts = [langs]describeStrings{
	English: {note: "no segment", nothing: "nothing", then: ", then ", or: "; or ",
		segment: "a %s %s%s", withData: " with data", withoutData: " without data", bytes: " with %d bytes", labels: " (%s)"},
	Chinese: {note: "没有包", nothing: "没有", then: ", 然后", or: "; 或者",
		segment: "一个%[3]s的 %[1]s %[2]s 包", withData: "带数据", withoutData: "不带数据", bytes: "带 %d 字节", labels: " (%s)"},
}

// DescribeIn is Describe in lang; the direction, flags and labels keep
// their names, as the segments show them.
func (s Step) DescribeIn(lang Lang) string {
	if lang >= langs {
		lang = English
	}
	t := &describeTexts[lang]
	switch s.kind {
	case note:
		return t.note
	case choice:
		var parts []string
		for _, alt := range s.alts {
			var seq []string
			for _, st := range alt {
				seq = append(seq, st.DescribeIn(lang))
			}
			parts = append(parts, strings.Join(seq, t.then))
		}
		return strings.Join(parts, t.or)
	case segment:
		carries := ""
		switch {
		case s.has&hasData != 0:
			carries = t.withData
		case s.has&hasLen != 0 && s.length == 0:
			carries = t.withoutData
		case s.has&hasLen != 0:
			carries = fmt.Sprintf(t.bytes, s.length)
		}
		d := fmt.Sprintf(t.segment, s.dir.String(), s.flags.String(), carries)
		if lang == Chinese {
			d = strings.Replace(d, "一个的 ", "一个 ", 1)
		}
		if s.labels != 0 {
			d += fmt.Sprintf(t.labels, strings.ReplaceAll(s.labels.String(), ",", ", "))
		}
		return d
	}
	return t.nothing
}

// compare returns every field in which p differs from the step; none when
// p matches.
func (s *Step) compare(p *capture.Packet) []Diff {
	seg, ann := &p.Segment, &p.Annotation
	var d []Diff
	add := func(f Field, want, got string) { d = append(d, Diff{Field: f, Want: want, Got: got}) }
	if ann.Stream != s.stream {
		add(FieldStream, fmt.Sprint(s.stream), fmt.Sprint(ann.Stream))
	}
	if ann.Dir != s.dir {
		add(FieldDir, s.dir.String(), ann.Dir.String())
	}
	if seg.Flags != s.flags {
		add(FieldFlags, s.flags.String(), seg.Flags.String())
	}
	if s.has&hasSeq != 0 && ann.RelSeq != s.seq {
		add(FieldSeq, fmt.Sprint(s.seq), fmt.Sprint(ann.RelSeq))
	}
	if s.has&hasAck != 0 && ann.RelAck != s.ack {
		add(FieldAck, fmt.Sprint(s.ack), fmt.Sprint(ann.RelAck))
	}
	if s.has&hasLen != 0 && seg.Len != s.length {
		add(FieldLen, fmt.Sprint(s.length), fmt.Sprint(seg.Len))
	}
	if s.has&hasData != 0 && seg.Len == 0 {
		add(FieldLen, ">0", "0")
	}
	if ann.Labels&s.labels != s.labels {
		add(FieldLabels, "["+s.labels.String()+"]", "["+ann.Labels.String()+"]")
	}
	if ann.Labels&s.absent != 0 {
		add(FieldLabels, "not ["+s.absent.String()+"]", "["+ann.Labels.String()+"]")
	}
	// A check is about a segment of the right kind: on another one (a
	// SYN check on a data segment) it would only add noise.
	if s.check != nil && len(d) == 0 {
		if err := s.check(seg); err != nil {
			add(FieldCheck, "check passes", err.Error())
		}
	}
	return d
}
