package scenarios

import (
	"bytes"
	"encoding/json"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/report"
)

var (
	// englishRun is three or more English words in a row: a sentence, or
	// a piece of one. Names, flags, field names and the protocol's words
	// do not make one: they stand alone, joined by = . _ - / or numbers.
	englishRun = regexp.MustCompile(`(?:^|[^\w./=-])([A-Za-z][a-z]+(?:'[a-z]+)?(?: [A-Za-z][a-z]+(?:'[a-z]+)?){2,})(?:$|[^\w/=-])`)
	// quoted is what the texts quote: other tools' words ("previous
	// segment not captured", Wireshark's), code and segments.
	quoted = regexp.MustCompile("\"[^\"\n]*\"|`[^`\n]*`|“[^”\n]*”")
	markup = regexp.MustCompile(`(?s)<style.*?</style>|<[^>]*>`)
)

// errnoTexts are the C library's names of errors, which a text shows next
// to the errno's own name.
var errnoTexts = []string{"connection reset by peer", "connection refused"}

// englishIn returns the English sentences (three words or more) of a
// text meant to be Chinese; markup says the text is HTML or SVG.
func englishIn(text string, markup_ bool) []string {
	if markup_ {
		text = html.UnescapeString(markup.ReplaceAllString(text, "\n"))
	}
	text = quoted.ReplaceAllString(text, " ")
	var found []string
	for _, m := range englishRun.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(errnoTexts, m[1]) {
			found = append(found, m[1])
		}
	}
	return found
}

// TestEnglishIn: the checker finds English sentences and lets names,
// flags, fields, quotes and segments be.
func TestEnglishIn(t *testing.T) {
	tests := []struct {
		text   string
		markup bool
		want   []string
	}{
		{"halfclose        waiting 300ms: the server thinks", false, []string{"the server thinks"}},
		{"nftables: drop data segment #5 to port 8000", false, []string{"drop data segment"}},
		{"(可选的, 这次没有出现: a C>S ACK without data)", false, nil},
		{"(可选的, 这次没有出现: a C>S ACK without any data)", false, []string{"without any data"}},
		{"3. 客户端回ack\n   - `C>S ACK         seq=1 ack=1 len=0   (frame 3, +0.000s)`  ESTABLISHED/ESTABLISHED", false, nil},
		{"没有\"previous segment not captured\"", false, nil},
		{"kernel: 客户端: 拥塞窗口 10 -> 11, ca_state open, 平滑RTT 0.03 ms", false, nil},
		{"tcplab run -lang zh -keepalive-idle 8s", false, nil},
		{"<style>body { font-family: \"Source Han Sans SC\" }</style><p>连接建立</p>", true, nil},
		{"<p>The connection is established.</p>", true, []string{"The connection is established"}},
		{"<text>the server&#39;s kernel</text>", true, []string{"the server's kernel"}},
		{"ECONNRESET (connection reset by peer)", false, nil},
	}
	for _, tt := range tests {
		if got := englishIn(tt.text, tt.markup); !slices.Equal(got, tt.want) {
			t.Errorf("englishIn(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

// TestChineseRunIsChinese: a -lang zh run of every scenario prints
// Chinese and writes Chinese: no English sentence in its progress, its
// table, its walkthroughs, diagrams, index and the events and summary of
// result.json. capture.pcapng's comments stay English on purpose (README).
func TestChineseRunIsChinese(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	var names []string
	for _, sc := range All() {
		names = append(names, sc.Name)
	}
	args := append([]string{"run", "-lang", "zh", "-out", out}, names...)
	if code := lab.Command("tcplab", args, &stdout, &stderr, All()); code != lab.ExitPass {
		t.Fatalf("run -lang zh: exit %d\n%s%s", code, stderr.String(), stdout.String())
	}
	check := func(what, text string, markup bool) {
		if found := englishIn(text, markup); len(found) > 0 {
			t.Errorf("%s is English in a -lang zh run: %q", what, found)
		}
	}
	check("the progress", stderr.String(), false)
	// Every progress line says something, after the scenario's name, and
	// says it in Chinese: a single English word ("started") is English too.
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		_, said, _ := strings.Cut(strings.TrimSpace(l), " ")
		if !strings.ContainsFunc(said, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
			t.Errorf("progress line without Chinese: %q", l)
		}
	}
	check("the table", stdout.String(), false)
	files, _ := filepath.Glob(filepath.Join(out, "*", "*"))
	files = append(files, filepath.Join(out, report.IndexFile))
	n := 0
	for _, f := range files {
		name := filepath.Base(f)
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a directory
		}
		rel, _ := filepath.Rel(out, f)
		switch {
		case name == report.ResultFile:
			var r report.Result
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			check(rel+" summary", r.Summary, false)
			check(rel+" events", strings.Join(r.Events, "\n"), false)
		case strings.HasSuffix(name, ".md"):
			check(rel, string(b), false)
		case strings.HasSuffix(name, ".html"), strings.HasSuffix(name, ".svg"):
			check(rel, string(b), true)
		default:
			continue
		}
		n++
	}
	if want := 5 * len(names); n < want {
		t.Errorf("checked %d files, want at least %d (walkthrough.md and .html, ladder.svg, result.json per scenario, and the index)", n, want)
	}
}

// TestChineseAnnotateIsChinese: what annotate writes with -lang zh (the
// walkthrough, the ladder, the time-sequence graph of any capture) has no
// English sentence either.
func TestChineseAnnotateIsChinese(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"-walkthrough": "w.md", "-ladder": "l.svg", "-tseq": "t.svg"}
	args := []string{"annotate", "-lang", "zh"}
	for flag, name := range files {
		args = append(args, flag, filepath.Join(dir, name))
	}
	for _, fixture := range []string{"../capture/testdata/keepalive.pcap", "testdata/readme-walkthrough.pcapng", "testdata/readme-reset.pcapng"} {
		var stdout, stderr bytes.Buffer
		if code := lab.Command("tcplab", append(args, fixture), &stdout, &stderr, All()); code != lab.ExitPass {
			t.Fatalf("annotate %s: exit %d: %s", fixture, code, stderr.String())
		}
		for _, name := range files {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if found := englishIn(string(b), !strings.HasSuffix(name, ".md")); len(found) > 0 {
				t.Errorf("annotate -lang zh %s of %s is English: %q", name, fixture, found)
			}
		}
	}
}
