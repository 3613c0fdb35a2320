package report

import (
	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// Scripted marks a frame that a scripted peer sent (package lab/scripted),
// kept in its CaptureInfo.AncillaryData with what the script called it
// ("step 3: C>S SYN seq=0 ..."), empty when the script's own words are
// not known. capture.pcapng's comment, the walkthrough and the ladder
// then say that the frame came from a script, not from a kernel.
type Scripted string

// scriptedOf returns the mark of p, if it has one.
func scriptedOf(p *capture.Packet) (Scripted, bool) {
	for _, a := range p.Info.AncillaryData {
		if s, ok := a.(Scripted); ok {
			return s, true
		}
	}
	return "", false
}

// scriptedComment is what capture.pcapng's comment on p says of the
// script: English in every run, as the rest of the comment is.
func scriptedComment(p *capture.Packet) string {
	s, ok := scriptedOf(p)
	if !ok {
		return ""
	}
	return " | " + scriptedText(s, expect.English)
}

// scriptedWords are the word for a scripted frame, by language.
var scriptedWords = []string{
	expect.English: "scripted",
	expect.Chinese: "脚本发出",
}

// scriptedText says that a frame was scripted, and at which step, in
// lang.
func scriptedText(s Scripted, lang expect.Lang) string {
	w := *byLang(scriptedWords, lang)
	if s == "" {
		return w
	}
	return w + ": " + string(s)
}

// scriptedNote is the walkthrough's and the ladder's mark of p, in lang,
// or "" for a frame no script sent.
func scriptedNote(p *capture.Packet, lang expect.Lang) string {
	s, ok := scriptedOf(p)
	if !ok {
		return ""
	}
	return scriptedText(s, lang)
}
