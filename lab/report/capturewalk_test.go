package report

import (
	"errors"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// readCapture annotates one of the capture package's fixtures.
func readCapture(t *testing.T, name string) []capture.Packet {
	t.Helper()
	f, err := capture.Open(filepath.Join("..", "..", "capture", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkts []capture.Packet
	_, err = capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		q := *p
		q.Data = nil
		pkts = append(pkts, q)
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return pkts
}

// TestCaptureWalkthrough tells the keep-alive capture, the blog post's
// exchange, in both languages: each segment is a numbered step whose
// sentence says what it does, in the order the post explains them.
func TestCaptureWalkthrough(t *testing.T) {
	pkts := readCapture(t, "keepalive.pcap")
	tests := []struct {
		lang expect.Lang
		want map[int]string // step number: a phrase its sentence holds
	}{
		{expect.English, map[int]string{
			1:  "The client opens a connection",
			2:  "The server accepts",
			3:  "the three-way handshake is complete",
			4:  "The client sends 312 bytes (seq 1; the byte after them is seq 313).",
			6:  "A TCP keep-alive",
			7:  "The answer to the keep-alive",
			12: "The client closes its side with a FIN",
			13: "The server acknowledges the client's FIN",
			14: "The server closes its side too",
			15: "The client acknowledges the server's FIN",
		}},
		{expect.Chinese, map[int]string{
			1:  "客户端发起连接",
			3:  "三次握手完成",
			6:  "保活",
			12: "客户端用 FIN 关闭自己这一侧",
			13: "服务端确认客户端的 FIN",
		}},
	}
	step := regexp.MustCompile(`(?m)^(\d+)\. (.*)$`)
	for _, tc := range tests {
		t.Run(tc.lang.String(), func(t *testing.T) {
			md := string(CaptureWalkthrough("keepalive.pcap", pkts, tc.lang))
			if !strings.HasPrefix(md, "# keepalive.pcap\n") {
				t.Errorf("walkthrough starts %q", md[:min(len(md), 40)])
			}
			steps := step.FindAllStringSubmatch(md, -1)
			if len(steps) != 15 {
				t.Fatalf("%d steps, want one per segment (15):\n%s", len(steps), md)
			}
			for i, s := range steps {
				if s[1] != strconv.Itoa(i+1) {
					t.Errorf("step %d is numbered %s", i+1, s[1])
				}
				if want, ok := tc.want[i+1]; ok && !strings.Contains(s[2], want) {
					t.Errorf("step %d: %q, want it to say %q", i+1, s[2], want)
				}
			}
			if n := strings.Count(md, "   - `"); n != 15 {
				t.Errorf("%d segment lines, want 15", n)
			}
			if !strings.Contains(md, "TIME_WAIT/CLOSED") {
				t.Error("the states after the last ACK are missing")
			}
		})
	}
}

// TestCaptureWalkthroughBulk: a bulk transfer with its ACKs is one step,
// its middle elided, and the labelled segments after it are steps of their
// own.
func TestCaptureWalkthroughBulk(t *testing.T) {
	pkts := readCapture(t, "retrans.pcap")
	md := string(CaptureWalkthrough("retrans.pcap", pkts, expect.English))
	if !strings.Contains(md, "4. The client sends 75296 bytes in 52 segments (seq 1; the byte after them is seq 75297). Meanwhile the server acknowledges them in 50 ACKs.") {
		t.Errorf("the first flight is not one step:\n%s", md[:min(len(md), 3000)])
	}
	if !strings.Contains(md, "   - … 92 more segments …") {
		t.Error("the middle of the first flight is not elided")
	}
	if !strings.Contains(md, "A fast retransmission") {
		t.Error("the fast retransmission is not told")
	}
	if n := strings.Count(md, "\n## Stream "); n != 2 {
		t.Errorf("%d stream sections, want 2", n)
	}
}

// TestExplainTexts: every label has a sentence in every language.
func TestExplainTexts(t *testing.T) {
	for lang, texts := range explainTexts {
		for l := capture.Label(0); l.WiresharkField() != ""; l++ {
			if texts.labels[l] == "" {
				t.Errorf("%v: no sentence for %v", expect.Lang(lang), l)
			}
		}
	}
}
