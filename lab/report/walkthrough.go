package report

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
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
	Lang    expect.Lang // of walkthrough.md
}

// Write writes a run's capture.pcapng, walkthrough.md and ladder.svg into
// dir (result.json is WriteResult's, once the run is over). It writes
// every file it can and returns the errors of those it could not.
func Write(dir string, run *Run) error {
	return errors.Join(
		WriteCapture(filepath.Join(dir, CaptureFile), run.Link, run.Packets, run.Verdict),
		writeFile(filepath.Join(dir, WalkthroughFile), Walkthrough(run)),
		writeFile(filepath.Join(dir, LadderFile), Ladder(run.Result.Scenario, run.Packets, run.Verdict)),
	)
}

// WriteCapture writes a pcapng file of every packet, each TCP packet with
// a comment holding its annotation and the step it matched, or the news
// that it matched none. The file appears complete or not at all.
func WriteCapture(path string, link layers.LinkType, pkts []capture.Packet, v *expect.Verdict) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := capture.NewWriter(f, link)
	if err != nil {
		return err
	}
	for i := range pkts {
		p := &pkts[i]
		comment := "tcplab: not TCP"
		if p.TCP {
			comment = capture.Comment(p) + " | " + stepComment(v.StepOf[i], v.Why[i])
		}
		if err := w.WritePacket(p.Info, p.Data, comment); err != nil {
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
func stepComment(step expect.StepNum, st *expect.Step) string {
	if step <= 0 {
		return "matched no expected step"
	}
	if st == nil || st.Text(expect.English) == "" {
		return "step " + step.String()
	}
	return "step " + step.String() + ": " + firstSentence(st.Text(expect.English))
}

// firstSentence returns s up to the end of its first sentence.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// Walkthrough returns walkthrough.md: the scenario's steps numbered as the
// story tells them, each with the segments it matched and its
// explanation, then whatever did not match.
func Walkthrough(run *Run) []byte {
	var b bytes.Buffer
	r, v, pkts, steps := run.Result, run.Verdict, run.Packets, run.Steps
	t := walkthroughText
	if run.Lang == expect.Chinese {
		t = walkthroughTextZH
	}
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", r.Scenario, r.Summary)
	verdict := "PASS"
	switch {
	case r.Interrupted:
		verdict = "INTERRUPTED"
	case !r.Pass:
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, t.result, verdict, r.Segments, r.Frames, r.Drops, r.Seconds)
	var start time.Time
	if len(pkts) > 0 {
		start = pkts[0].Info.Timestamp
	}
	for i := range steps {
		st := &steps[i]
		fmt.Fprintf(&b, "%d. %s\n", i+1, st.Text(run.Lang))
		if st.IsNote() {
			b.WriteString("\n")
			continue
		}
		if len(v.Matched[i]) == 0 {
			if min, _ := st.Bounds(); min == 0 && r.Pass {
				fmt.Fprintf(&b, t.optional, st.Describe())
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
			p := &pkts[j]
			fmt.Fprintf(&b, "   - `%s`  %s/%s", expect.Format(p, start), p.Annotation.Client, p.Annotation.Server)
			if in := v.Why[j]; in != nil && in != st && in.Text(run.Lang) != "" {
				fmt.Fprintf(&b, ": %s", in.Text(run.Lang))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	var extra []string
	unmatched := 0
	for j := range pkts {
		if pkts[j].TCP && v.StepOf[j] <= 0 {
			if unmatched++; unmatched <= 50 {
				extra = append(extra, fmt.Sprintf("- `%s`", expect.Format(&pkts[j], start)))
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
	return b.Bytes()
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
		result:   "Result: **%s**: %d TCP segments in %d frames, %d dropped, %.2f s (capture: " + CaptureFile + ").\n\n",
		notSeen:  "   - expected `%s`: not seen\n",
		optional: "   - (optional, did not happen this time: %s)\n",
		extra:    "## Segments that matched no step\n\n%s\n\n",
		events:   "## What the peers saw\n\n",
		failed:   "## Why it failed\n\n```\n%s```\n",
	}
	walkthroughTextZH = walkthroughStrings{
		result:   "结果: **%s**: %d 个TCP包, 共 %d 帧, 丢弃 %d 个, 用时 %.2f 秒 (抓包文件: " + CaptureFile + ").\n\n",
		notSeen:  "   - 预期 `%s`: 没有出现\n",
		optional: "   - (可选的, 这次没有出现: %s)\n",
		extra:    "## 没有匹配任何步骤的包\n\n%s\n\n",
		events:   "## 两端看到的\n\n",
		failed:   "## 失败原因\n\n```\n%s```\n",
	}
)
