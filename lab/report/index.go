package report

import (
	"bytes"
	"fmt"
	"html/template"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tcplab/tcplab/internal/safefile"
	"github.com/tcplab/tcplab/lab/expect"
)

// WriteIndex writes out/index.html, a page that lists every scenario of a
// run with its result and links to its artifacts (the time-sequence graph
// too, where there is one), and shows each ladder diagram. The page is self-contained, with relative links, so the out
// directory can be copied or served as it is. Its fixed texts are in lang,
// the language the scenarios' walkthroughs were written in.
//
// The page lists every scenario folder under out, not only this run's:
// a folder of an earlier run (one with a result.json that results do not
// cover) is listed with the result it holds. Each scenario shows when its
// result was written.
func WriteIndex(out string, results []Result, lang expect.Lang) error {
	t := byLang(indexTexts, lang)
	page := indexPage{T: t, PassColour: colourPass, FailColour: colourBad, AmberColour: colourAmber, LinkColour: colourArrow}
	earlier := earlierResults(out, results)
	results = append(slices.Clip(results), earlier...)
	passed, interrupted := 0, 0
	for i := range results {
		r := &results[i]
		e := indexEntry{
			Name: r.Scenario, Summary: r.Summary, Verdict: verdictOf(r),
			Anchor: "scenario-" + r.Scenario, Failure: r.Failure(),
			Facts:     fmt.Sprintf(t.facts, t.segments.n(r.Segments), t.frames.n(r.Frames), r.Drops, r.Seconds, r.Sandbox),
			Segments:  r.Segments,
			Seconds:   fmt.Sprintf(t.seconds, r.Seconds),
			LadderAlt: fmt.Sprintf(t.LadderAlt, r.Scenario),
		}
		dir := resultDir(out, r)
		if fi, err := os.Stat(filepath.Join(out, filepath.FromSlash(dir), ResultFile)); err == nil {
			e.When = fi.ModTime().Format(time.DateTime)
		}
		for _, name := range Files {
			f := indexFile{Name: name, Href: path.Join(dir, name)}
			if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(dir), name)); err == nil {
				f.Present = true
				if name == LadderFile {
					e.Ladder = f.Href
				}
			}
			e.Files = append(e.Files, f)
			// The time-sequence graph and the capture of every point
			// follow the ladder when there are any: a scenario without
			// data has no graph, one on one host no points, and neither
			// lacks anything.
			if name == LadderFile {
				for _, opt := range optionalFiles {
					if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(dir), opt)); err == nil {
						e.Files = append(e.Files, indexFile{Name: opt, Href: path.Join(dir, opt), Present: true})
					}
				}
			}
		}
		switch {
		case r.Interrupted:
			interrupted++
		case r.Pass:
			passed++
		}
		page.Entries = append(page.Entries, e)
	}
	// An interrupted scenario neither passed nor failed: the run was
	// stopped before it could tell.
	failed := len(results) - passed - interrupted
	page.Title = fmt.Sprintf(t.title, passed, t.scenarios.n(len(results)))
	page.Tally = fmt.Sprintf(t.tally, t.scenarios.n(len(results)), passed, failed)
	if interrupted > 0 {
		page.Tally += fmt.Sprintf(t.interrupted, interrupted)
	}
	page.Tally += t.end
	if len(earlier) > 0 {
		page.Tally += fmt.Sprintf(t.earlier, len(results)-len(earlier), len(earlier))
	}
	var b bytes.Buffer
	if err := indexTemplate.Execute(&b, &page); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	dir, err := safefile.OpenDir(out, true)
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.WriteFile(IndexFile, b.Bytes())
}

// earlierResults reads the result.json of every folder under out that
// results do not cover: scenarios of earlier runs into the same out,
// sorted by folder name. A folder without a readable result.json is not a
// scenario's.
func earlierResults(out string, results []Result) []Result {
	covered := map[string]bool{}
	for i := range results {
		covered[resultDir(out, &results[i])] = true
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return nil
	}
	var earlier []Result
	for _, d := range entries {
		if !d.IsDir() || covered[d.Name()] {
			continue
		}
		dir := filepath.Join(out, d.Name())
		// Read through a folder opened without following links, as
		// every artifact is written.
		sub, err := safefile.OpenDir(dir, false)
		if err != nil {
			continue
		}
		r, err := ReadResult(sub)
		sub.Close()
		if err != nil || r.Scenario == "" {
			continue
		}
		r.Dir = dir
		earlier = append(earlier, *r)
	}
	return earlier
}

// resultDir returns the directory of a result's artifacts relative to out,
// with slashes, as a link needs it; a result whose directory lies outside
// out is looked for in out/NAME.
func resultDir(out string, r *Result) string {
	if r.Dir == "" {
		return r.Scenario
	}
	base, err1 := filepath.Abs(out)
	dir, err2 := filepath.Abs(r.Dir)
	if err1 != nil || err2 != nil {
		return r.Scenario
	}
	rel, err := filepath.Rel(base, dir)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return r.Scenario
	}
	return filepath.ToSlash(rel)
}

// indexPage is what the index template shows.
type indexPage struct {
	T            *indexStrings
	Entries      []indexEntry
	Title, Tally string // how many scenarios passed, failed, were interrupted
	// The colours of the verdicts and links, the diagrams' colours.
	PassColour, FailColour, AmberColour, LinkColour string
}

// indexEntry is one scenario on the index page.
type indexEntry struct {
	Name, Summary string
	Anchor        string
	Verdict       verdict
	Facts         string // segments, frames, drops, time, sandbox
	Segments      int
	Seconds       string // the time, which must not wrap in its column
	When          string // when its result was written, "2006-01-02 15:04:05"
	Failure       string
	Files         []indexFile
	Ladder        string // link to the diagram; "" when there is none
	LadderAlt     string
}

// indexFile is a link to one artifact, which a failed run may not have
// written.
type indexFile struct {
	Name, Href string
	Present    bool
}

// indexStrings are the fixed texts of index.html in one language. The
// template reads the exported ones.
type indexStrings struct {
	Lang  string // the page's lang attribute
	title string // %d passed of %s, the scenarios counted
	// tally is the summary line: %[1]s counts the scenarios, %[2]d the
	// passed, %[3]d the failed; interrupted follows it when any were, with
	// %d of them, then end.
	tally, interrupted, end string
	// earlier follows the tally when the page lists scenarios of earlier
	// runs: %[1]d ran now, %[2]d earlier.
	earlier   string
	scenarios plural
	// The table's header.
	Scenario, Result, Segments, Time, When, Summary string
	// facts says what was captured: %[1]s counts the segments, %[2]s the
	// frames, %[3]d the drops, %.2[4]f the seconds, %[5]s the sandbox.
	facts            string
	segments, frames plural
	// seconds is the time column's "%.2f s": a non-breaking space keeps
	// the number and its unit on one line.
	seconds    string
	NotWritten string // the tooltip of an artifact a failed run did not write
	LadderAlt  string // %s is the scenario
}

// indexTexts holds indexStrings by language.
var indexTexts = []indexStrings{
	expect.English: {
		Lang:        "en",
		title:       "tcplab: %d of %s passed",
		tally:       "%[1]s: %[2]d passed, %[3]d failed",
		interrupted: ", %d interrupted",
		end:         ".",
		earlier:     " %[1]d ran now, %[2]d in earlier runs into the same folder (see when each ran).",
		scenarios:   plural{"%d scenario", "%d scenarios"},
		Scenario:    "scenario",
		Result:      "result",
		Segments:    "segments",
		Time:        "time",
		When:        "ran at",
		Summary:     "summary",
		facts:       "%[1]s in %[2]s, %[3]d dropped, %.2[4]f\u00a0s, %[5]s",
		segments:    plural{"%d TCP segment", "%d TCP segments"},
		frames:      plural{"%d frame", "%d frames"},
		seconds:     "%.2f\u00a0s",
		NotWritten:  "not written",
		LadderAlt:   "ladder diagram of %s",
	},
	expect.Chinese: {
		Lang:        "zh-CN",
		title:       "tcplab: %d 个通过, 共 %s",
		tally:       "共 %[1]s: %[2]d 个通过, %[3]d 个失败",
		interrupted: ", %d 个中断",
		end:         ".",
		earlier:     "其中 %[1]d 个是这次运行的, %[2]d 个是以前运行到同一目录的 (见运行时间).",
		scenarios:   plural{"%d 个场景", "%d 个场景"},
		Scenario:    "场景",
		Result:      "结果",
		Segments:    "TCP包",
		Time:        "用时",
		When:        "运行时间",
		Summary:     "说明",
		facts:       "%[1]s, 共 %[2]s, 丢弃 %[3]d 个, 用时 %.2[4]f\u00a0秒, %[5]s",
		segments:    plural{"%d 个TCP包", "%d 个TCP包"},
		frames:      plural{"%d 帧", "%d 帧"},
		seconds:     "%.2f\u00a0秒",
		NotWritten:  "没有写出",
		LadderAlt:   "%s 的时序图",
	},
}

var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="{{.T.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: "DejaVu Sans", "Liberation Sans", Helvetica, Arial, "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", sans-serif; color: #1a1a1a; margin: 20px 24px; max-width: 1000px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 4px; }
p { margin: 4px 0; }
a { color: {{.LinkColour}}; }
table { border-collapse: collapse; margin: 10px 0 6px; }
th, td { text-align: left; padding: 4px 16px 4px 0; border-bottom: 1px solid #dddddd; }
th { font-size: 13px; color: #555555; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
td.name, td.when { white-space: nowrap; }
.verdict { display: inline-block; font-weight: bold; color: #ffffff; padding: 1px 8px; border-radius: 3px; font-size: 13px; }
.pass { background: {{.PassColour}}; }
.fail { background: {{.FailColour}}; }
.interrupted { background: {{.AmberColour}}; }
.facts { color: #555555; font-size: 14px; }
.files a, .files span { margin-right: 14px; font-family: "DejaVu Sans Mono", "Liberation Mono", "Noto Sans Mono CJK SC", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", monospace; font-size: 13px; }
.missing { color: #999999; text-decoration: line-through; }
section { border-top: 2px solid #cccccc; margin-top: 18px; padding-top: 10px; }
pre.failure { background: #fdecea; color: #7f1d1d; border-left: 4px solid {{.FailColour}}; padding: 8px 10px; overflow-x: auto; font-size: 12px; }
img.ladder { display: block; max-width: 100%; height: auto; margin-top: 8px; border: 1px solid #dddddd; }
</style>
</head>
<body>
<h1>tcplab</h1>
<p class="tally">{{.Tally}}</p>
<table>
<tr><th>{{.T.Scenario}}</th><th>{{.T.Result}}</th><th>{{.T.Segments}}</th><th>{{.T.Time}}</th><th>{{.T.When}}</th><th>{{.T.Summary}}</th></tr>
{{- range .Entries}}
<tr><td class="name"><a href="#{{.Anchor}}">{{.Name}}</a></td><td>{{template "verdict" .}}</td><td class="num">{{.Segments}}</td><td class="num">{{.Seconds}}</td><td class="when">{{.When}}</td><td>{{.Summary}}</td></tr>
{{- end}}
</table>
{{- range .Entries}}
<section id="{{.Anchor}}">
<h2>{{.Name}} {{template "verdict" .}}</h2>
<p>{{.Summary}}</p>
<p class="facts">{{.Facts}}</p>
<p class="files">{{range .Files}}{{if .Present}}<a href="{{.Href}}">{{.Name}}</a>{{else}}<span class="missing" title="{{$.T.NotWritten}}">{{.Name}}</span>{{end}}{{end}}</p>
{{- if .Failure}}
<pre class="failure">{{.Failure}}</pre>
{{- end}}
{{- if .Ladder}}
<a href="{{.Ladder}}"><img class="ladder" src="{{.Ladder}}" alt="{{.LadderAlt}}"></a>
{{- end}}
</section>
{{- end}}
</body>
</html>
{{define "verdict"}}<span class="verdict {{.Verdict.Class}}">{{.Verdict.Word}}</span>{{end}}
`))
