package report

import (
	"fmt"
	"strings"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// endingText says how a connection ended, from capture.Ending, the one
// definition every command uses: in English its own words (Ending.String,
// as annotate -summary and check print them), in Chinese the same facts.
func endingText(e *capture.Ending, lang expect.Lang) string {
	if lang != expect.Chinese {
		return e.String()
	}
	side := func(d capture.Dir) string {
		if d == capture.ServerToClient {
			return "服务端"
		}
		return "客户端"
	}
	ignored := ""
	if r := e.Ignored; r.Frame != 0 {
		who := fmt.Sprintf("%s忽略了%s的 RST (第 %d 帧)", side(1-r.By), side(r.By), r.Frame)
		switch {
		case r.Peer == capture.SynSent:
			ignored = who + ": 在 SYN_SENT 状态, 只有确认了 SYN 的 RST 才算数 (RFC 9293 3.10.7.3), 所以它被丢弃"
		case r.Check == capture.RSTChallenged:
			ignored = fmt.Sprintf("%s: 它在窗口内, 但比 RCV.NXT 大 %d, 所以回了一个挑战 ACK, 连接照常 (RFC 5961 3.2)", who, r.Past)
		case r.Peer == capture.TimeWait:
			ignored = fmt.Sprintf("%s: 在 TIME_WAIT 状态只有等于 RCV.NXT 的 RST 才算数, 它差了 %d, 所以被丢弃", who, r.Past)
		default:
			ignored = fmt.Sprintf("%s: 它在窗口之外 (与 RCV.NXT 相差 %d), 所以被丢弃 (RFC 5961 3.2)", who, r.Past)
		}
		if e.NIgnored > 1 {
			ignored += fmt.Sprintf(" (共忽略 %d 个 RST)", e.NIgnored)
		}
	}
	if e.Abandoned() {
		if ignored != "" {
			return "没有关闭: 抓包结束时还没有 FIN 或 RST; " + ignored
		}
		return "没有关闭: 抓包结束时还没有 FIN 或 RST"
	}
	var parts []string
	first, second := e.First, 1-e.First
	switch e.Closer() {
	case capture.Simultaneous:
		parts = append(parts, fmt.Sprintf("同时关闭: 两个 FIN 交叉 (%s的第 %d 帧, %s的第 %d 帧: 谁也没有确认对方的 FIN), 所以两端都经过 FIN_WAIT_1 -> CLOSING -> TIME_WAIT",
			side(first), e.FIN[first].Frame, side(second), e.FIN[second].Frame))
	case capture.ClientCloser, capture.ServerCloser:
		s := fmt.Sprintf("%s先关闭 (FIN 第 %d 帧)", side(first), e.FIN[first].Frame)
		if f := e.FIN[second].Frame; f != 0 {
			s += fmt.Sprintf(", %s随后关闭 (FIN 第 %d 帧)", side(second), f)
		} else {
			s += fmt.Sprintf(", %s没有发送 FIN", side(second))
		}
		parts = append(parts, s)
	}
	for _, d := range [2]capture.Dir{first, second} {
		if h := e.HalfClose[d]; h.Frame != 0 {
			parts = append(parts, fmt.Sprintf("半关闭: %s在收到%s的 FIN (第 %d 帧) 之后又发送了 %d 字节 (第 %d 帧)",
				side(d), side(1-d), e.FIN[1-d].Frame, h.Len, h.Frame))
		}
	}
	for _, d := range [2]capture.Dir{first, second} {
		if h := e.Refused[d]; h.Frame != 0 {
			parts = append(parts, fmt.Sprintf("关闭后的数据: %s在%s的 FIN (第 %d 帧) 之后发送了 %d 字节 (第 %d 帧), %s用 RST 回应: 它已经完全关闭, 不是半关闭",
				side(d), side(1-d), e.FIN[1-d].Frame, h.Len, h.Frame, side(1-d)))
		}
	}
	if r := e.Reset; r.Frame != 0 {
		switch {
		case r.Peer == capture.SynSent && r.By == capture.ServerToClient:
			parts = append(parts, fmt.Sprintf("连接被拒绝: 服务端用 RST 回应了客户端的 SYN (第 %d 帧)", r.Frame))
		case r.State == capture.Unknown:
			parts = append(parts, fmt.Sprintf("%s重置了连接 (第 %d 帧)", side(r.By), r.Frame))
		default:
			parts = append(parts, fmt.Sprintf("%s在 %s 状态重置了连接 (第 %d 帧)", side(r.By), r.State, r.Frame))
		}
	}
	if ignored != "" {
		parts = append(parts, ignored)
	}
	switch {
	case e.Reset.Frame != 0:
	case e.Complete():
		parts = append(parts, "两个 FIN 都已确认")
	default:
		var open []string
		for _, d := range [2]capture.Dir{capture.ClientToServer, capture.ServerToClient} {
			switch {
			case e.FIN[d].Frame == 0:
				open = append(open, side(d)+"没有发送 FIN")
			case e.FIN[d].AckedBy == 0:
				open = append(open, side(d)+"的 FIN 没有被确认")
			}
		}
		parts = append(parts, "没有完成: "+strings.Join(open, ", "))
	}
	return strings.Join(parts, "; ")
}

// endings says how each connection among pkts ended, in order of first
// appearance: "stream 0: the client closed first ...".
func endings(pkts []capture.Packet, lang expect.Lang) []string {
	trackers := map[int]*capture.EndingTracker{}
	var order []int
	for i := range pkts {
		p := &pkts[i]
		if !p.TCP {
			continue
		}
		t := trackers[p.Annotation.Stream]
		if t == nil {
			t = &capture.EndingTracker{}
			trackers[p.Annotation.Stream] = t
			order = append(order, p.Annotation.Stream)
		}
		t.Add(&p.Segment, p.Annotation.Dir, p.Annotation.Client, p.Annotation.Server)
	}
	out := make([]string, 0, len(order))
	for _, st := range order {
		e := trackers[st].Ending()
		text := endingText(&e, lang)
		if len(order) > 1 {
			prefix := "stream %d: "
			if lang == expect.Chinese {
				prefix = "连接 %d: "
			}
			text = fmt.Sprintf(prefix, st) + text
		}
		out = append(out, text)
	}
	return out
}
