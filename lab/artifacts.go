package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
)

// writeCapture writes capture.pcapng: every frame, each TCP packet with a
// comment holding its annotation and the step it matched, or the news that
// it matched none.
func writeCapture(dir string, link layers.LinkType, frames []frame, seen []Seen, index []int, v *Verdict) error {
	path := filepath.Join(dir, "capture.pcapng")
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := capture.NewWriter(f, link)
	if err != nil {
		return err
	}
	for i, fr := range frames {
		comment := "tcplab: not TCP"
		if j := index[i]; j >= 0 {
			p := capture.Packet{Segment: seen[j].Segment, Annotation: seen[j].Annotation}
			comment = capture.Comment(&p) + " | " + stepComment(v.StepOf[j], v.Why[j])
		}
		if err := w.WritePacket(fr.ci, fr.data, comment); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// stepComment says which step a segment matched.
func stepComment(step string, st *Step) string {
	if step == "" {
		return "matched no expected step"
	}
	if st == nil || st.Why == "" {
		return "step " + step
	}
	return "step " + step + ": " + firstSentence(st.Why)
}

// firstSentence returns s up to the end of its first sentence.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// writeWalkthrough writes walkthrough.md: the scenario's steps numbered as
// the story tells them, each with the segments it matched and its
// explanation, then whatever did not match.
func writeWalkthrough(dir string, sc *Scenario, opt Options, steps []Step, seen []Seen, v *Verdict, r *Result) error {
	var b bytes.Buffer
	zh := opt.Lang == "zh"
	t := walkthroughText
	if zh {
		t = walkthroughTextZH
	}
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", sc.Name, sc.Summary)
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, t.result, verdict, r.Segments, r.Frames, r.Drops, r.Seconds)
	var first *Seen
	if len(seen) > 0 {
		first = &seen[0]
	}
	for i, st := range steps {
		why := st.Why
		if zh && st.ZH != "" {
			why = st.ZH
		}
		fmt.Fprintf(&b, "%d. %s\n", i+1, why)
		if st.note {
			b.WriteString("\n")
			continue
		}
		if len(v.Matched[i]) == 0 {
			if min, _ := st.reps(); min == 0 && r.Pass {
				fmt.Fprintf(&b, t.optional, st)
			} else {
				fmt.Fprintf(&b, t.notSeen, st)
			}
		}
		for k, j := range v.Matched[i] {
			// A step that matched a bulk transfer shows its ends.
			if n := len(v.Matched[i]); n > 2*walkthroughEnds+1 && k >= walkthroughEnds && k < n-walkthroughEnds {
				if k == walkthroughEnds {
					fmt.Fprintf(&b, "   - … %d more segments …\n", n-2*walkthroughEnds)
				}
				continue
			}
			s := &seen[j]
			fmt.Fprintf(&b, "   - `%s`  %s/%s", formatSeen(s, first), s.Annotation.Client, s.Annotation.Server)
			if in := v.Why[j]; in != nil && in != &steps[i] && in.Why != "" {
				text := in.Why
				if zh && in.ZH != "" {
					text = in.ZH
				}
				fmt.Fprintf(&b, ": %s", text)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	var extra []string
	unmatched := 0
	for j := range seen {
		if v.StepOf[j] == "" {
			if unmatched++; unmatched <= 50 {
				extra = append(extra, fmt.Sprintf("- `%s`", formatSeen(&seen[j], first)))
			}
		}
	}
	if unmatched > 50 {
		extra = append(extra, fmt.Sprintf("- … %d more", unmatched-50))
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, t.extra, strings.Join(extra, "\n"))
	}
	if len(r.Events) > 0 {
		b.WriteString(t.events)
		for _, e := range r.Events {
			fmt.Fprintf(&b, "- %s\n", e)
		}
		b.WriteString("\n")
	}
	if f := r.Failure(); f != "" {
		fmt.Fprintf(&b, t.failed, f)
	}
	return writeFile(filepath.Join(dir, "walkthrough.md"), b.Bytes())
}

// walkthroughEnds is how many segments of a long step walkthrough.md shows
// at each end.
const walkthroughEnds = 5

// walkthroughStrings are the fixed texts of walkthrough.md in one language.
type walkthroughStrings struct {
	result, notSeen, optional, extra, events, failed string
}

var (
	walkthroughText = walkthroughStrings{
		result:   "Result: **%s**: %d TCP segments in %d frames, %d dropped, %.2f s (capture: capture.pcapng).\n\n",
		notSeen:  "   - expected `%s`: not seen\n",
		optional: "   - (optional `%s`: did not happen this time)\n",
		extra:    "## Segments that matched no step\n\n%s\n\n",
		events:   "## What the peers saw\n\n",
		failed:   "## Why it failed\n\n```\n%s```\n",
	}
	walkthroughTextZH = walkthroughStrings{
		result:   "结果: **%s**: %d 个TCP包, 共 %d 帧, 丢弃 %d 个, 用时 %.2f 秒 (抓包文件: capture.pcapng).\n\n",
		notSeen:  "   - 预期 `%s`: 没有出现\n",
		optional: "   - (可选的 `%s`: 这次没有出现)\n",
		extra:    "## 没有匹配任何步骤的包\n\n%s\n\n",
		events:   "## 两端看到的\n\n",
		failed:   "## 失败原因\n\n```\n%s```\n",
	}
)
