package report

import (
	"bytes"
	"fmt"
	"html/template"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// WriteIndex writes out/index.html, a page that lists every scenario of a
// run with its result and links to its artifacts, and shows each ladder
// diagram. The page is self-contained, with relative links, so the out
// directory can be copied or served as it is.
func WriteIndex(out string, results []Result) error {
	page := indexPage{PassColour: colourPass, FailColour: colourBad, LinkColour: colourArrow}
	for i := range results {
		r := &results[i]
		e := indexEntry{
			Name: r.Scenario, Summary: r.Summary, Pass: r.Pass, Interrupted: r.Interrupted,
			Anchor: "scenario-" + r.Scenario, Failure: r.Failure(),
			Facts: fmt.Sprintf("%s in %s, %d dropped, %.2f s, %s", countNoun(r.Segments, "TCP segment"),
				countNoun(r.Frames, "frame"), r.Drops, r.Seconds, r.Sandbox),
			Segments: r.Segments, Seconds: fmt.Sprintf("%.2f s", r.Seconds),
		}
		dir := resultDir(out, r)
		for _, name := range Files {
			f := indexFile{Name: name, Href: path.Join(dir, name)}
			if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(dir), name)); err == nil {
				f.Present = true
				if name == LadderFile {
					e.Ladder = f.Href
				}
			}
			e.Files = append(e.Files, f)
		}
		if r.Pass {
			page.Passed++
		}
		page.Entries = append(page.Entries, e)
	}
	page.Failed = len(page.Entries) - page.Passed
	var b bytes.Buffer
	if err := indexTemplate.Execute(&b, &page); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	return writeFile(filepath.Join(out, IndexFile), b.Bytes())
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
	Entries        []indexEntry
	Passed, Failed int
	// The colours of the verdicts and links, the diagrams' colours.
	PassColour, FailColour, LinkColour string
}

// indexEntry is one scenario on the index page.
type indexEntry struct {
	Name, Summary string
	Anchor        string
	Pass          bool
	Interrupted   bool
	Facts         string // segments, frames, drops, time, sandbox
	Segments      int
	Seconds       string
	Failure       string
	Files         []indexFile
	Ladder        string // link to the diagram; "" when there is none
}

// indexFile is a link to one artifact, which a failed run may not have
// written.
type indexFile struct {
	Name, Href string
	Present    bool
}

var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tcplab: {{.Passed}} of {{len .Entries}} scenarios passed</title>
<style>
body { font-family: "DejaVu Sans", "Liberation Sans", Helvetica, Arial, sans-serif; color: #1a1a1a; margin: 20px 24px; max-width: 1000px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 4px; }
p { margin: 4px 0; }
a { color: {{.LinkColour}}; }
table { border-collapse: collapse; margin: 10px 0 6px; }
th, td { text-align: left; padding: 4px 16px 4px 0; border-bottom: 1px solid #dddddd; }
th { font-size: 13px; color: #555555; }
td.num { text-align: right; }
.verdict { display: inline-block; font-weight: bold; color: #ffffff; padding: 1px 8px; border-radius: 3px; font-size: 13px; }
.pass { background: {{.PassColour}}; }
.fail { background: {{.FailColour}}; }
.facts { color: #555555; font-size: 14px; }
.files a, .files span { margin-right: 14px; font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 13px; }
.missing { color: #999999; text-decoration: line-through; }
section { border-top: 2px solid #cccccc; margin-top: 18px; padding-top: 10px; }
pre.failure { background: #fdecea; color: #7f1d1d; border-left: 4px solid {{.FailColour}}; padding: 8px 10px; overflow-x: auto; font-size: 12px; }
img.ladder { display: block; max-width: 100%; height: auto; margin-top: 8px; border: 1px solid #dddddd; }
</style>
</head>
<body>
<h1>tcplab</h1>
<p>{{len .Entries}} scenarios: {{.Passed}} passed, {{.Failed}} failed.</p>
<table>
<tr><th>scenario</th><th>result</th><th>segments</th><th>time</th><th>summary</th></tr>
{{- range .Entries}}
<tr><td><a href="#{{.Anchor}}">{{.Name}}</a></td><td>{{template "verdict" .}}</td><td class="num">{{.Segments}}</td><td class="num">{{.Seconds}}</td><td>{{.Summary}}</td></tr>
{{- end}}
</table>
{{- range .Entries}}
<section id="{{.Anchor}}">
<h2>{{.Name}} {{template "verdict" .}}</h2>
<p>{{.Summary}}</p>
<p class="facts">{{.Facts}}{{if .Interrupted}}; interrupted{{end}}</p>
<p class="files">{{range .Files}}{{if .Present}}<a href="{{.Href}}">{{.Name}}</a>{{else}}<span class="missing" title="not written">{{.Name}}</span>{{end}}{{end}}</p>
{{- if .Failure}}
<pre class="failure">{{.Failure}}</pre>
{{- end}}
{{- if .Ladder}}
<a href="{{.Ladder}}"><img class="ladder" src="{{.Ladder}}" alt="ladder diagram of {{.Name}}"></a>
{{- end}}
</section>
{{- end}}
</body>
</html>
{{define "verdict"}}{{if .Pass}}<span class="verdict pass">PASS</span>{{else}}<span class="verdict fail">FAIL</span>{{end}}{{end}}
`))
