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
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/expect"
)

// writeRun lays out the artifacts of a made-up run in out: a scenario that
// passed with all its files, and one that failed and wrote only its
// diagram and result.
func writeRun(t *testing.T, out string) []Result {
	t.Helper()
	talk := keepAliveTalk()
	two, rst := twoStreams()
	rst.Scenario = "two-streams"
	results := []Result{{
		Scenario: "keepalive", Summary: "keep-alive probe & its ACK", Pass: true,
		Frames: 11, Segments: 11, Sandbox: "netns", Seconds: 1.83, Dir: filepath.Join(out, "keepalive"),
	}, {
		Scenario: "two-streams", Summary: "two connections, the second <reset>",
		Error: "client: connection reset by peer", Mismatches: []expect.Mismatch{rst},
		Frames: 10, Segments: 10, Sandbox: "netns", Seconds: 0.31, Dir: filepath.Join(out, "two-streams"),
	}}
	for _, r := range results {
		if err := os.MkdirAll(r.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteResult(r.Dir, &r); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"capture.pcapng", "walkthrough.md"} {
		if err := os.WriteFile(filepath.Join(out, "keepalive", name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeFile(filepath.Join(results[0].Dir, LadderFile), Ladder("keepalive", talk.seen, talk.verdict())); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(results[1].Dir, LadderFile), Ladder("two-streams", two.seen, two.verdict(rst))); err != nil {
		t.Fatal(err)
	}
	return results
}

func TestWriteIndex(t *testing.T) {
	out := t.TempDir()
	results := writeRun(t, out)
	if err := WriteIndex(out, results); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("index.html does not parse: %v", err)
	}
	var hrefs, imgs, pres, verdicts, missing []string
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
		case n.Data == "link" || n.Data == "script" || (n.Data != "a" && htmlAttr(n, "src") != "" && n.Data != "img"):
			t.Errorf("index.html loads an external resource: <%s>", n.Data)
		}
	}

	for _, want := range []string{
		"#scenario-keepalive", "#scenario-two-streams",
		"keepalive/capture.pcapng", "keepalive/walkthrough.md", "keepalive/ladder.svg", "keepalive/result.json",
		"two-streams/ladder.svg", "two-streams/result.json",
	} {
		if !slices.Contains(hrefs, want) {
			t.Errorf("no link to %s; links: %q", want, hrefs)
		}
	}
	for _, absent := range []string{"two-streams/capture.pcapng", "two-streams/walkthrough.md"} {
		if slices.Contains(hrefs, absent) {
			t.Errorf("link to %s, which was not written", absent)
		}
	}
	if want := []string{"capture.pcapng", "walkthrough.md"}; !slices.Equal(missing, want) {
		t.Errorf("artifacts shown as missing: %q, want %q", missing, want)
	}
	if want := []string{"keepalive/ladder.svg", "two-streams/ladder.svg"}; !slices.Equal(imgs, want) {
		t.Errorf("inline diagrams %q, want %q", imgs, want)
	}
	// Each verdict shows twice: in the table and over its section.
	wantVerdicts := []string{"verdict pass:PASS", "verdict fail:FAIL", "verdict pass:PASS", "verdict fail:FAIL"}
	if !slices.Equal(verdicts, wantVerdicts) {
		t.Errorf("verdicts %q, want %q", verdicts, wantVerdicts)
	}
	if len(pres) != 1 || pres[0] != results[1].Failure() {
		t.Errorf("failure texts %q, want only the failed scenario's:\n%s", pres, results[1].Failure())
	}
	for _, want := range []string{"keep-alive probe &amp; its ACK", "the second &lt;reset&gt;", "1 passed, 1 failed"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("index.html lacks %q", want)
		}
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
	if testing.Short() {
		t.Skip("skipping test; it starts a browser, and -short is set")
	}
	chromium := testenv.Tool(t, "chromium")
	out := t.TempDir()
	if err := WriteIndex(out, writeRun(t, out)); err != nil {
		t.Fatal(err)
	}
	// Chromium's helper processes may outlive the browser for a moment;
	// its profile is removed on a best-effort basis.
	profile, err := os.MkdirTemp("", "tcplab-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	shot := filepath.Join(out, "shot.png")
	page, err := filepath.Abs(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--screenshot="+shot, "--window-size=1200,1600",
		"file://"+filepath.ToSlash(page))
	cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	cmd.WaitDelay = 5 * time.Second // helpers that keep the output pipe open
	if b, err := cmd.CombinedOutput(); err != nil {
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
	c := countColours(img)
	t.Logf("screenshot %s: %v: %d of %d pixels not white, %d PASS green, %d FAIL red, %d state purple",
		shot, img.Bounds().Size(), c.ink, c.total, c.green, c.red, c.purple)
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
	if c.purple < 100 {
		t.Errorf("%d purple pixels: the ladder diagrams did not load (their TCP states are purple)", c.purple)
	}
}

// colours counts the pixels of a screenshot by kind.
type colours struct {
	total, ink, green, red, purple int
}

// countColours sorts the pixels of img: ink is anything not near white;
// green and red are the solid colours of the PASS and FAIL badges; purple
// is the hue of the TCP states in the diagrams, anti-aliased edges
// included.
func countColours(img image.Image) colours {
	var c colours
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r32, g32, b32, _ := img.At(x, y).RGBA()
			r, g, bl := int(r32>>8), int(g32>>8), int(b32>>8)
			c.total++
			if r < 235 || g < 235 || bl < 235 {
				c.ink++
			}
			switch {
			case near(r, g, bl, colourPass):
				c.green++
			case near(r, g, bl, colourBad):
				c.red++
			case r-g > 25 && bl-r > 25:
				c.purple++
			}
		}
	}
	return c
}

// near reports whether the colour r, g, b is within a few steps of hex,
// written "#rrggbb".
func near(r, g, b int, hex string) bool {
	var hr, hg, hb int
	if _, err := fmt.Sscanf(hex, "#%02x%02x%02x", &hr, &hg, &hb); err != nil {
		return false
	}
	return max(r-hr, hr-r) <= 12 && max(g-hg, hg-g) <= 12 && max(b-hb, hb-b) <= 12
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
