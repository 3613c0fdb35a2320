package report

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/tcplab/tcplab/lab/expect"
)

// Each artifact keeps the fixed texts a reader sees in a table of one
// struct per language (walkthroughTexts, walkthroughHTMLTexts, ladderTexts,
// indexTexts), indexed by expect.Lang, so that a translation is complete
// or visibly missing in one place. What the run itself says (step
// explanations come in both languages through Step.Text; segment lines,
// states, field names and Result.Failure are the protocol's and the
// matcher's) is not translated. The verdict words PASS, FAIL and
// INTERRUPTED stay as they are in every language, as in the command's
// table and walkthrough.md.

// byLang returns the entry of texts for lang, or the English one for a
// language the table does not have, so a new language degrades to English
// rather than to empty strings.
func byLang[T any](texts []T, lang expect.Lang) *T {
	if int(lang) < len(texts) {
		return &texts[lang]
	}
	return &texts[expect.English]
}

// plural is a counted noun in one language: the format of one thing and of
// any other number, each with one %d ("%d frame", "%d frames"). Chinese
// uses the same format for both.
type plural struct{ one, many string }

// n returns the noun counted n times: "1 frame", "3 frames".
func (p plural) n(n int) string {
	if n == 1 {
		return fmt.Sprintf(p.one, n)
	}
	return fmt.Sprintf(p.many, n)
}

// mismatchStrings are the words of a one-line account of a mismatch
// (mismatchText), shared in form by the artifacts that show one.
type mismatchStrings struct {
	atStep    string // "step %s"
	afterLast string // where a segment came after the last step
	atNoStep  string // where a connection had no step at all
	diff      string // "%s: expected %s, got %s": field, expected, actual
}

// mismatchText says in a line where the matching failed, in the words of
// t: "step 5: len: expected 5, got 7".
func mismatchText(m *expect.Mismatch, t *mismatchStrings) string {
	where := fmt.Sprintf(t.atStep, m.Step)
	switch {
	case m.Step == expect.End:
		where = t.afterLast
	case m.Step <= 0:
		where = t.atNoStep
	}
	s := where + ": "
	for i, d := range m.Diffs {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf(t.diff, d.Field, d.Want, d.Got)
	}
	return s
}

// verdict is how a run ended, as a word and the CSS class of its colour.
type verdict struct{ Word, Class string }

// verdictOf returns the verdict of r: an interrupted run is neither a pass
// nor a failure of the scenario, so it has a word and a colour of its own.
func verdictOf(r *Result) verdict {
	switch {
	case r.Interrupted:
		return verdict{"INTERRUPTED", "interrupted"}
	case !r.Pass:
		return verdict{"FAIL", "fail"}
	}
	return verdict{"PASS", "pass"}
}

// textWidth estimates the width of s in pixels at font size px, where
// narrow is the advance of a Latin character: Chinese characters and
// full-width punctuation take a whole em, about twice a Latin one, and the
// ladder must leave room for them.
func textWidth(s string, px, narrow float64) float64 {
	w := 0.0
	for _, r := range s {
		if wide(r) {
			w += px
		} else {
			w += narrow
		}
	}
	return w
}

// wide reports whether r is drawn a full em wide: CJK ideographs and
// punctuation, and the full-width forms.
func wide(r rune) bool {
	return r >= utf8.RuneSelf && (unicode.Is(unicode.Han, r) ||
		(r >= 0x3000 && r <= 0x303f) || (r >= 0xff00 && r <= 0xffef))
}
