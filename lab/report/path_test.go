package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/lab/expect"
)

// requestSteps are the steps the walkthrough's request must show.
var requestSteps = []PathStepKind{PathSendBuffer, PathTCPOut, PathIPOut, PathSendQueue, PathIPIn, PathTCPIn, PathReceiveBuffer}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// fullPath is a data segment's timeline on loopback.
func fullPath() PathTimeline {
	return PathTimeline{Frame: 4, Steps: []PathStep{
		{Kind: PathSendBuffer, At: ms(0.400), Func: "tcp_sendmsg_locked", Queue: "send buffer", Unit: "bytes"},
		{Kind: PathTCPOut, At: ms(0.402), Func: "__tcp_transmit_skb", Hook: HookStamp},
		{Kind: PathIPOut, At: ms(0.405), Func: "__ip_local_out"},
		{Kind: PathSendQueue, At: ms(0.406), Func: "__dev_queue_xmit", Queue: "noqueue", Unit: "packets"},
		{Kind: PathDriver, At: ms(0.407), Func: "ndo_start_xmit", Device: "lo"},
		{Kind: PathBacklog, At: ms(0.408), Func: "netif_rx", Device: "lo"},
		{Kind: PathSoftirq, At: ms(0.409), Func: "__netif_receive_skb", Device: "lo"},
		{Kind: PathIPIn, At: ms(0.410), Func: "ip_rcv", Device: "lo"},
		{Kind: PathTCPIn, At: ms(0.411), Func: "tcp_rcv_established"},
		{Kind: PathReceiveBuffer, At: ms(0.412), Func: "tcp_data_ready", Queue: "receive buffer", QueueLen: 2880, Unit: "bytes"},
		{Kind: PathRead, At: ms(101.6), Func: "tcp_recvmsg"},
	}, Absent: []AbsentStep{{Kind: PathRingBuffer, Why: AbsentNoRing}, {Kind: PathDMA, Why: AbsentNoDMA}, {Kind: PathMAC, Why: AbsentNoMAC}}}
}

// TestPathCheck: a timeline with the request's steps in order at times
// that never go back passes; one that lacks a step, holds them out of
// order, or goes back in time fails, naming the step.
func TestPathCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*PathTimeline)
		wrong string // in the error; "" passes
	}{
		{"complete", func(*PathTimeline) {}, ""},
		{"equal times", func(p *PathTimeline) { p.Steps[2].At = p.Steps[1].At }, ""},
		{"no IP in", func(p *PathTimeline) { p.Steps = append(p.Steps[:7], p.Steps[8:]...) }, "lacks step ip-in"},
		{"no send buffer", func(p *PathTimeline) { p.Steps = p.Steps[1:] }, "lacks step send-buffer"},
		{"empty", func(p *PathTimeline) { p.Steps = nil }, "lacks step send-buffer"},
		{"time goes back", func(p *PathTimeline) { p.Steps[8].At = ms(0.3) }, "step tcp-in"},
		{"steps swapped", func(p *PathTimeline) { p.Steps[7], p.Steps[8] = p.Steps[8], p.Steps[7] }, "lacks step tcp-in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fullPath()
			tc.edit(&p)
			err := p.Check(requestSteps...)
			switch {
			case tc.wrong == "" && err != nil:
				t.Errorf("Check: %v, want nil", err)
			case tc.wrong != "" && (err == nil || !strings.Contains(err.Error(), tc.wrong)):
				t.Errorf("Check: %v, want an error with %q", err, tc.wrong)
			}
		})
	}
}

// TestPathLines: the walkthrough numbers each step as the blog post does
// in its half, puts the absent steps in their place with why, in English
// and Chinese.
func TestPathLines(t *testing.T) {
	p := fullPath()
	for _, tc := range []struct {
		lang expect.Lang
		want []string // in order
	}{
		{expect.English, []string{"client to server", "send 2. send buffer (0 bytes held;", "send 3. TCP builds the segment and its sk_buff (__tcp_transmit_skb, the segment's own time stamp, skb->tstamp)", "send 4. IP", "send 5. send queue (noqueue qdisc, 0 packets waiting",
			"send 6. NIC ring buffer: none here", "send 7. DMA onto the wire: none here", "receive 1. NIC checks the MAC address: none here: loopback",
			"receive 4. IP (lo; ip_rcv) at +0.410 ms", "receive 6. receive buffer (2880 bytes held", "receive 6. the application's read"}},
		{expect.Chinese, []string{"客户端到服务端", "发送 2. tcp发送缓冲", "发送 3. tcp层组装数据包和sk_buff (__tcp_transmit_skb, 包自己的时间戳, skb->tstamp)", "发送 4. IP层", "发送 6. 网卡的环形缓冲区: 这里没有",
			"接收 1. 网卡检查MAC地址", "接收 4. tcp层", "接收 6. tcp接收缓冲", "接收 6. 应用层读取"}},
	} {
		text := strings.Join(PathLines(&p, tc.lang), "\n")
		at := 0
		for _, w := range tc.want {
			i := strings.Index(text[at:], w)
			if i < 0 {
				t.Errorf("%s: %q missing or out of order in:\n%s", tc.lang, w, text)
				break
			}
			at += i + len(w)
		}
	}
}

// TestPathLinesUnfollowed: a segment the kernel told nothing of (a pure
// ACK, one past the run's first 256) says so in one line, inventing no
// step.
func TestPathLinesUnfollowed(t *testing.T) {
	for lang, want := range map[expect.Lang]string{expect.English: "not traced (the kernel told nothing of it", expect.Chinese: "没有追踪 (内核没有说它"} {
		got := PathLines(&PathTimeline{Frame: 9}, lang)
		if len(got) != 1 || !strings.Contains(got[0], want) {
			t.Errorf("%s: %q, want one line with %q", lang, got, want)
		}
	}
}

// TestPathJSON: result.json's timeline reads back as it was written, with
// names for steps and reasons; unknown names are an error.
func TestPathJSON(t *testing.T) {
	p := fullPath()
	p.Sender = SideServer
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"step":"send-buffer"`, `"at_ms":0.4`, `"sender":"server"`, `"why":"no-ring"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	var q PathTimeline
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if q.Sender != SideServer || len(q.Steps) != len(p.Steps) || q.Steps[10].At != p.Steps[10].At || q.Absent[2] != p.Absent[2] {
		t.Errorf("read back %+v, want %+v", q, p)
	}
	if err := json.Unmarshal([]byte(`{"frame":1,"steps":[{"step":"teleport"}]}`), &q); err == nil {
		t.Error("an unknown step was read")
	}
}
