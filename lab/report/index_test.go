package report

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/expect"
)

// writeRun lays out the artifacts of a made-up run in out, with its fixed
// texts in lang: a scenario that passed with all its files, one that
// failed and one that was interrupted, which wrote only their diagrams and
// results.
func writeRun(t *testing.T, out string, lang expect.Lang) []Result {
	t.Helper()
	talk := keepAliveTalk()
	two, rst := twoStreams()
	rst.Scenario = "two-streams"
	cut := keepAliveTalk()
	cut.seen, cut.steps = cut.seen[:5], cut.steps[:5]
	results := []Result{{
		Scenario: "keepalive", Summary: "keep-alive probe & its ACK", Pass: true,
		Frames: 11, Segments: 11, Sandbox: "netns", Seconds: 1.83, Dir: filepath.Join(out, "keepalive"),
	}, {
		Scenario: "two-streams", Summary: "two connections, the second <reset>",
		Error: "client: connection reset by peer", Mismatches: []expect.Mismatch{rst},
		Frames: 10, Segments: 10, Sandbox: "netns", Seconds: 0.31, Dir: filepath.Join(out, "two-streams"),
	}, {
		Scenario: "stopped", Summary: "stopped by Ctrl-C", Interrupted: true,
		Frames: 5, Segments: 5, Sandbox: "netns", Seconds: 0.12, Dir: filepath.Join(out, "stopped"),
	}}
	for _, r := range results {
		if err := os.MkdirAll(r.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteResult(openDir(t, r.Dir), &r); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"capture.pcapng", "walkthrough.html", "walkthrough.md"} {
		if err := os.WriteFile(filepath.Join(out, "keepalive", name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ladders := []struct {
		c *fakeCapture
		v *expect.Verdict
	}{{talk, talk.verdict()}, {two, two.verdict(rst)}, {cut, cut.verdict()}}
	for i, l := range ladders {
		if err := openDir(t, results[i].Dir).WriteFile(LadderFile, Ladder(results[i].Scenario, l.c.seen, l.v, lang)); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteIndex(out, results, lang); err != nil {
		t.Fatal(err)
	}
	return results
}

func TestWriteIndex(t *testing.T) {
	out := t.TempDir()
	results := writeRun(t, out, expect.English)
	b, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("index.html does not parse: %v", err)
	}
	var hrefs, imgs, pres, verdicts, missing, times []string
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch {
		case n.Data == "a":
			hrefs = append(hrefs, htmlAttr(n, "href"))
		case n.Data == "img":
			imgs = append(imgs, htmlAttr(n, "src"))
		case n.Data == "pre":
			pres = append(pres, htmlText(n))
		case n.Data == "span" && strings.Contains(htmlAttr(n, "class"), "verdict"):
			verdicts = append(verdicts, htmlAttr(n, "class")+":"+htmlText(n))
		case n.Data == "span" && htmlAttr(n, "class") == "missing":
			missing = append(missing, htmlText(n))
		case n.Data == "td" && htmlAttr(n, "class") == "num" && strings.Contains(htmlText(n), "."):
			times = append(times, htmlText(n))
		case n.Data == "link" || n.Data == "script" || (n.Data != "a" && htmlAttr(n, "src") != "" && n.Data != "img"):
			t.Errorf("index.html loads an external resource: <%s>", n.Data)
		}
	}

	for _, want := range []string{
		"#scenario-keepalive", "#scenario-two-streams", "#scenario-stopped",
		"keepalive/capture.pcapng", "keepalive/walkthrough.html", "keepalive/walkthrough.md", "keepalive/ladder.svg",
		"keepalive/result.json", "two-streams/ladder.svg", "two-streams/result.json", "stopped/ladder.svg",
	} {
		if !slices.Contains(hrefs, want) {
			t.Errorf("no link to %s; links: %q", want, hrefs)
		}
	}
	for _, absent := range []string{"two-streams/capture.pcapng", "two-streams/walkthrough.html", "two-streams/walkthrough.md"} {
		if slices.Contains(hrefs, absent) {
			t.Errorf("link to %s, which was not written", absent)
		}
	}
	if want := []string{
		"capture.pcapng", "walkthrough.html", "walkthrough.md", "capture.pcapng", "walkthrough.html", "walkthrough.md",
	}; !slices.Equal(missing, want) {
		t.Errorf("artifacts shown as missing: %q, want %q", missing, want)
	}
	if want := []string{"keepalive/ladder.svg", "two-streams/ladder.svg", "stopped/ladder.svg"}; !slices.Equal(imgs, want) {
		t.Errorf("inline diagrams %q, want %q", imgs, want)
	}
	// Each verdict shows twice: in the table and over its section.
	wantVerdicts := []string{
		"verdict pass:PASS", "verdict fail:FAIL", "verdict interrupted:INTERRUPTED",
		"verdict pass:PASS", "verdict fail:FAIL", "verdict interrupted:INTERRUPTED",
	}
	if !slices.Equal(verdicts, wantVerdicts) {
		t.Errorf("verdicts %q, want %q", verdicts, wantVerdicts)
	}
	if len(pres) != 1 || pres[0] != results[1].Failure() {
		t.Errorf("failure texts %q, want only the failed scenario's:\n%s", pres, results[1].Failure())
	}
	// The time must not wrap in its column ("2.39" over "s"): a
	// non-breaking space, and nowrap for the other columns of numbers.
	if want := []string{"1.83\u00a0s", "0.31\u00a0s", "0.12\u00a0s"}; !slices.Equal(times, want) {
		t.Errorf("time column %q, want %q: a number and its unit joined by a non-breaking space", times, want)
	}
	if !regexp.MustCompile(`td\.num \{[^}]*white-space: nowrap`).Match(b) {
		t.Error("the numbers' column (td.num) may wrap: its style lacks white-space: nowrap")
	}
	for _, want := range []string{"keep-alive probe &amp; its ACK", "the second &lt;reset&gt;", "3 scenarios: 1 passed, 1 failed, 1 interrupted."} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("index.html lacks %q", want)
		}
	}
}

// TestIndexListsEarlierRuns: a run of some scenarios into an out that
// holds others' folders lists them all, each with its own result and when
// it ran; a folder without a result.json is not a scenario's.
func TestIndexListsEarlierRuns(t *testing.T) {
	out := t.TempDir()
	results := writeRun(t, out, expect.English)
	if err := os.MkdirAll(filepath.Join(out, "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	again := results[1]
	again.Pass, again.Error, again.Mismatches = true, "", nil
	if err := WriteIndex(out, []Result{again}, expect.English); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		`href="#scenario-keepalive"`, `href="#scenario-two-streams"`, `href="#scenario-stopped"`,
		"3 scenarios: 2 passed, 0 failed, 1 interrupted.", "1 ran now, 2 in earlier runs",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if strings.Contains(page, "notes") || strings.Contains(page, "verdict fail") {
		t.Error("index.html lists a folder without a result, or the earlier failure of a scenario run again")
	}
	if n := len(regexp.MustCompile(`<td class="when">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>`).FindAllString(page, -1)); n != 3 {
		t.Errorf("%d rows say when they ran, want 3", n)
	}
	// The run's own result comes first.
	if i, j := strings.Index(page, "#scenario-two-streams"), strings.Index(page, "#scenario-keepalive"); i > j {
		t.Error("the scenario run now is not listed first")
	}
}

func TestResultDir(t *testing.T) {
	out := filepath.Join("out", "run")
	abs, err := filepath.Abs(filepath.Join(out, "x"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir, want string
	}{
		{filepath.Join(out, "x"), "x"},
		{abs, "x"},
		{filepath.Join(out, "soak", "x"), "soak/x"},
		{"", "x"},
		{filepath.Join("elsewhere", "x"), "x"},
		{out, "x"},
	}
	for _, tt := range tests {
		if got := resultDir(out, &Result{Scenario: "x", Dir: tt.dir}); got != tt.want {
			t.Errorf("resultDir(%q, Dir %q) = %q, want %q", out, tt.dir, got, tt.want)
		}
	}
}

// TestIndexInChromium renders index.html in a real browser and checks the
// screenshot: not blank, the CSS applied (green and red verdicts) and the
// diagrams loaded from their files (the purple of the TCP states appears
// in the diagrams only).
func TestIndexInChromium(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("skipping test; it starts a browser, and -short is set")
	}
	chromium := testenv.Tool(t, "chromium")
	out := t.TempDir()
	writeRun(t, out, expect.English)
	shot, img := screenshot(t, chromium, filepath.Join(out, "index.html"), 1200, 1600)
	c := countColours(img)
	t.Logf("screenshot %s: %v: %d of %d pixels not white, %d PASS green, %d FAIL red, %d INTERRUPTED amber, %d state purple",
		shot, img.Bounds().Size(), c.ink, c.total, c.green, c.red, c.amber, c.purple)
	if c.ink < c.total/50 {
		t.Errorf("the screenshot is nearly blank: %d of %d pixels are not white", c.ink, c.total)
	}
	// Each verdict badge is some 700 pixels of solid colour; without the
	// CSS only the diagrams' titles are coloured, a few hundred pixels.
	if c.green < 900 {
		t.Errorf("%d pixels of the PASS green: the verdict badges were not drawn; did the CSS apply?", c.green)
	}
	if c.red < 1000 {
		t.Errorf("%d pixels of the FAIL red: the verdict badges were not drawn; did the CSS apply?", c.red)
	}
	if c.amber < 900 {
		t.Errorf("%d pixels of the INTERRUPTED amber: its verdict badges were not drawn; did the CSS apply?", c.amber)
	}
	if c.purple < 100 {
		t.Errorf("%d purple pixels: the ladder diagrams did not load (their TCP states are purple)", c.purple)
	}
}

// screenshot opens page, a file, in headless chromium with a window of
// width by height pixels, and returns the screenshot's path and image.
func screenshot(t *testing.T, chromium, page string, width, height int) (string, image.Image) {
	t.Helper()
	// Chromium's helper processes may outlive the browser for a moment;
	// its profile is removed on a best-effort basis.
	profile, err := os.MkdirTemp("", "tcplab-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	page, err = filepath.Abs(page)
	if err != nil {
		t.Fatal(err)
	}
	shot := strings.TrimSuffix(page, filepath.Ext(page)) + ".png"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", width, height),
		"file://"+filepath.ToSlash(page))
	cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	// Chromium's output goes to a file, not a pipe: its helpers keep their
	// copy of a pipe open for seconds after the browser exits, and Wait
	// would wait for them.
	log, err := os.Create(filepath.Join(profile, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return shot, img
}

// colours counts the pixels of a screenshot by kind.
type colours struct {
	total, ink, green, red, amber, purple int
}

// countColours sorts the pixels of img: ink is anything not near white;
// green, red and amber are the solid colours of the PASS, FAIL and
// INTERRUPTED badges (red is also a failure's elsewhere); purple
// is the hue of the TCP states in the diagrams, anti-aliased edges
// included.
func countColours(img image.Image) colours {
	var c colours
	// The colours are parsed once: a screenshot has millions of pixels.
	green, red, amber := rgbOf(colourPass), rgbOf(colourBad), rgbOf(colourAmber)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r32, g32, b32, _ := img.At(x, y).RGBA()
			px := rgb{int(r32 >> 8), int(g32 >> 8), int(b32 >> 8)}
			c.total++
			if px.r < 235 || px.g < 235 || px.b < 235 {
				c.ink++
			}
			switch {
			case px.near(green):
				c.green++
			case px.near(red):
				c.red++
			case px.near(amber):
				c.amber++
			case px.r-px.g > 25 && px.b-px.r > 25:
				c.purple++
			}
		}
	}
	return c
}

// rgb is a colour, each channel 0-255.
type rgb struct{ r, g, b int }

// rgbOf returns the colour written "#rrggbb".
func rgbOf(hex string) rgb {
	var c rgb
	if _, err := fmt.Sscanf(hex, "#%02x%02x%02x", &c.r, &c.g, &c.b); err != nil {
		panic("bad colour " + hex)
	}
	return c
}

// near reports whether c is within a few steps of d in every channel.
func (c rgb) near(d rgb) bool {
	return max(c.r-d.r, d.r-c.r) <= 12 && max(c.g-d.g, d.g-c.g) <= 12 && max(c.b-d.b, d.b-c.b) <= 12
}

// htmlAttr returns the value of n's attribute key, or "".
func htmlAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// htmlText returns the text inside n.
func htmlText(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}
