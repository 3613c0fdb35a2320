package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// TestFixedTexts renders each artifact that has fixed texts in English and
// in Chinese, over runs that show all of them, and checks that each text
// appears in its own language and not in the other: a Chinese reader sees
// no English but the protocol's and the run's own words.
func TestFixedTexts(t *testing.T) {
	// A text alone on its line is a whole text node or attribute: a word
	// such as "client" is a fixed text only when it stands alone.
	tests := []struct {
		artifact string
		render   func(t *testing.T, lang expect.Lang) string
		texts    []struct{ en, zh string }
	}{{
		artifact: "ladder.svg",
		render:   allLadderTexts,
		texts: []struct{ en, zh string }{
			{"ladder diagram of the keep-alive scenario", "keep-alive 场景的时序图"},
			{"11 TCP segments on 1 connection. Time goes down, one row per segment; seq and ack are relative.",
				"1 个连接上的 11 个TCP包. 时间自上而下, 每行一个包; seq 和 ack 是相对序号."},
			{"10 TCP segments on 2 connections.", "2 个连接上的 10 个TCP包."},
			{"\nmatched step N\n", "\n匹配步骤 N\n"},
			{"\nmatched no step\n", "\n没有匹配任何步骤\n"},
			{"\nmismatch (reason below it)\n", "\n不匹配 (原因写在下方)\n"},
			{"\nSTATE\n", "\n状态\n"},
			{"\nTCP state after the segment, when it changes\n", "\n这个包之后的TCP状态, 变化时标出\n"},
			{"\nclient\n", "\n客户端\n"},
			{"\nserver\n", "\n服务端\n"},
			{"\nconnection 1\n", "\n连接 1\n"},
			{"\nstep 1\n", "\n步骤 1\n"},
			{"\nno step\n", "\n无步骤\n"},
			{"\nmismatch\n", "\n不匹配\n"},
			{"frame 1: step 1\n", "第 1 帧: 步骤 1\n"},
			{"frame 4: matched no expected step", "第 4 帧: 没有匹配任何预期步骤"},
			{"… 1.5 s later …", "… 1.5 秒后 …"},
			{"… 499 ms later …", "… 499 毫秒后 …"},
			{"… 11 segments not drawn …", "… 省略 11 个包 …"},
			{"✗ step 10: flags: expected FIN,ACK, got RST,ACK", "✗ 步骤 10: flags: 预期 FIN,ACK, 实际 RST,ACK"},
			{"No TCP segments were captured.", "没有抓到TCP包."},
		},
	}, {
		artifact: "tseq.svg",
		render:   allTimeSequenceTexts,
		texts: []struct{ en, zh string }{
			{"time-sequence graph of retrans.pcap", "retrans.pcap 的时间-序号图"},
			{"\nretrans.pcap: time-sequence graph\n", "\nretrans.pcap: 时间-序号图\n"},
			{"2 connections with data. Per direction, the sender's view: time across, relative sequence number up (tcptrace style).",
				"2 个连接带数据. 每个方向一张图, 从发送方看: 横轴是时间, 纵轴是相对序号 (tcptrace 风格)."},
			{"\n1 connection with data.", "\n1 个连接带数据."},
			{"\ndata\n", "\n数据\n"},
			{"\nretransmission\n", "\n重传\n"},
			{"\nfast retransmission\n", "\n快速重传\n"},
			{"\nout of order\n", "\n乱序\n"},
			{"\nACK\n", "\n确认号\n"},
			{"\nwindow edge (ACK + window)\n", "\n窗口右沿 (确认号 + 窗口)\n"},
			{"\nSACK block\n", "\nSACK 块\n"},
			{"\nzero window\n", "\n零窗口\n"},
			{"\nconnection 0: client to server 127.0.0.1:40000", "\n连接 0: 客户端发往服务端 127.0.0.1:40000"},
			{"\nserver to client 127.0.0.1:8080", "\n服务端发往客户端 127.0.0.1:8080"},
			{"\n759 data segments, 1.0 MiB, in 1.92 s\n", "\n759 个数据包, 1.0 MiB, 用时 1.92 秒\n"},
			{"\n1 data segment, 12 B, in 752.2 ms\n", "\n1 个数据包, 12 B, 用时 752.2 毫秒\n"},
			{"\ntime since the connection's first segment (s)\n", "\n自连接第一个包起的时间 (秒)\n"},
			{"\ntime since the connection's first segment (ms)\n", "\n自连接第一个包起的时间 (毫秒)\n"},
			{"\nrelative sequence number (MiB)\n", "\n相对序号 (MiB)\n"},
			{"\nrelative sequence number (bytes)\n", "\n相对序号 (字节)\n"},
			{"\nThe window edge lies above the graph (up to 63.0 KiB).\n", "\n窗口右沿在图的上方 (最高 63.0 KiB).\n"},
			{"\nframe 226: seq 215753 to 217201\n", "\n第 226 帧: 序号 215753 到 217201\n"},
			{": 2 segments, seq ", " 个包, 序号 "},
			{"\nframe 7: zero window at ack 4097\n", "\n第 7 帧: 零窗口, 确认号 4097\n"},
		},
	}, {
		artifact: "walkthrough.html",
		render:   allWalkthroughHTMLTexts,
		texts: []struct{ en, zh string }{
			{"\nen\n", "\nzh-CN\n"},
			{"keepalive: PASS, step by step", "keepalive: PASS, 逐步讲解"},
			{"11 TCP segments in 11 frames, 0 dropped, 1.83\u00a0s.", "11 个TCP包, 共 11 帧, 丢弃 0 个, 用时 1.83\u00a0秒."},
			{"ladder diagram of the keepalive scenario", "keepalive 场景的时序图"},
			{"\nStep by step\n", "\n逐步讲解\n"},
			{"(optional, did not happen this time: a S>C ACK (window-update))", "(可选的, 这次没有出现: 一个 S>C ACK 包 (window-update))"},
			{"\nexpected\n", "\n预期\n"},
			{": not seen", ": 没有出现"},
			{"\nexpected:\n", "\n预期:\n"},
			{"\nactual:\n", "\n实际:\n"},
			{"✗ step 5: len: expected 5, got 7", "✗ 步骤 5: len: 预期 5, 实际 7"},
			{"… 10 more segments …", "… 还有 10 个包 …"},
			{"\nSegments that matched no step\n", "\n没有匹配任何步骤的包\n"},
			{"… 13 more", "… 还有 13 个"},
			{"\nWhat the peers saw\n", "\n两端看到的\n"},
			{"\nWhy it failed\n", "\n失败原因\n"},
		},
	}, {
		artifact: "index.html",
		render:   allIndexTexts,
		texts: []struct{ en, zh string }{
			{"\nen\n", "\nzh-CN\n"},
			{"tcplab: 1 of 3 scenarios passed", "tcplab: 1 个通过, 共 3 个场景"},
			{"3 scenarios: 1 passed, 1 failed, 1 interrupted.", "共 3 个场景: 1 个通过, 1 个失败, 1 个中断."},
			{"\nscenario\n", "\n场景\n"},
			{"\nresult\n", "\n结果\n"},
			{"\nsegments\n", "\nTCP包\n"},
			{"\ntime\n", "\n用时\n"},
			{"\nsummary\n", "\n说明\n"},
			{"\n1.83\u00a0s\n", "\n1.83\u00a0秒\n"},
			{"11 TCP segments in 11 frames, 0 dropped, 1.83\u00a0s, netns", "11 个TCP包, 共 11 帧, 丢弃 0 个, 用时 1.83\u00a0秒, netns"},
			{"\nnot written\n", "\n没有写出\n"},
			{"ladder diagram of keepalive", "keepalive 的时序图"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.artifact, func(t *testing.T) {
			en, zh := tt.render(t, expect.English), tt.render(t, expect.Chinese)
			for _, x := range tt.texts {
				for _, c := range []struct {
					lang           string
					doc            string
					want, unwanted string
				}{{"English", en, x.en, x.zh}, {"Chinese", zh, x.zh, x.en}} {
					if !strings.Contains(c.doc, c.want) {
						t.Errorf("%s in %s lacks %q", tt.artifact, c.lang, c.want)
					}
					if strings.Contains(c.doc, c.unwanted) {
						t.Errorf("%s in %s has %q", tt.artifact, c.lang, c.unwanted)
					}
				}
			}
			if t.Failed() {
				t.Logf("the texts in English:%s\nthe texts in Chinese:%s", en, zh)
			}
		})
	}
}

// lines joins texts one a line, with a newline at each end, so that a
// whole text can be looked for as "\ntext\n".
func lines(texts []string) string {
	return "\n" + strings.Join(texts, "\n") + "\n"
}

// allLadderTexts returns every text of the diagrams that show all the
// ladder's fixed texts, in lang: a pause, a failed match over two
// connections, rows left out, and no segment at all.
func allLadderTexts(t *testing.T, lang expect.Lang) string {
	t.Helper()
	talk := keepAliveTalk()
	two, rst := twoStreams()
	long := &fakeCapture{start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	long.handshake(0, 0, 0)
	for i := range ladderRows + 7 {
		long.add(0, capture.ClientToServer, time.Millisecond+time.Duration(i)*time.Microsecond, capture.ACK, uint32(1+100*i), 1, 100,
			0, capture.Established, capture.Established, 4)
	}
	long.add(0, capture.ServerToClient, 500*time.Millisecond, capture.ACK, 1, 100*(ladderRows+7)+1, 0,
		0, capture.Established, capture.Established, 5)
	var texts []string
	for _, d := range []struct {
		name string
		c    *fakeCapture
		v    *expect.Verdict
	}{
		{"keep-alive", talk, talk.verdict()},
		{"two", two, two.verdict(rst)},
		{"long", long, long.verdict()},
		{"nothing", &fakeCapture{}, (&fakeCapture{}).verdict()},
	} {
		for _, e := range parseSVG(t, Ladder(d.name, d.c.seen, d.v, lang)) {
			if e.name == "text" || e.name == "tspan" || e.name == "title" {
				texts = append(texts, e.text)
			}
		}
	}
	return lines(texts)
}

// allTimeSequenceTexts returns every text of the time-sequence graphs of
// fixtures that show its fixed texts, in lang: two connections with
// retransmissions, a zero window, a window edge above a small transfer.
func allTimeSequenceTexts(t *testing.T, lang expect.Lang) string {
	t.Helper()
	var texts []string
	for _, f := range []string{fixtureRetrans, fixtureWalkthrough, "../../capture/testdata/smalldata.pcap"} {
		doc, err := TimeSequence(filepath.Base(f), annotated(t, f, -1), lang)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range parseSVG(t, doc) {
			if e.name == "text" || e.name == "tspan" || e.name == "title" {
				texts = append(texts, e.text)
			}
		}
	}
	return lines(texts)
}

// allWalkthroughHTMLTexts returns every text of the walkthrough pages that
// show all their fixed texts, in lang.
func allWalkthroughHTMLTexts(t *testing.T, lang expect.Lang) string {
	t.Helper()
	var texts []string
	for _, run := range []*Run{talkRun(lang, nil), talkRun(lang, badLength), bulkRun(lang, 20, false), bulkRun(lang, 60, true)} {
		b, err := WalkthroughHTML(run)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, readWalkthroughHTML(t, b).texts...)
	}
	return lines(texts)
}

// allIndexTexts returns every text of the index of writeRun, in lang.
func allIndexTexts(t *testing.T, lang expect.Lang) string {
	t.Helper()
	out := t.TempDir()
	writeRun(t, out, lang)
	b, err := os.ReadFile(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	return lines(htmlTexts(t, b))
}

// htmlTexts returns the text nodes of an HTML page, trimmed, and the
// values of its title, alt and lang attributes, which a reader sees too.
func htmlTexts(t *testing.T, b []byte) []string {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the page does not parse: %v", err)
	}
	var texts []string
	for n := range doc.Descendants() {
		switch n.Type {
		case html.TextNode:
			if s := strings.TrimSpace(n.Data); s != "" && n.Parent.Data != "style" {
				texts = append(texts, s)
			}
		case html.ElementNode:
			for _, key := range []string{"title", "alt", "lang"} {
				if v := htmlAttr(n, key); v != "" {
					texts = append(texts, v)
				}
			}
		}
	}
	return texts
}

// TestIndexTally checks the summary line of index.html: passed, failed and
// interrupted scenarios counted apart, in the page's language.
func TestIndexTally(t *testing.T) {
	results := func(pass, fail, interrupted int) []Result {
		var rs []Result
		for i := range pass + fail + interrupted {
			rs = append(rs, Result{Scenario: "s" + string(rune('a'+i)), Pass: i < pass, Interrupted: i >= pass+fail})
		}
		return rs
	}
	tests := []struct {
		name    string
		results []Result
		lang    expect.Lang
		want    string
	}{
		{"one", results(1, 0, 0), expect.English, "1 scenario: 1 passed, 0 failed."},
		{"one failed", results(0, 1, 0), expect.English, "1 scenario: 0 passed, 1 failed."},
		{"one interrupted", results(9, 0, 1), expect.English, "10 scenarios: 9 passed, 0 failed, 1 interrupted."},
		{"none", nil, expect.English, "0 scenarios: 0 passed, 0 failed."},
		{"all kinds", results(2, 3, 4), expect.English, "9 scenarios: 2 passed, 3 failed, 4 interrupted."},
		{"in Chinese", results(9, 0, 1), expect.Chinese, "共 10 个场景: 9 个通过, 0 个失败, 1 个中断."},
		{"one in Chinese", results(1, 0, 0), expect.Chinese, "共 1 个场景: 1 个通过, 0 个失败."},
		{"an unknown language in English", results(1, 0, 0), expect.Lang(9), "1 scenario: 1 passed, 0 failed."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			if err := WriteIndex(out, tt.results, tt.lang); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(out, IndexFile))
			if err != nil {
				t.Fatal(err)
			}
			doc, err := html.Parse(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for n := range doc.Descendants() {
				if n.Type == html.ElementNode && n.Data == "p" && htmlAttr(n, "class") == "tally" {
					got = append(got, htmlText(n))
				}
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("tally %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCJKFonts: every page and diagram names a font with Chinese
// characters, so that a -lang zh run does not depend on the viewer's
// fallback; the Latin fonts come first.
func TestCJKFonts(t *testing.T) {
	run := talkRun(expect.Chinese, nil)
	page, err := WalkthroughHTML(run)
	if err != nil {
		t.Fatal(err)
	}
	graph, err := TimeSequence("keepalive", run.Packets, expect.Chinese)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := WriteIndex(out, []Result{*run.Result}, expect.Chinese); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"walkthrough.html": page, "index.html": index, "tseq.svg": graph,
		"ladder.svg": Ladder("keepalive", run.Packets, run.Verdict, expect.Chinese),
	} {
		for _, m := range regexp.MustCompile(`font-family(?:=|: )((?:"[^"]*"|[^";}])*)`).FindAllSubmatch(b, -1) {
			fonts := string(m[1])
			if !strings.Contains(fonts, "Noto Sans CJK SC") || strings.Index(fonts, "DejaVu") > strings.Index(fonts, "Noto") {
				t.Errorf("%s: font-family %q names no CJK font after the Latin ones", name, fonts)
			}
		}
	}
}
