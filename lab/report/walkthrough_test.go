package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/html"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/expect"
)

// talkSteps are the expected steps of keepAliveTalk, explained in both
// languages: the handshake, a remark, the request and its ACK, the
// keep-alive and its answer, an optional window update that never comes,
// the response, and the client's close (whose second step explains each
// of its alternatives too).
func talkSteps() []expect.Step {
	return append([]expect.Step{
		expect.C2S(expect.SYN).SeqNum(0).Explain("The client sends a SYN.", "客户端发送syn包"),
		expect.S2C(expect.SYN|expect.ACK).Explain("The server answers with SYN+ACK.", "服务端回syn+ack"),
		expect.C2S(expect.ACK).Length(0).Explain("The client acknowledges it.", "客户端回ack"),
		expect.Note("The connection is established.", "连接建立"),
		expect.Request(5),
		expect.S2C(expect.ACK).Length(0).Explain("The server acknowledges the request.", "服务端确认请求"),
		expect.S2C(expect.ACK).With(capture.KeepAlive).Explain("A keep-alive probe.", "保活探测"),
		expect.C2S(expect.ACK).With(capture.KeepAliveACK).Explain("Its answer.", "保活回应"),
		expect.S2C(expect.ACK).With(capture.WindowUpdate).Optional().Explain("A window update.", "窗口更新"),
		expect.Response(3),
	}, expect.ClientCloses()...)
}

// talkRun judges keepAliveTalk's segments, changed by edit when not nil,
// against talkSteps and returns the run, explained in lang.
func talkRun(lang expect.Lang, edit func(*fakeCapture, *Result)) *Run {
	c := keepAliveTalk()
	r := &Result{
		Scenario: "keepalive", Summary: "a keep-alive probe & its ACK, then <the response>",
		Sandbox: SandboxNetns, Seconds: 1.83, Events: []string{"server: keep-alive idle 1s"},
	}
	if edit != nil {
		edit(c, r)
	}
	return judge(c, r, talkSteps(), lang)
}

// judge matches c's segments against steps and returns the run with its
// result r filled in.
func judge(c *fakeCapture, r *Result, steps []expect.Step, lang expect.Lang) *Run {
	v := expect.Match(r.Scenario, steps, c.seen, expect.Options{})
	r.Frames, r.Segments, r.Mismatches = len(c.seen), len(c.seen), v.Mismatches
	r.Pass = v.Pass && !r.Interrupted
	return &Run{Result: r, Steps: steps, Verdict: &v, Packets: c.seen, Link: layers.LinkTypeRaw, Lang: lang}
}

// badLength makes the request 7 bytes long where 5 are expected: the
// match fails at step 5, and every segment from the request on matches no
// step.
func badLength(c *fakeCapture, _ *Result) { c.seen[3].Segment.Len = 7 }

// interrupted cuts the capture after the keep-alive, as Ctrl-C would.
func interrupted(c *fakeCapture, r *Result) {
	c.seen, c.steps = c.seen[:7], c.steps[:7]
	r.Interrupted = true
}

// bulkRun is a handshake and n data segments, all matched by one repeated
// step; with fail, the steps expect the server to begin, and no segment
// matches any.
func bulkRun(lang expect.Lang, n int, fail bool) *Run {
	c := &fakeCapture{start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	c.handshake(0, 0, 0)
	for i := range n {
		c.add(0, capture.ClientToServer, time.Millisecond+time.Duration(i)*time.Microsecond, capture.ACK, uint32(1+100*i), 1, 100,
			0, capture.Established, capture.Established, 4)
	}
	first := expect.C2S(expect.SYN)
	if fail {
		first = expect.S2C(expect.SYN)
	}
	steps := []expect.Step{
		first.Explain("The client sends a SYN.", "客户端发送syn包"),
		expect.S2C(expect.SYN | expect.ACK), expect.C2S(expect.ACK).Length(0),
		expect.C2S(expect.ACK).WithData().AtLeast(1).Explain("The client sends its data.", "客户端发送数据"),
	}
	return judge(c, &Result{Scenario: "bulk", Summary: "bulk", Sandbox: SandboxNetns}, steps, lang)
}

// walkthroughPageOf is what a test reads of walkthrough.html.
type walkthroughPageOf struct {
	lang                       string
	verdict                    string   // class and text of the verdict badge
	steps                      []string // the ids of the steps, in order
	failed                     []string // the ids of the steps marked failed
	segments                   []int    // per step, the segments listed under it
	noStep                     int      // segments listed as matching no step
	mismatch                   int      // segments marked as where the matching failed
	optional, notSeen, reasons []string
	imgs, hrefs, pres          []string
	texts                      []string // every text node and title, alt and lang attribute
}

// readWalkthroughHTML parses a walkthrough.html; it fails the test if the
// page does not parse or loads anything but the ladder diagram.
func readWalkthroughHTML(t *testing.T, b []byte) *walkthroughPageOf {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("walkthrough.html does not parse: %v", err)
	}
	p := &walkthroughPageOf{texts: htmlTexts(t, b)}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		classes := strings.Fields(htmlAttr(n, "class"))
		switch {
		case n.Data == "html":
			p.lang = htmlAttr(n, "lang")
		case n.Data == "span" && slices.Contains(classes, "verdict"):
			p.verdict = htmlAttr(n, "class") + ":" + htmlText(n)
		case n.Data == "li" && slices.Contains(classes, "step"):
			id := htmlAttr(n, "id")
			p.steps = append(p.steps, id)
			if slices.Contains(classes, "failed") {
				p.failed = append(p.failed, id)
			}
			segs := 0
			for d := range n.Descendants() {
				if d.Type == html.ElementNode && d.Data == "li" && d.FirstChild != nil && d.FirstChild.Data == "code" {
					segs++
				}
			}
			p.segments = append(p.segments, segs)
		case n.Data == "li" && (slices.Contains(classes, "nostep") || slices.Contains(classes, "mismatch")):
			if slices.Contains(classes, "nostep") {
				p.noStep++
			}
			if slices.Contains(classes, "mismatch") {
				p.mismatch++
			}
		case n.Data == "p" && slices.Contains(classes, "optional"):
			p.optional = append(p.optional, htmlText(n))
		case n.Data == "p" && slices.Contains(classes, "notseen"):
			p.notSeen = append(p.notSeen, htmlText(n))
		case n.Data == "p" && slices.Contains(classes, "reason"):
			p.reasons = append(p.reasons, htmlText(n))
		case n.Data == "img":
			p.imgs = append(p.imgs, htmlAttr(n, "src"))
		case n.Data == "a":
			p.hrefs = append(p.hrefs, htmlAttr(n, "href"))
		case n.Data == "pre":
			p.pres = append(p.pres, htmlText(n))
		case n.Data == "link" || n.Data == "script" || n.Data == "iframe" || n.Data == "object" ||
			(n.Data != "img" && htmlAttr(n, "src") != ""):
			t.Errorf("walkthrough.html loads an external resource or runs a script: <%s>", n.Data)
		}
	}
	return p
}

func TestWalkthroughHTML(t *testing.T) {
	var steps13 []string
	for i := 1; i <= 13; i++ {
		steps13 = append(steps13, "step-"+strconv.Itoa(i))
	}
	tests := []struct {
		name string
		run  *Run
		// want* are what the page must show.
		wantLang     string
		wantVerdict  string
		wantSteps    []string
		wantFailed   []string
		wantSegments []int
		wantNoStep   int
		wantMismatch int
		wantOptional []string
		wantNotSeen  int
		wantReasons  []string
		wantFailure  bool
		wantText     []string
	}{{
		name:         "pass",
		run:          talkRun(expect.English, nil),
		wantLang:     "en",
		wantVerdict:  "verdict pass:PASS",
		wantSteps:    steps13,
		wantSegments: []int{1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1},
		wantOptional: []string{"(optional, did not happen this time: a S>C ACK (window-update))"},
		wantText: []string{
			"keepalive", "a keep-alive probe & its ACK, then <the response>", "11 TCP segments in 11 frames, 0 dropped, 1.83\u00a0s.",
			"1.", "The client sends a SYN.", "The connection is established.",
			"C>S SYN         seq=0 ack=0 len=0   (frame 1, +0.000s)", "SYN_SENT/SYN_RECEIVED",
			"S>C ACK         seq=0 ack=6 len=0 [keep-alive]   (frame 6, +1.503s)",
			// The inner step of a choice explains itself.
			"\nThe server's application closed before its delayed ACK fired: one segment carries both the ACK of the client's FIN and the server's own FIN.\n",
			"What the peers saw", "server: keep-alive idle 1s",
		},
	}, {
		name:         "the request too long",
		run:          talkRun(expect.English, badLength),
		wantLang:     "en",
		wantVerdict:  "verdict fail:FAIL",
		wantSteps:    steps13,
		wantFailed:   []string{"step-5"},
		wantSegments: []int{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		wantNoStep:   8,
		wantMismatch: 1,
		// Every step after the failure: the optional one too, since the
		// run did not pass.
		wantNotSeen: 8,
		// Over the failed step, and at the segment.
		wantReasons: []string{"✗ step 5: len: expected 5, got 7", "✗ step 5: len: expected 5, got 7"},
		wantFailure: true,
		wantText: []string{
			"expected:", "C>S PSH,ACK     seq=1 ack=* len=5", "actual:", "C>S PSH,ACK     seq=1 ack=1 len=7   (frame 4, +0.002s)",
			"Segments that matched no step", "Why it failed",
		},
	}, {
		name:         "interrupted",
		run:          talkRun(expect.English, interrupted),
		wantLang:     "en",
		wantVerdict:  "verdict interrupted:INTERRUPTED",
		wantSteps:    steps13,
		wantFailed:   []string{"step-10"},
		wantSegments: []int{1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0},
		wantNotSeen:  4,
		wantReasons:  []string{"✗ step 10: missing: expected a segment, got none"},
		wantFailure:  true,
	}, {
		name:         "in Chinese",
		run:          talkRun(expect.Chinese, nil),
		wantLang:     "zh-CN",
		wantVerdict:  "verdict pass:PASS",
		wantSteps:    steps13,
		wantSegments: []int{1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1},
		wantOptional: []string{"(可选的, 这次没有出现: 一个 S>C ACK 包 (window-update))"},
		wantText:     []string{"客户端发送syn包", "连接建立", "\n服务端的应用在延迟ack之前就关闭了, 所以ack和fin在同一个包里\n", "两端看到的"},
	}, {
		name:         "bulk",
		run:          bulkRun(expect.English, 20, false),
		wantLang:     "en",
		wantVerdict:  "verdict pass:PASS",
		wantSteps:    []string{"step-1", "step-2", "step-3", "step-4"},
		wantSegments: []int{1, 1, 1, 2 * walkthroughEnds},
		wantText:     []string{"… 10 more segments …"},
	}, {
		name:         "nothing matched",
		run:          bulkRun(expect.English, 60, true),
		wantLang:     "en",
		wantVerdict:  "verdict fail:FAIL",
		wantSteps:    []string{"step-1", "step-2", "step-3", "step-4"},
		wantFailed:   []string{"step-1"},
		wantSegments: []int{0, 0, 0, 0},
		wantNoStep:   walkthroughExtra,
		wantMismatch: 1,
		wantNotSeen:  3,
		wantReasons:  []string{"✗ step 1: dir: expected S>C, got C>S", "✗ step 1: dir: expected S>C, got C>S"},
		wantFailure:  true,
		wantText:     []string{"… 13 more"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := WalkthroughHTML(tt.run)
			if err != nil {
				t.Fatal(err)
			}
			p := readWalkthroughHTML(t, b)
			if p.lang != tt.wantLang {
				t.Errorf("lang %q, want %q", p.lang, tt.wantLang)
			}
			if p.verdict != tt.wantVerdict {
				t.Errorf("verdict %q, want %q", p.verdict, tt.wantVerdict)
			}
			if !slices.Equal(p.steps, tt.wantSteps) {
				t.Errorf("steps %q, want %q", p.steps, tt.wantSteps)
			}
			if !slices.Equal(p.failed, tt.wantFailed) {
				t.Errorf("steps marked failed %q, want %q", p.failed, tt.wantFailed)
			}
			if !slices.Equal(p.segments, tt.wantSegments) {
				t.Errorf("segments per step %v, want %v", p.segments, tt.wantSegments)
			}
			if p.noStep != tt.wantNoStep || p.mismatch != tt.wantMismatch {
				t.Errorf("%d segments matched no step and %d marked as the mismatch, want %d and %d",
					p.noStep, p.mismatch, tt.wantNoStep, tt.wantMismatch)
			}
			if !slices.Equal(p.optional, tt.wantOptional) {
				t.Errorf("optional steps that did not happen %q, want %q", p.optional, tt.wantOptional)
			}
			if len(p.notSeen) != tt.wantNotSeen {
				t.Errorf("%d steps not seen, want %d: %q", len(p.notSeen), tt.wantNotSeen, p.notSeen)
			}
			if !slices.Equal(p.reasons, tt.wantReasons) {
				t.Errorf("reasons %q, want %q", p.reasons, tt.wantReasons)
			}
			if want := []string{LadderFile}; !slices.Equal(p.imgs, want) {
				t.Errorf("images %q, want only the ladder diagram, by a relative link: %q", p.imgs, want)
			}
			for _, h := range p.hrefs {
				if strings.Contains(h, ":") || strings.HasPrefix(h, "/") {
					t.Errorf("link %q is not relative", h)
				}
			}
			if f := tt.run.Result.Failure(); (len(p.pres) > 0) != tt.wantFailure || (tt.wantFailure && (len(p.pres) != 1 || p.pres[0] != f)) {
				t.Errorf("failure texts %q, want %v: %q", p.pres, tt.wantFailure, f)
			}
			all := "\n" + strings.Join(p.texts, "\n") + "\n"
			for _, s := range tt.wantText {
				if !strings.Contains(all, s) {
					t.Errorf("no text %q on the page; its texts:%s", s, all)
				}
			}
		})
	}
}

// TestStepWithoutText: a step without an explanation is headed by what it
// expects, in the run's language, never by its number alone.
func TestStepWithoutText(t *testing.T) {
	for _, tt := range []struct {
		lang expect.Lang
		want string
	}{{expect.English, "3. A C>S ACK without data.\n"}, {expect.Chinese, "3. 一个不带数据的 C>S ACK 包.\n"}} {
		c := keepAliveTalk()
		c.seen = c.seen[:3]
		steps := talkSteps()[:3]
		steps[2] = expect.C2S(expect.ACK).Length(0)
		run := judge(c, &Result{Scenario: "handshake", Sandbox: SandboxNetns}, steps, tt.lang)
		md := string(Walkthrough(run))
		if !strings.Contains(md, tt.want) || regexp.MustCompile(`(?m)^\d+\. *$`).MatchString(md) {
			t.Errorf("%v: walkthrough.md lacks %q, or has an empty heading:\n%s", tt.lang, tt.want, md)
		}
		page, err := WalkthroughHTML(run)
		if err != nil {
			t.Fatal(err)
		}
		if texts := strings.Join(readWalkthroughHTML(t, page).texts, "\n"); !strings.Contains(texts, strings.TrimPrefix(strings.TrimSpace(tt.want), "3. ")) {
			t.Errorf("%v: walkthrough.html lacks the step's description", tt.lang)
		}
	}
}

// TestWalkthroughHTMLLinks: walkthrough.html links every artifact beside
// it: the time-sequence graph only when data flowed, result.json, and the
// logs of the user's own peers when there are any.
func TestWalkthroughHTMLLinks(t *testing.T) {
	hs := keepAliveTalk()
	hs.seen = hs.seen[:3]
	noData := judge(hs, &Result{Scenario: "handshake", Sandbox: SandboxNetns}, talkSteps()[:3], expect.English)
	logs := talkRun(expect.English, nil)
	logs.Logs = []string{"server.log", "client.log"}
	tests := []struct {
		name string
		run  *Run
		want []string
	}{
		{"data", talkRun(expect.English, nil), []string{CaptureFile, WalkthroughFile, LadderFile, TimeSeqFile, ResultFile}},
		{"no data", noData, []string{CaptureFile, WalkthroughFile, LadderFile, ResultFile}},
		{"your peers", logs, []string{CaptureFile, WalkthroughFile, LadderFile, TimeSeqFile, ResultFile, "server.log", "client.log"}},
	}
	for _, tt := range tests {
		b, err := WalkthroughHTML(tt.run)
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, h := range readWalkthroughHTML(t, b).hrefs {
			if !strings.HasPrefix(h, "#") && !slices.Contains(files, h) {
				files = append(files, h)
			}
		}
		if !slices.Equal(files, tt.want) {
			t.Errorf("%s: walkthrough.html links %q, want %q", tt.name, files, tt.want)
		}
	}
}

// TestWalkthroughMarkdown checks walkthrough.md's parts, which it shares
// with walkthrough.html.
func TestWalkthroughMarkdown(t *testing.T) {
	tests := []struct {
		name   string
		run    *Run
		want   []string
		wantNo []string
	}{{
		name: "pass",
		run:  talkRun(expect.English, nil),
		want: []string{
			"# keepalive\n\na keep-alive probe & its ACK, then <the response>\n\n",
			"Result: **PASS**: 11 TCP segments in 11 frames, 0 dropped, 1.83 s (capture: capture.pcapng).\n\n",
			"1. The client sends a SYN.\n   - `C>S SYN         seq=0 ack=0 len=0   (frame 1, +0.000s)`  SYN_SENT/SYN_RECEIVED\n\n",
			"4. The connection is established.\n\n5. ",
			"   - (optional, did not happen this time: a S>C ACK (window-update))\n",
			"TIME_WAIT/LAST_ACK: The server's application closed before its delayed ACK fired",
			"## What the peers saw\n\n- server: keep-alive idle 1s\n\n",
		},
		wantNo: []string{"not seen", "## Segments that matched no step", "## Why it failed"},
	}, {
		name: "the request too long",
		run:  talkRun(expect.English, badLength),
		want: []string{
			"Result: **FAIL**",
			"5. The client sends its request.\n   - expected `C>S PSH,ACK     seq=1 ack=* len=5`: not seen\n\n",
			"## Segments that matched no step\n\n- `C>S PSH,ACK     seq=1 ack=1 len=7   (frame 4, +0.002s)`\n",
			"## Why it failed\n\n```\nkeepalive step 5: field len: expected 5 vs actual 7\n",
		},
		wantNo: []string{"optional"},
	}, {
		name: "interrupted",
		run:  talkRun(expect.English, interrupted),
		want: []string{"Result: **INTERRUPTED**"},
	}, {
		name: "in Chinese",
		run:  talkRun(expect.Chinese, badLength),
		want: []string{"结果: **FAIL**", "5. 客户端发送请求\n   - 预期 `C>S PSH,ACK     seq=1 ack=* len=5`: 没有出现\n", "## 没有匹配任何步骤的包", "## 失败原因"},
	}, {
		name: "bulk",
		run:  bulkRun(expect.English, 20, false),
		want: []string{"(frame 8, +0.001s)`  ESTABLISHED/ESTABLISHED\n   - … 10 more segments …\n   - `C>S ACK         seq=1501"},
	}, {
		name: "nothing matched",
		run:  bulkRun(expect.English, 60, true),
		want: []string{"(frame 50, +0.001s)`\n- … 13 more\n\n"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := string(Walkthrough(tt.run))
			for _, s := range tt.want {
				if !strings.Contains(md, s) {
					t.Errorf("walkthrough.md lacks %q:\n%s", s, md)
				}
			}
			for _, s := range tt.wantNo {
				if strings.Contains(md, s) {
					t.Errorf("walkthrough.md has %q:\n%s", s, md)
				}
			}
		})
	}
}

// TestWrite checks that Write leaves every artifact of a run but
// result.json, and no temporary file.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(openDir(t, dir), talkRun(expect.English, badLength)); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{CaptureFile, LadderFile, TimeSeqFile, WalkthroughHTMLFile, WalkthroughFile}; !slices.Equal(names, want) {
		t.Errorf("Write wrote %q, want %q", names, want)
	}
}

// TestWalkthroughInChromium renders walkthrough.html in a real browser and
// checks the screenshot: the ladder diagram loads (its TCP states are the
// only purple), a run that passed shows no red, and in one that failed the
// step where the match failed and the segments that matched no step are
// drawn red: the same page without their marks has much less red.
func TestWalkthroughInChromium(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("skipping test; it starts a browser, and -short is set")
	}
	chromium := testenv.Tool(t, "chromium")
	// Wide enough for the diagram beside the steps, tall enough for all.
	const width, height = 1700, 2000
	shoot := func(t *testing.T, dir, name string) colours {
		shot, img := screenshot(t, chromium, filepath.Join(dir, name), width, height)
		c := countColours(img)
		t.Logf("screenshot %s: %d of %d pixels not white, %d PASS green, %d FAIL red, %d INTERRUPTED amber, %d state purple",
			shot, c.ink, c.total, c.green, c.red, c.amber, c.purple)
		if c.ink < c.total/50 {
			t.Errorf("the screenshot is nearly blank: %d of %d pixels are not white", c.ink, c.total)
		}
		if c.purple < 100 {
			t.Errorf("%d purple pixels: the ladder diagram did not load (its TCP states are purple)", c.purple)
		}
		return c
	}

	t.Run("pass", func(t *testing.T) {
		dir := t.TempDir()
		if err := Write(openDir(t, dir), talkRun(expect.English, nil)); err != nil {
			t.Fatal(err)
		}
		c := shoot(t, dir, WalkthroughHTMLFile)
		if c.green < 400 {
			t.Errorf("%d pixels of the PASS green: the verdict badge was not drawn; did the CSS apply?", c.green)
		}
		// The diagram's legend has its two red arrows, some 140 pixels.
		if c.red > 300 {
			t.Errorf("%d red pixels in a run that passed, want none but the diagram's legend", c.red)
		}
	})

	t.Run("fail", func(t *testing.T) {
		dir := t.TempDir()
		if err := Write(openDir(t, dir), talkRun(expect.English, badLength)); err != nil {
			t.Fatal(err)
		}
		page, err := os.ReadFile(filepath.Join(dir, WalkthroughHTMLFile))
		if err != nil {
			t.Fatal(err)
		}
		all := shoot(t, dir, WalkthroughHTMLFile)
		marks := []struct {
			what     string
			old, new string // the mark in the page, and the page without it
		}{
			{"the step where the match failed", `class="step failed"`, `class="step"`},
			{"the segments that matched no step", `class="nostep`, `class="`},
		}
		for i, m := range marks {
			if !bytes.Contains(page, []byte(m.old)) {
				t.Fatalf("walkthrough.html has no %s", m.old)
			}
			name := "unmarked-" + strconv.Itoa(i) + ".html"
			if err := os.WriteFile(filepath.Join(dir, name), bytes.ReplaceAll(page, []byte(m.old), []byte(m.new)), 0o644); err != nil {
				t.Fatal(err)
			}
			c := shoot(t, dir, name)
			if all.red-c.red < 1000 {
				t.Errorf("%s adds %d red pixels (%d with, %d without), want them drawn red", m.what, all.red-c.red, all.red, c.red)
			}
		}
	})
}
