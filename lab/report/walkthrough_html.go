package report

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"

	"github.com/tcplab/tcplab/lab/expect"
)

// WalkthroughHTML returns walkthrough.html: what walkthrough.md tells, as a
// page to read in a browser, with the ladder diagram (ladder.svg, beside
// it in the scenario's directory) above the steps, or beside them on a
// wide screen. The step where the matching failed and the segments that
// matched no step are red. The page is self-contained: inline CSS, no
// script, relative links only.
func WalkthroughHTML(run *Run) ([]byte, error) {
	w := newWalkthrough(run)
	t := byLang(walkthroughHTMLTexts, run.Lang)
	page := walkthroughPage{
		walkthrough: w, T: t,
		Facts: fmt.Sprintf(t.Facts, t.segments.n(w.Segments), t.frames.n(w.Frames), w.Drops, w.Seconds),
		Files: siblings(run), Ladder: LadderFile,
		LadderAlt:  fmt.Sprintf(t.LadderAlt, w.Name),
		PassColour: colourPass, FailColour: colourBad, AmberColour: colourAmber, LinkColour: colourArrow,
		MutedColour:  colourMuted,
		AloneHeading: strings.TrimSpace(strings.TrimPrefix(byLang(kernelTexts, run.Lang).alone, "## ")),
	}
	var b bytes.Buffer
	if err := walkthroughTemplate.Execute(&b, &page); err != nil {
		return nil, fmt.Errorf("%s: %w", WalkthroughHTMLFile, err)
	}
	return b.Bytes(), nil
}

// siblings lists the artifacts beside walkthrough.html that it links to:
// every file the run leaves in the scenario's directory, the
// time-sequence graph and the points' capture when the run has them, and
// the logs of the user's own peers.
func siblings(run *Run) []string {
	files := []string{CaptureFile, WalkthroughFile, LadderFile}
	if len(tseqConnsOf(run.Packets)) > 0 {
		files = append(files, TimeSeqFile)
	}
	if len(run.Points) > 1 {
		files = append(files, PointsFile)
	}
	files = append(files, ResultFile)
	return append(files, run.Logs...)
}

// walkthroughPage is what the walkthrough template shows.
type walkthroughPage struct {
	*walkthrough
	T                 *walkthroughHTMLStrings
	Facts             string   // segments, frames, drops, time
	Files             []string // the sibling artifacts it links to
	Ladder, LadderAlt string
	// The colours of the verdicts, of links and of what is secondary: the
	// diagram's, so that page and diagram read as one.
	PassColour, FailColour, AmberColour, LinkColour, MutedColour string
	// AloneHeading heads the kernel's drops of packets the capture did
	// not show.
	AloneHeading string
}

// Reason says in a line, in the page's language, where the matching failed.
func (p *walkthroughPage) Reason(m *expect.Mismatch) string {
	return mismatchText(m, &p.T.mismatchStrings)
}

// walkthroughHTMLStrings are the fixed texts of walkthrough.html in one
// language. The template reads the exported ones.
type walkthroughHTMLStrings struct {
	Lang  string // the page's lang attribute
	Title string // the page's title: %s is the scenario, %s the verdict
	// Facts says what was captured: %[1]s counts the segments, %[2]s the
	// frames, %[3]d the drops, %.2[4]f the seconds.
	Facts            string
	segments, frames plural
	LadderAlt        string // %s is the scenario
	Steps            string // the heading of the steps
	Optional         string // before the description of an optional step that did not happen
	NotSeen          string // after an expected step that no segment matched
	Expected, Actual string // before the expected step and the actual segment of a mismatch
	More             string // segments left out of a long step: %d counts them
	Extra            string // the heading of the segments that matched no step
	ExtraMore        string // more of them than are listed: %d counts them
	Events           string // the heading of what the peers saw
	Ended            string // the heading of how the connections ended
	Failed           string // the heading of why the run failed
	mismatchStrings
}

// walkthroughHTMLTexts holds walkthroughHTMLStrings by language.
var walkthroughHTMLTexts = []walkthroughHTMLStrings{
	expect.English: {
		Lang:      "en",
		Title:     "%s: %s, step by step",
		Facts:     "%[1]s in %[2]s, %[3]d dropped, %.2[4]f\u00a0s.",
		segments:  plural{"%d TCP segment", "%d TCP segments"},
		frames:    plural{"%d frame", "%d frames"},
		LadderAlt: "ladder diagram of the %s scenario",
		Steps:     "Step by step",
		Optional:  "optional, did not happen this time:",
		NotSeen:   "not seen",
		Expected:  "expected",
		Actual:    "actual",
		More:      "… %d more segments …",
		Extra:     "Segments that matched no step",
		ExtraMore: "… %d more",
		Events:    "What the peers saw",
		Ended:     "How the connection ended",
		Failed:    "Why it failed",
		mismatchStrings: mismatchStrings{
			atStep: "step %s", afterLast: "after the last step", atNoStep: "no step", diff: "%s: expected %s, got %s",
		},
	},
	expect.Chinese: {
		Lang:      "zh-CN",
		Title:     "%s: %s, 逐步讲解",
		Facts:     "%[1]s, 共 %[2]s, 丢弃 %[3]d 个, 用时 %.2[4]f\u00a0秒.",
		segments:  plural{"%d 个TCP包", "%d 个TCP包"},
		frames:    plural{"%d 帧", "%d 帧"},
		LadderAlt: "%s 场景的时序图",
		Steps:     "逐步讲解",
		Optional:  "可选的, 这次没有出现:",
		NotSeen:   "没有出现",
		Expected:  "预期",
		Actual:    "实际",
		More:      "… 还有 %d 个包 …",
		Extra:     "没有匹配任何步骤的包",
		ExtraMore: "… 还有 %d 个",
		Events:    "两端看到的",
		Ended:     "连接如何结束",
		Failed:    "失败原因",
		mismatchStrings: mismatchStrings{
			atStep: "步骤 %s", afterLast: "最后一步之后", atNoStep: "无步骤", diff: "%s: 预期 %s, 实际 %s",
		},
	},
}

// walkthroughTemplate lays the page out: the ladder first in the document,
// so a narrow screen shows it above the steps; a grid puts it beside them
// once there is room for both (the diagram is 940 pixels wide).
var walkthroughTemplate = template.Must(template.New("walkthrough").Parse(`<!DOCTYPE html>
<html lang="{{.T.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{printf .T.Title .Name .Verdict.Word}}</title>
<style>
body { font-family: "DejaVu Sans", "Liberation Sans", Helvetica, Arial, "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", sans-serif; color: #1a1a1a; margin: 20px 24px; line-height: 1.4; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 18px 0 6px; }
p { margin: 4px 0; }
a { color: {{.LinkColour}}; }
header { max-width: 1000px; }
.verdict { display: inline-block; font-weight: bold; color: #ffffff; padding: 1px 8px; border-radius: 3px; font-size: 13px; vertical-align: middle; }
.pass { background: {{.PassColour}}; }
.fail { background: {{.FailColour}}; }
.interrupted { background: {{.AmberColour}}; }
.facts { color: #555555; font-size: 14px; }
.files a { margin-right: 14px; font-family: "DejaVu Sans Mono", "Liberation Mono", "Noto Sans Mono CJK SC", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", monospace; font-size: 13px; }
.layout { display: flex; flex-direction: column; gap: 8px; margin-top: 12px; }
figure.ladder { margin: 0; }
figure.ladder img { display: block; max-width: 100%; height: auto; border: 1px solid #dddddd; }
main { max-width: 1000px; min-width: 0; }
@media (min-width: 1560px) {
	.layout { display: grid; grid-template-columns: minmax(0, 1fr) 942px; gap: 24px; align-items: start; }
	main { grid-column: 1; grid-row: 1; max-width: none; }
	figure.ladder { grid-column: 2; grid-row: 1; }
}
ol.steps { list-style: none; padding: 0; margin: 0; }
li.step { margin: 0 0 12px; padding: 2px 0 2px 10px; border-left: 4px solid transparent; }
li.step > p.text { margin: 0 0 2px; }
.num { font-weight: bold; margin-right: 4px; }
li.note > p.text { font-style: italic; }
li.failed { border-left-color: {{.FailColour}}; background: #fdf1f0; }
li.failed .num, li.failed .reason, li.failed .bad, li.nostep code, li.nostep .reason, li.nostep .reason a, h2.nostep { color: {{.FailColour}}; }
.reason { font-weight: bold; margin: 2px 0; }
.optional, .notseen, .states, .elided { color: {{.MutedColour}}; }
.optional, .notseen, .elided { font-style: italic; }
p.optional, p.notseen, li.failed p.bad { margin-left: 22px; }
ul.segments { list-style: none; padding: 0 0 0 22px; margin: 2px 0 0; }
ul.extra { padding-left: 0; }
ul.segments li { margin: 1px 0; }
.why { display: block; margin: 0 0 4px 16px; font-size: 15px; }
li.drop { color: {{.FailColour}}; }
.kernel { display: block; margin: 0 0 4px 16px; font-family: "DejaVu Sans Mono", "Liberation Mono", "Noto Sans Mono CJK SC", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", monospace; font-size: 12px; color: {{.MutedColour}}; }
code, pre { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, "Noto Sans Mono CJK SC", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", monospace; font-size: 12.5px; }
.scripted { font-style: italic; color: {{.MutedColour}}; }
code { white-space: pre-wrap; }
.states { font-family: "DejaVu Sans Mono", "Liberation Mono", "Noto Sans Mono CJK SC", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", monospace; font-size: 12px; margin-left: 4px; }
li.mismatch code { font-weight: bold; }
pre.failure { background: #fdecea; color: #7f1d1d; border-left: 4px solid {{.FailColour}}; padding: 8px 10px; overflow-x: auto; font-size: 12px; }
</style>
</head>
<body>
<header>
<h1>{{.Name}} <span class="verdict {{.Verdict.Class}}">{{.Verdict.Word}}</span></h1>
<p class="summary">{{.Summary}}</p>
<p class="facts">{{.Facts}}</p>
<p class="files">{{range .Files}}<a href="{{.}}">{{.}}</a>{{end}}</p>
</header>
<div class="layout">
<figure class="ladder"><a href="{{.Ladder}}"><img src="{{.Ladder}}" alt="{{.LadderAlt}}" width="940"></a></figure>
<main>
<h2>{{.T.Steps}}</h2>
<ol class="steps">
{{- range .Steps}}
<li id="step-{{.Num}}" class="step{{if .Note}} note{{end}}{{if .Mismatches}} failed{{end}}">
<p class="text"><span class="num">{{.Num}}.</span> {{.Text}}</p>
{{- if .KernelWant}}
<p class="optional">{{.KernelWant}}</p>
{{- end}}
{{- if .Optional}}
<p class="optional">({{$.T.Optional}} {{.Optional}})</p>
{{- end}}
{{- range .Mismatches}}
<p class="reason">✗ {{$.Reason .}}</p>
<p class="bad">{{$.T.Expected}}: <code>{{.Expected}}</code></p>
{{- if .Actual}}
<p class="bad">{{$.T.Actual}}: <code>{{.Actual}}</code></p>
{{- end}}
{{- else}}
{{- if .NotSeen}}
<p class="notseen">{{$.T.Expected}} <code>{{.NotSeen}}</code>: {{$.T.NotSeen}}</p>
{{- end}}
{{- end}}
{{- if .Segments}}
<ul class="segments">
{{- range .Segments}}
{{- if .Elided}}
<li class="elided">{{printf $.T.More .Elided}}</li>
{{- else}}
<li{{if .Mismatches}} class="mismatch"{{end}}><code>{{.Line}}</code> <span class="states">{{.Client}}/{{.Server}}</span>{{if .Scripted}} <span class="scripted">[{{.Scripted}}]</span>{{end}}{{if .Elsewhere}} <span class="states">({{.Elsewhere}})</span>{{end}}{{if .Why}} <span class="why">{{.Why}}</span>{{end}}{{range .Kernel}} <span class="kernel">{{.}}</span>{{end}}{{if .Path}}<pre class="kernel">{{range .Path}}{{.}}
{{end}}</pre>{{end}}</li>
{{- range .Drops}}
<li class="drop">{{.}}</li>
{{- end}}
{{- end}}
{{- end}}
</ul>
{{- end}}
</li>
{{- end}}
</ol>
{{- if .Extra}}
<h2 class="nostep">{{.T.Extra}}</h2>
<ul class="segments extra">
{{- range .Extra}}
<li class="nostep{{if .Mismatches}} mismatch{{end}}"><code>{{.Line}}</code> <span class="states">{{.Client}}/{{.Server}}</span>
{{- range .Mismatches}}
<p class="reason">✗ {{if gt .Step 0}}<a href="#step-{{.Step}}">{{$.Reason .}}</a>{{else}}{{$.Reason .}}{{end}}</p>
{{- end}}</li>
{{- end}}
{{- if .ExtraMore}}
<li class="elided">{{printf .T.ExtraMore .ExtraMore}}</li>
{{- end}}
</ul>
{{- end}}
{{- if .Endings}}
<h2>{{.T.Ended}}</h2>
<ul class="endings">
{{- range .Endings}}
<li>{{.}}</li>
{{- end}}
</ul>
{{- end}}
{{- if .Alone}}
<h2>{{.AloneHeading}}</h2>
<ul class="alone">
{{- range .Alone}}
<li class="drop">{{.}}</li>
{{- end}}
</ul>
{{- end}}
{{- if .Events}}
<h2>{{.T.Events}}</h2>
<ul class="events">
{{- range .Events}}
<li>{{.}}</li>
{{- end}}
</ul>
{{- end}}
{{- if .Failure}}
<h2>{{.T.Failed}}</h2>
<pre class="failure">{{.Failure}}</pre>
{{- end}}
</main>
</div>
</body>
</html>
`))
