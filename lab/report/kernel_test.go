package report

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

func TestKernelEventJSON(t *testing.T) {
	ms := time.Millisecond
	for _, e := range []KernelEvent{
		{Frame: 1, At: -15 * time.Microsecond, Kind: KernelState, Socket: 7, From: capture.Closed, To: capture.SynSent},
		{Frame: 9, At: 240 * ms, Side: SideServer, Kind: KernelState, Socket: 9, From: capture.FinWait2, To: capture.TimeWait},
		{Frame: 5, At: 220 * ms, Kind: KernelRetransmit, Socket: 7, Cause: CauseTailLossProbe},
		{Frame: 2, At: 1000 * ms, Side: SideServer, Kind: KernelRetransmitSYNACK, Cause: CauseSYNACK},
		{Frame: 3, Side: SideServer, Kind: KernelResetSent, Reason: "NO_SOCKET"},
		{Frame: 3, Kind: KernelResetReceived, Socket: 7, From: capture.SynSent},
		{At: 3 * ms, Side: SideServer, Kind: KernelDrop, Reason: "TCP_LISTEN_OVERFLOW"},
	} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		var got KernelEvent
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got != e {
			t.Errorf("%s read back as %+v, want %+v", b, got, e)
		}
	}
	// Names, not numbers, in result.json.
	b, _ := json.Marshal(KernelEvent{Frame: 8, At: 41200 * time.Microsecond, Kind: KernelState, From: capture.FinWait1, To: capture.FinWait2})
	if want := `{"frame":8,"at_ms":41.2,"side":"client","kind":"state","from":"FIN_WAIT_1","to":"FIN_WAIT_2"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	for _, bad := range []string{
		`{"frame":1,"side":"client","kind":"sneeze"}`,
		`{"frame":1,"side":"both","kind":"state"}`,
		`{"frame":1,"side":"client","kind":"state","from":"ASLEEP"}`,
		`{"frame":1,"side":"client","kind":"retransmit","cause":"boredom"}`,
		`[1]`,
	} {
		var e KernelEvent
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Errorf("%s read as %+v, want an error", bad, e)
		}
	}
}

func TestKernelText(t *testing.T) {
	for _, tc := range []struct {
		e      KernelEvent
		en, zh string
	}{
		{KernelEvent{At: 41249 * time.Microsecond, Kind: KernelState, From: capture.FinWait1, To: capture.FinWait2},
			"kernel: client FIN_WAIT_1 -> FIN_WAIT_2 at +41.2 ms", "内核: 客户端 FIN_WAIT_1 -> FIN_WAIT_2, 在 +41.2 ms"},
		{KernelEvent{At: -15 * time.Microsecond, Kind: KernelState, From: capture.Closed, To: capture.SynSent},
			"kernel: client CLOSED -> SYN_SENT at +0.0 ms", "内核: 客户端 CLOSED -> SYN_SENT, 在 +0.0 ms"},
		{KernelEvent{At: -1500 * time.Microsecond, Side: SideServer, Kind: KernelState, From: capture.Listen, To: capture.SynReceived},
			"kernel: server LISTEN -> SYN_RECEIVED at -1.5 ms", "内核: 服务端 LISTEN -> SYN_RECEIVED, 在 -1.5 ms"},
		{KernelEvent{At: 220 * time.Millisecond, Kind: KernelRetransmit, Cause: CauseFastRetransmit},
			"kernel: client sent this segment again: fast retransmit at +220.0 ms", "内核: 客户端重传了这个包: 快速重传, 在 +220.0 ms"},
		{KernelEvent{Kind: KernelRetransmit, Cause: CauseUnknown},
			"kernel: client sent this segment again at +0.0 ms", "内核: 客户端重传了这个包, 在 +0.0 ms"},
		{KernelEvent{Side: SideServer, Kind: KernelRetransmitSYNACK, Cause: CauseSYNACK},
			"kernel: server sent its SYN-ACK again: SYN-ACK timeout at +0.0 ms", "内核: 服务端重传了SYN-ACK: SYN-ACK超时, 在 +0.0 ms"},
		{KernelEvent{Side: SideServer, Kind: KernelResetSent, Reason: "NO_SOCKET"},
			"kernel: server sent this RST: no socket for it (NO_SOCKET) at +0.0 ms", "内核: 服务端发送了这个RST: 没有对应的socket (NO_SOCKET), 在 +0.0 ms"},
		{KernelEvent{Side: SideServer, Kind: KernelResetSent},
			"kernel: server sent this RST at +0.0 ms", "内核: 服务端发送了这个RST, 在 +0.0 ms"},
		{KernelEvent{Kind: KernelResetReceived, From: capture.SynSent},
			"kernel: client took this RST in, in SYN_SENT at +0.0 ms", "内核: 客户端接受了这个RST, 当时是 SYN_SENT, 在 +0.0 ms"},
		{KernelEvent{At: 3 * time.Millisecond, Side: SideServer, Kind: KernelDrop, Reason: "TCP_LISTEN_OVERFLOW"},
			"dropped by the server's kernel: accept queue full (TCP_LISTEN_OVERFLOW) at +3.0 ms", "被服务端内核丢弃: 全连接队列已满 (TCP_LISTEN_OVERFLOW), 在 +3.0 ms"},
		{KernelEvent{Kind: KernelDrop, Reason: "SOMETHING_NEW"},
			"dropped by the client's kernel: SOMETHING_NEW at +0.0 ms", "被客户端内核丢弃: SOMETHING_NEW, 在 +0.0 ms"},
	} {
		if got := KernelText(&tc.e, expect.English); got != tc.en {
			t.Errorf("English: %q, want %q", got, tc.en)
		}
		if got := KernelText(&tc.e, expect.Chinese); got != tc.zh {
			t.Errorf("Chinese: %q, want %q", got, tc.zh)
		}
	}
}

// kernelRun is talkRun with the kernel's events: the handshake's state
// changes, a drop under the request, one alone; with sampled, a sample's
// text in their place.
func kernelRun(lang expect.Lang, sampled bool) *Run {
	run := talkRun(lang, nil)
	if sampled {
		run.Kernel = map[int]string{1: "client: srtt 0 ms -> 1 ms"}
		return run
	}
	run.KernelEvents = map[int][]KernelEvent{
		0: {{Frame: 1, Kind: KernelState, From: capture.Closed, To: capture.SynSent}},
		1: {{Frame: 2, At: time.Millisecond, Kind: KernelState, From: capture.SynSent, To: capture.Established}},
		// The kernel says the server is in CLOSE_WAIT, which the wire
		// does not: the column follows the kernel.
		2: {{Frame: 3, At: time.Millisecond, Side: SideServer, Kind: KernelState, From: capture.Established, To: capture.CloseWait}},
		3: {{Frame: 4, At: 2 * time.Millisecond, Side: SideServer, Kind: KernelDrop, Reason: "TCP_LISTEN_OVERFLOW"}},
	}
	run.KernelAlone = []KernelEvent{{At: 5 * time.Millisecond, Side: SideServer, Kind: KernelDrop, Reason: "NO_SOCKET"}}
	return run
}

func TestWalkthroughKernel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lang    expect.Lang
		sampled bool
		want    []string
		html    []string
		not     []string
	}{
		{name: "events", want: []string{
			"(frame 1, +0.000s)`  SYN_SENT/",
			"\n     kernel: client CLOSED -> SYN_SENT at +0.0 ms\n",
			"\n     kernel: client SYN_SENT -> ESTABLISHED at +1.0 ms\n",
			"(frame 3, +0.000s)`  ESTABLISHED/CLOSE_WAIT\n     kernel: server ESTABLISHED -> CLOSE_WAIT at +1.0 ms\n",
			"(frame 4, +0.002s)`  ESTABLISHED/CLOSE_WAIT\n   - dropped by the server's kernel: accept queue full (TCP_LISTEN_OVERFLOW) at +2.0 ms\n",
			"## Packets the kernel dropped that the capture did not show\n\n- dropped by the server's kernel: no socket for it (NO_SOCKET) at +5.0 ms\n",
		}, html: []string{
			`<span class="kernel">kernel: client CLOSED -&gt; SYN_SENT at &#43;0.0 ms</span>`,
			`<li class="drop">dropped by the server&#39;s kernel: accept queue full (TCP_LISTEN_OVERFLOW) at &#43;2.0 ms</li>`,
			`<h2>Packets the kernel dropped that the capture did not show</h2>`,
		}, not: []string{"sampled"}},
		{name: "events in Chinese", lang: expect.Chinese, want: []string{
			"\n     内核: 客户端 CLOSED -> SYN_SENT, 在 +0.0 ms\n",
			"\n   - 被服务端内核丢弃: 全连接队列已满 (TCP_LISTEN_OVERFLOW), 在 +2.0 ms\n",
			"## 内核丢弃了、抓包里没有的包\n",
		}},
		{name: "samples", sampled: true, want: []string{
			"(frame 2, +0.000s)`  ESTABLISHED/SYN_RECEIVED\n     kernel (sampled after the segment): client: srtt 0 ms -> 1 ms\n",
		}, html: []string{
			`<span class="kernel">kernel (sampled after the segment): client: srtt 0 ms -&gt; 1 ms</span>`,
		}, not: []string{"CLOSE_WAIT\n     kernel", "dropped by"}},
		{name: "samples in Chinese", lang: expect.Chinese, sampled: true, want: []string{
			"\n     内核 (在这个包之后采样): client: srtt 0 ms -> 1 ms\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := kernelRun(tc.lang, tc.sampled)
			md := string(Walkthrough(run))
			for _, w := range tc.want {
				if !strings.Contains(md, w) {
					t.Errorf("walkthrough.md lacks %q:\n%s", w, md)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(md, w) {
					t.Errorf("walkthrough.md has %q:\n%s", w, md)
				}
			}
			page, err := WalkthroughHTML(run)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.html {
				if !strings.Contains(string(page), w) {
					t.Errorf("walkthrough.html lacks %q", w)
				}
			}
			svg := string(LadderNotes(run.Result.Scenario, withKernelStates(run), run.Verdict, run.Lang, ladderNotes(run)))
			lines, drops := kernelLines(run, 3)
			for _, n := range append(lines, drops...) {
				if !strings.Contains(svg, xmlText(cut(n, ladderNoteChars))) {
					t.Errorf("the ladder lacks the note %q", n)
				}
			}
		})
	}
}

// TestKernelStates: the state column follows the kernel's state changes
// of each connection from the segment they are tied to on, and the wire's
// inference where the kernel has said nothing; without events, the
// packets are the capture's own.
func TestKernelStates(t *testing.T) {
	c, _ := twoStreams()
	run := &Run{Packets: c.seen}
	if got := withKernelStates(run); &got[0] != &c.seen[0] {
		t.Error("without kernel events, the packets were copied")
	}
	// Stream 1's server enters CLOSE_WAIT at its handshake's ACK (index
	// 5); stream 0's client FIN_WAIT_2 on its FIN (index 6).
	run.KernelEvents = map[int][]KernelEvent{
		5: {{Side: SideServer, Kind: KernelState, From: capture.Established, To: capture.CloseWait}},
		6: {{Kind: KernelState, From: capture.FinWait1, To: capture.FinWait2}, {Side: SideServer, Kind: KernelRetransmit}},
	}
	got := withKernelStates(run)
	var states []string
	for i := range got {
		states = append(states, got[i].Annotation.Client.String()+"/"+got[i].Annotation.Server.String())
	}
	var want []string
	for i := range c.seen {
		a := c.seen[i].Annotation
		switch {
		case a.Stream == 1 && i >= 5:
			a.Server = capture.CloseWait
		case a.Stream == 0 && i >= 6:
			a.Client = capture.FinWait2
		}
		want = append(want, a.Client.String()+"/"+a.Server.String())
	}
	if !reflect.DeepEqual(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
	if c.seen[6].Annotation.Client != capture.FinWait1 {
		t.Error("the capture's own annotation was changed")
	}
	// result.json's events, by frame, give the same column.
	var byFrame []KernelEvent
	for _, j := range []int{5, 6} {
		for _, e := range run.KernelEvents[j] {
			e.Frame = c.seen[j].Segment.Frame
			byFrame = append(byFrame, e)
		}
	}
	if fromJSON := KernelStates(c.seen, byFrame); !reflect.DeepEqual(fromJSON, got) {
		t.Error("KernelStates on events by frame differs from the run's")
	}
}
