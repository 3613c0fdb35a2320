package report

import (
	"bytes"
	"fmt"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// CaptureWalkthrough returns the walkthrough of any capture, in the look of
// a scenario's walkthrough.md: for each connection, its segments as
// numbered steps, each with the segment, both ends' states after it and
// what it does in words. A run of data segments one way with nothing
// else to say is one step, its middle elided. pkts are the frames
// capture.Walk yields (non-TCP frames are skipped); title heads the page.
func CaptureWalkthrough(title string, pkts []capture.Packet, lang expect.Lang) []byte {
	t := byLang(captureWalkTexts, lang)
	e := newExplainer(lang)
	var start time.Time
	streams := map[int][]int{} // packet indexes by stream
	var order []int
	tcp := 0
	for i := range pkts {
		p := &pkts[i]
		if !p.TCP {
			continue
		}
		if start.IsZero() {
			start = p.Segment.Time
		}
		tcp++
		st := p.Annotation.Stream
		if _, ok := streams[st]; !ok {
			order = append(order, st)
		}
		streams[st] = append(streams[st], i)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", title)
	conns := fmt.Sprintf(t.conns, len(order))
	if len(order) == 1 {
		conns = t.oneConn
	}
	fmt.Fprintf(&b, t.intro, tcp, len(pkts), conns)
	for _, st := range order {
		idx := streams[st]
		first := &pkts[idx[0]]
		client, server := first.Segment.Src, first.Segment.Dst
		if first.Annotation.Dir == capture.ServerToClient {
			client, server = server, client
		}
		fmt.Fprintf(&b, t.stream, st, client, server)
		num := 0
		for k := 0; k < len(idx); {
			num++
			run, data := dataRun(pkts, idx[k:])
			if run >= 2*walkthroughEnds+1 {
				from := &pkts[idx[k]]
				end := from.Annotation.RelSeq
				for _, i := range idx[k : k+run] {
					if p := &pkts[i]; p.Annotation.Dir == from.Annotation.Dir {
						end = p.Annotation.RelSeq + uint32(p.Segment.Len)
					}
				}
				fmt.Fprintf(&b, "%d. %s\n", num, e.bulk(from.Annotation.Dir, data, run-data, from.Annotation.RelSeq, end))
				for j := 0; j < run; j++ {
					if j == walkthroughEnds && run > 2*walkthroughEnds {
						fmt.Fprintf(&b, t.elided, run-2*walkthroughEnds)
						j = run - walkthroughEnds - 1
						continue
					}
					p := &pkts[idx[k+j]]
					e.explain(p) // keeps the explainer's view of the connection
					segmentLine(&b, p, start)
				}
				b.WriteString("\n")
				k += run
				continue
			}
			p := &pkts[idx[k]]
			fmt.Fprintf(&b, "%d. %s\n", num, e.explain(p))
			segmentLine(&b, p, start)
			b.WriteString("\n")
			k++
		}
		e := capture.EndingAt(pkts, idx)
		fmt.Fprintf(&b, t.ended, endingText(&e, lang))
	}
	return b.Bytes()
}

// segmentLine writes a segment as a walkthrough step lists it.
func segmentLine(b *bytes.Buffer, p *capture.Packet, start time.Time) {
	fmt.Fprintf(b, "   - `%s`  %s/%s\n", expect.Format(p, start), p.Annotation.Client, p.Annotation.Server)
}

// dataRun returns how many of the segments at idx, from the first, are a
// plain transfer one way: data in the first segment's direction and pure
// ACKs the other way, none with SYN, FIN, RST or a label, all in the same
// states; and how many of them carry data.
func dataRun(pkts []capture.Packet, idx []int) (n, data int) {
	first := &pkts[idx[0]]
	for _, i := range idx {
		p := &pkts[i]
		s, a := &p.Segment, &p.Annotation
		plain := s.Flags&(capture.SYN|capture.FIN|capture.RST) == 0 && a.Labels == 0 && s.Problem != capture.HeaderCut &&
			a.Client == first.Annotation.Client && a.Server == first.Annotation.Server
		switch {
		case !plain:
			return n, data
		case a.Dir == first.Annotation.Dir && s.Len > 0:
			data++
		case a.Dir != first.Annotation.Dir && s.Len == 0 && n > 0:
		default:
			return n, data
		}
		n++
	}
	return n, data
}

// captureWalkStrings are the fixed texts of a capture's walkthrough.
type captureWalkStrings struct {
	intro, conns, oneConn, stream, elided string
	ended                                 string // how the connection ended: %s is capture.Ending's account
}

var captureWalkTexts = []captureWalkStrings{
	expect.English: {
		conns: "%d connections", oneConn: "one connection",
		intro:  "%d TCP segments in %d frames, %s, told as tcplab annotate sees them: relative numbers, Wireshark's analysis labels, and both ends' TCP states after each segment (client/server).\n\n",
		stream: "## Stream %d: %s (client) and %s (server)\n\n",
		elided: "   - … %d more segments …\n",
		ended:  "How it ended: %s.\n\n",
	},
	expect.Chinese: {
		conns: "%d 个连接", oneConn: "1 个连接",
		intro:  "共 %d 个TCP包 (%d 帧), %s, 按 tcplab annotate 的分析讲述: 相对序号、Wireshark 的分析标签, 以及每个包之后两端的TCP状态 (客户端/服务端).\n\n",
		stream: "## 连接 %d: %s (客户端) 和 %s (服务端)\n\n",
		elided: "   - … 还有 %d 个包 …\n",
		ended:  "连接如何结束: %s。\n\n",
	},
}
