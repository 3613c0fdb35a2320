package property

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
)

// talk builds a connection from lines like "C>S FA 100 200 0": direction,
// flags (S syn, A ack, F fin, R rst, P psh), raw seq, raw ack, length, and
// optional labels after a "|". Every window is 65535 bytes, the
// endpoints' states are capture's Annotator's, the labels only those
// given.
func talk(t *testing.T, lines ...string) *Conn {
	t.Helper()
	c := &Conn{}
	a := capture.NewAnnotator()
	client, server := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	for i, l := range lines {
		main, labels, _ := strings.Cut(l, "|")
		f := strings.Fields(main)
		var p capture.Packet
		p.TCP = true
		p.Segment.Frame = i + 1
		if f[0] == "S>C" {
			p.Annotation.Dir = capture.ServerToClient
		}
		for _, ch := range f[1] {
			p.Segment.Flags |= map[rune]capture.Flags{'S': capture.SYN, 'A': capture.ACK, 'F': capture.FIN, 'R': capture.RST, 'P': capture.PSH}[ch]
		}
		var n [3]uint64
		for k := range n {
			for _, ch := range f[2+k] {
				n[k] = n[k]*10 + uint64(ch-'0')
			}
		}
		p.Segment.Seq, p.Segment.Ack, p.Segment.Len = uint32(n[0]), uint32(n[1]), int(n[2])
		p.Segment.Src, p.Segment.Dst = client, server
		if p.Annotation.Dir == capture.ServerToClient {
			p.Segment.Src, p.Segment.Dst = server, client
		}
		p.Segment.Window = 65535 // no window scale: 65535 bytes
		ann := a.Annotate(&p.Segment)
		if ann.Dir != p.Annotation.Dir {
			t.Fatalf("talk: line %q: the annotator's direction is %v", l, ann.Dir)
		}
		p.Annotation.Client, p.Annotation.Server = ann.Client, ann.Server
		for _, name := range strings.Fields(labels) {
			l, ok := capture.ParseLabel(name)
			if !ok {
				t.Fatalf("label %q", name)
			}
			p.Annotation.Labels = p.Annotation.Labels.With(l)
		}
		c.Packets = append(c.Packets, p)
	}
	return c
}

// Client 1000, server 5000; each opens with a handshake.
var (
	open = []string{"C>S S 1000 0 0", "S>C SA 5000 1001 0", "C>S A 1001 5001 0"}
	// The client closes, the server's ACK comes alone, then its FIN.
	clientCloses = append(append([]string(nil), open...), "C>S FA 1001 5001 0", "S>C A 5001 1002 0", "S>C FA 5001 1002 0", "C>S A 1002 5002 0")
	// The same with the server's ACK on its FIN.
	merged = append(append([]string(nil), open...), "C>S FA 1001 5001 0", "S>C FA 5001 1002 0", "C>S A 1002 5002 0")
	// The server closes first.
	serverCloses = append(append([]string(nil), open...), "S>C FA 5001 1001 0", "C>S A 1001 5002 0", "C>S FA 1001 5002 0", "S>C A 5002 1002 0")
	// Both FINs cross.
	crossing = append(append([]string(nil), open...), "C>S FA 1001 5001 0", "S>C FA 5001 1001 0", "C>S A 1002 5002 0", "S>C A 5002 1002 0")
	// The client half-closes; the server still sends 10 bytes.
	halfClosed = append(append([]string(nil), open...), "C>S FA 1001 5001 0", "S>C A 5001 1002 0", "S>C PA 5001 1002 10", "S>C FA 5011 1002 0", "C>S A 1002 5012 0")
	// An HTTP/1.1 keep-alive exchange, two requests, then the client
	// closes after both answers: a full close, no half-close.
	keepAliveFull = append(append([]string(nil), open...), "C>S PA 1001 5001 10", "S>C PA 5001 1011 20", "C>S PA 1011 5021 10",
		"S>C PA 5021 1021 20", "C>S FA 1021 5041 0", "S>C FA 5041 1022 0", "C>S A 1022 5042 0")
	// The client half-closes right after its request; the server answers
	// and closes before that FIN reaches it: its data and its FIN cross
	// the client's FIN.
	crossedAnswer = append(append([]string(nil), open...), "C>S PA 1001 5001 10", "C>S FA 1011 5001 0", "S>C PA 5001 1011 20",
		"S>C FA 5021 1011 0", "C>S A 1012 5022 0", "S>C A 5022 1012 0")
	// The server closes; the client still sends, and the server resets.
	dataAfterClose = append(append([]string(nil), open...), "S>C FA 5001 1001 0", "C>S A 1001 5002 0", "C>S PA 1001 5002 5", "S>C R 5002 0 0")
	// The server resets after the handshake.
	reset = append(append([]string(nil), open...), "S>C RA 5001 1001 0")
	// A blind RST inside the server's window, not at RCV.NXT: the server
	// answers with a challenge ACK, the client goes on and closes.
	challenged = append(append([]string(nil), open...), "C>S R 2001 0 0", "S>C A 5001 1001 0", "C>S PA 1001 5001 4",
		"S>C A 5001 1005 0", "C>S FA 1005 5001 0", "S>C A 5001 1006 0", "S>C FA 5001 1006 0", "C>S A 1006 5002 0")
	// The same blind RST, then the client's own at RCV.NXT.
	challengedThenReset = append(append([]string(nil), open...), "C>S R 2001 0 0", "S>C A 5001 1001 0", "C>S R 1001 0 0")
	// A RST far outside the window, dropped; the connection stays open.
	dropped = append(append([]string(nil), open...), "C>S R 900000000 0 0", "C>S PA 1001 5001 4", "S>C A 5001 1005 0")
	// A retried SYN, a zero window, a retransmission and a keep-alive.
	troubled = []string{"C>S S 1000 0 0", "C>S S 1000 0 0", "S>C SA 5000 1001 0", "C>S A 1001 5001 0",
		"S>C A 5001 1001 0|zero-window", "C>S PA 1001 5001 5|retransmission",
		"S>C A 5000 1006 0|keep-alive", "C>S A 1006 5001 0|keep-alive-ack"}
	// The capture began after the handshake.
	midway = []string{"C>S PA 1001 5001 5", "S>C A 5001 1006 0"}
)

func TestCheck(t *testing.T) {
	tests := []struct {
		conn   []string
		expect string
		pass   bool
		detail string // in the result's detail
	}{
		{clientCloses, "handshake", true, "frames 1, 2, 3"},
		{midway, "handshake", false, "middle of the connection"},
		{reset, "handshake", true, ""},
		{reset, "no-rst", false, "RST"},
		{clientCloses, "no-rst", true, ""},
		{troubled, "no-retransmission", false, "1 retransmitted"},
		{clientCloses, "no-retransmission", true, ""},
		{troubled, "no-zero-window", false, "zero window"},
		{troubled, "keepalive", true, "answered in frame 8"},
		{clientCloses, "keepalive", false, "no keep-alive probe"},
		{troubled, "max-syn-retries=1", true, "1 SYN retries"},
		{troubled, "max-syn-retries=0", false, "2 times"},
		{clientCloses, "closer=client", true, "frame 4"},
		{clientCloses, "closer=server", false, "the client closed first (FIN frame 4), not the server"},
		{clientCloses, "closer=simultaneous", false, "the server's FIN (frame 6) acknowledges it, so the FINs did not cross"},
		{crossing, "closer=client", false, "not the client's close: simultaneous close: the FINs crossed"},
		{crossing, "closer=server", false, "the client's FIN was first on the wire (frame 4)"},
		{crossedAnswer, "closer=simultaneous", true, "the FINs crossed"},
		{reset, "closer=client", false, "no FIN: reset by the server (frame 4)"},
		{serverCloses, "closer=server", true, ""},
		{crossing, "closer=simultaneous", true, ""},
		{merged, "closer=client", true, ""},
		{midway, "closer=client", false, "no FIN"},
		{halfClosed, "half-close", true, "the server sent 10 bytes (frame 6) after it received the client's FIN (frame 4)"},
		{clientCloses, "half-close", false, "a full close"},
		{dataAfterClose, "half-close", false, "no half-close: the client sent 5 bytes (frame 6) after the server's FIN, and the server reset the connection (frame 7)"},
		{dataAfterClose, "closer=server", true, "data after close"},
		{keepAliveFull, "half-close", false, "no data from the server after it received the client's FIN (frame 8): a full close"},
		{crossedAnswer, "half-close", false, "the server's data (frame 6) crossed the client's FIN (frame 5)"},
		{crossing, "teardown=FIN,FIN,ACK,ACK", true, "C>S FIN,S>C FIN,C>S ACK,S>C ACK; the FINs crossed"},
		{crossing, "teardown=C>S FIN,S>C FIN,C>S ACK,S>C ACK", true, ""},
		{crossing, "teardown=C>S FIN,S>C FIN,C>S ACK,C>S ACK", false, "expected C>S FIN,S>C FIN,C>S ACK,C>S ACK; the capture shows C>S FIN,S>C FIN,C>S ACK,S>C ACK"},
		{crossedAnswer, "teardown=FIN,FIN,ACK,ACK", true, "simultaneous"},
		{clientCloses, "teardown=FIN,FIN,ACK,ACK", false, "expected FIN,FIN,ACK,ACK; the capture shows C>S FIN,S>C ACK,S>C FIN,C>S ACK"},
		{clientCloses, "teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK", true, ""},
		{clientCloses, "teardown=FIN,ACK,FIN,ACK", true, "C>S FIN,S>C ACK,S>C FIN,C>S ACK"},
		{merged, "teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK", true, "in one segment"},
		{merged, "teardown=C>S FIN,S>C FIN,C>S ACK", true, "rides on its FIN"},
		{serverCloses, "teardown=FIN,ACK,FIN,ACK", true, "S>C FIN,C>S ACK,C>S FIN,S>C ACK"},
		{serverCloses, "teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK", false, "the capture shows S>C FIN"},
		{reset, "teardown=FIN,ACK,FIN,ACK", false, "S>C RST"},
		{reset, "teardown=S>C RST", true, ""},
		{clientCloses, "teardown=C>S FIN,S>C ACK", false, "the capture shows C>S FIN,S>C ACK,S>C FIN"},
		{merged, "teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK,C>S FIN", false, "and no more"},
		// A RST its receiver did not take is no reset (RFC 5961 3.2).
		{challenged, "closer=client", true, "the server ignored the client's RST (frame 4): inside its window, but 1000 past RCV.NXT"},
		{challenged, "teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK", false, "the capture shows C>S ignored-RST,C>S FIN"},
		{challenged, "teardown=C>S ignored-RST,C>S FIN,S>C ACK,S>C FIN,C>S ACK", true, ""},
		{challenged, "teardown=C>S RST,C>S FIN,S>C ACK,S>C FIN,C>S ACK", false, "expected C>S RST"},
		{challenged, "no-rst", false, "1 segment(s) with RST"},
		{challengedThenReset, "teardown=C>S ignored-RST,C>S RST", true, ""},
		{challengedThenReset, "teardown=RST,RST", false, "the capture shows C>S ignored-RST,C>S RST"},
		{challengedThenReset, "closer=client", false, "no FIN: reset by the client (frame 6) in ESTABLISHED"},
		{dropped, "closer=client", false, "no FIN in the connection"},
		{dropped, "teardown=ignored-RST", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.expect, func(t *testing.T) {
			t.Helper()
			props, err := Parse(tt.expect)
			if err != nil || len(props) != 1 {
				t.Fatalf("Parse(%q) = %v, %v", tt.expect, props, err)
			}
			r := props[0].Check(talk(t, tt.conn...))
			if r.Pass != tt.pass || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("%s: pass %v, detail %q; want %v and %q", tt.expect, r.Pass, r.Detail, tt.pass, tt.detail)
			}
			if !r.Pass && len(r.Frames) > 0 && len(r.Context) == 0 {
				t.Errorf("%s: frames %v without context", tt.expect, r.Frames)
			}
		})
	}
}

func TestParse(t *testing.T) {
	good := []struct{ list, want string }{
		{"handshake,no-rst", "handshake no-rst"},
		{" handshake , closer=server ", "handshake closer=server"},
		{"teardown=C>S FIN, S>C ACK, S>C FIN, C>S ACK,no-rst", "teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK no-rst"},
		{"no-rst,teardown=FIN,ACK,FIN,ACK,keepalive", "no-rst teardown=FIN,ACK,FIN,ACK keepalive"},
		{"max-syn-retries=3", "max-syn-retries=3"},
	}
	for _, g := range good {
		props, err := Parse(g.list)
		if err != nil {
			t.Errorf("Parse(%q): %v", g.list, err)
			continue
		}
		var got []string
		for _, p := range props {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != g.want {
			t.Errorf("Parse(%q) = %q, want %q", g.list, got, g.want)
		}
	}
	bad := []struct{ list, want string }{
		{"handshak", "unknown property"},
		{"closer=nobody", "closer=client"},
		{"closer", "needs a value"},
		{"no-rst=1", "takes no value"},
		{"max-syn-retries=-1", "whole number"},
		{"teardown=C>S SYN", "FIN, ACK, RST or ignored-RST"},
		{"teardown=X>Y FIN", "C>S or S>C"},
		{"", "no property"},
	}
	for _, b := range bad {
		_, err := Parse(b.list)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Parse(%q): %v, want an error saying %q", b.list, err, b.want)
		}
	}
	if _, err := Parse("nope"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "half-close") {
		t.Errorf("an unknown name: %v, want ErrUnknown listing the known ones", err)
	}
}
