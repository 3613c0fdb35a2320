package capture

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/internal/testenv"
)

// tsharkConn is what tshark says of one connection, summed over its
// frames by tcplab's direction of each.
type tsharkConn struct {
	completeness  int  // on its last frame
	synFirst      bool // its first frame is a SYN: its completeness is final on every frame
	bytes, retran [2]int64
	rtt           time.Duration
}

// connFields are the fields tsharkConns sums, in the order connsOf reads
// them.
var connFields = []string{"frame.number", "tcp.stream", "tcp.completeness", "tcp.len", "tcp.analysis.retransmission",
	"tcp.analysis.initial_rtt", "tcp.flags.syn", "tcp.flags.ack"}

// tsharkConns runs tshark on path and sums its view of each connection,
// numbered as tcplab numbers them, each frame's direction taken from dirs.
func tsharkConns(t *testing.T, path string, dirs map[int]Dir) map[int]*tsharkConn {
	t.Helper()
	rows, err := tsharkRows(testenv.Tool(t, "tshark"), path, "tcp && !icmp && !icmpv6", connFields)
	if err != nil {
		t.Fatal(err)
	}
	return connsOf(t, rows, dirs)
}

// connsOf is tsharkConns of the rows of tshark's TCP frames but those
// quoted in ICMP errors, each row the connFields.
func connsOf(t *testing.T, rows [][]string, dirs map[int]Dir) map[int]*tsharkConn {
	t.Helper()
	conns := map[int]*tsharkConn{}
	renumber := map[int]int{}
	for _, f := range rows {
		if len(f) < len(connFields) {
			t.Fatalf("tshark row %q: want %d columns", f, len(connFields))
		}
		frame, _ := strconv.Atoi(f[0])
		ws, _ := strconv.Atoi(f[1])
		n, ok := renumber[ws]
		if !ok {
			n = len(renumber)
			renumber[ws] = n
			conns[n] = &tsharkConn{synFirst: f[6] == "1" && f[7] == "0"}
		}
		c := conns[n]
		c.completeness, _ = strconv.Atoi(f[2])
		d, ok := dirs[frame]
		if !ok {
			continue // a header cut: tcplab counts no bytes of it
		}
		l, _ := strconv.ParseInt(f[3], 10, 64)
		c.bytes[d] += l
		if f[4] != "" {
			c.retran[d] += l
		}
		if rtt, err := strconv.ParseFloat(f[5], 64); err == nil && c.rtt == 0 {
			c.rtt = time.Duration(rtt*1e9 + 0.5)
		}
	}
	return conns
}

// TestVerdictMatchesTshark compares each connection's verdict on every
// fixture with tshark's: the completeness (of connections that begin with
// a SYN: tshark 4.0 shows other connections' completeness as it grows,
// frame by frame), payload and retransmitted bytes each way, and the
// first round trip.
func TestVerdictMatchesTshark(t *testing.T) {
	testenv.Tool(t, "tshark")
	for _, path := range captures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			dirs := map[int]Dir{}
			src, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			a := NewAnnotator()
			if _, err := Walk(src, a, func(p *Packet) error {
				if p.TCP && p.Segment.Problem != HeaderCut {
					dirs[p.Segment.Frame] = p.Annotation.Dir
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			ws := fixtureConns(t, path, dirs)
			mine := a.Conns()
			if len(mine) != len(ws) {
				t.Fatalf("%d connections, tshark %d", len(mine), len(ws))
			}
			for _, s := range mine {
				w := ws[s.Stream]
				if w.synFirst && int(s.Completeness) != w.completeness && s.Cut == 0 {
					t.Errorf("stream %d: completeness %d (%s), tshark %d", s.Stream, s.Completeness, s.Completeness, w.completeness)
				}
				if s.Bytes != w.bytes || s.Retransmitted != w.retran {
					t.Errorf("stream %d: bytes %v, retransmitted %v; tshark %v, %v", s.Stream, s.Bytes, s.Retransmitted, w.bytes, w.retran)
				}
				if s.FirstRTT.Round(time.Microsecond) != w.rtt.Round(time.Microsecond) {
					t.Errorf("stream %d: first RTT %v, tshark %v", s.Stream, s.FirstRTT, w.rtt)
				}
			}
		})
	}
}

// TestVerdict pins, connection by connection, tshark's completeness and
// Zeek's conn_state and history as Zeek's documentation defines them
// (conn.log: conn_state and history), on one conversation for each state;
// completeness is compared with tshark too.
func TestVerdict(t *testing.T) {
	syn := step{cs, SYN, 0, 0, 0, 64240, synOptions(), 0}
	synAck := step{sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), 0}
	tests := []struct {
		name         string
		steps        []step
		state        ConnState
		history      string
		completeness Completeness
		synFirst     bool // tshark's completeness is final
	}{
		{"S0-attempt-no-reply", []step{syn, syn}, StateS0, "S", CompleteSYN, true},
		{"REJ-refused", []step{syn, {sc, RST | ACK, 0, 1, 0, 0, nil, 0}}, StateREJ, "Sr",
			CompleteSYN | CompleteACK | CompleteRST, true},
		{"S1-established", append(handshake(), step{cs, PSH | ACK, 1, 1, 10, 502, nil, 0}), StateS1, "ShAD",
			CompleteSYN | CompleteSYNACK | CompleteACK | CompleteData, true},
		{"SF-closed", closed(), StateSF, "ShAFf", CompleteSYN | CompleteSYNACK | CompleteACK | CompleteFIN, true},
		{"S2-originator-closes", append(handshake(), step{cs, FIN | ACK, 1, 1, 0, 502, nil, 0}), StateS2, "ShAF",
			CompleteSYN | CompleteSYNACK | CompleteACK | CompleteFIN, true},
		{"S3-responder-closes", append(handshake(), step{sc, FIN | ACK, 1, 1, 0, 509, nil, 0}), StateS3, "ShAf",
			CompleteSYN | CompleteSYNACK | CompleteACK | CompleteFIN, true},
		{"RSTO-originator-aborts", append(handshake(), step{cs, RST | ACK, 1, 1, 0, 0, nil, 0}), StateRSTO, "ShAR",
			CompleteSYN | CompleteSYNACK | CompleteACK | CompleteRST, true},
		{"RSTR-responder-aborts", append(handshake(), step{cs, PSH | ACK, 1, 1, 10, 502, nil, 0}, step{sc, RST | ACK, 1, 11, 0, 0, nil, 0}),
			StateRSTR, "ShADr", CompleteSYN | CompleteSYNACK | CompleteACK | CompleteData | CompleteRST, true},
		{"RSTOS0-syn-then-rst", []step{syn, {cs, RST, 1, 0, 0, 0, nil, 0}}, StateRSTOS0, "SR", CompleteSYN | CompleteRST, true},
		{"RSTRH-synack-then-rst", []step{synAck, {sc, RST, 1, 0, 0, 0, nil, 0}}, StateRSTRH, "hr", CompleteSYNACK | CompleteRST, false},
		{"SH-syn-then-fin", []step{syn, {cs, FIN | ACK, 1, 0, 0, 502, nil, 0}}, StateSH, "SF", CompleteSYN | CompleteACK | CompleteFIN, true},
		{"SH-syn-then-bare-fin", []step{syn, {cs, FIN, 1, 0, 0, 502, nil, 0}}, StateSH, "SF", CompleteSYN, true},
		{"SHR-synack-then-fin", []step{synAck, {sc, FIN | ACK, 1, 1, 0, 509, nil, 0}}, StateSHR, "hf",
			CompleteSYNACK | CompleteACK | CompleteFIN, false},
		{"OTH-midstream", []step{{cs, PSH | ACK, 1, 1, 10, 502, nil, 0}, {sc, ACK, 1, 11, 0, 509, nil, 0}}, StateOTH, "Da",
			CompleteACK | CompleteData, false},
		{"SF-midstream-closed", []step{{cs, FIN | ACK, 1, 1, 0, 502, nil, 0}, {sc, FIN | ACK, 1, 2, 0, 509, nil, 0}}, StateSF, "Ff",
			CompleteACK | CompleteFIN, false},
		{"REJ-both-reset-no-data", append(handshake(), step{cs, RST, 1, 0, 0, 0, nil, 0}, step{sc, RST, 1, 0, 0, 0, nil, 0}), StateREJ, "ShARr",
			CompleteSYN | CompleteSYNACK | CompleteACK | CompleteRST, true},
	}
	cases := make([]viewCase, len(tests))
	for k, tc := range tests {
		_, cases[k] = stepCase(t, tc.steps, k)
	}
	// tshark, where installed, reads every case in one run.
	var ws []map[int]*tsharkConn
	if _, err := exec.LookPath("tshark"); err == nil {
		ws = tsharkCaseConns(t, cases, map[int]Dir{})
	}
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, a := walkFrames(t, cases[k].lt, cases[k].frames)
			conns := a.Conns()
			if len(conns) != 1 {
				t.Fatalf("%d connections, want 1", len(conns))
			}
			s := conns[0]
			if got := s.ConnState(); got != tc.state {
				t.Errorf("conn_state %s, want %s", got, tc.state)
			}
			if s.History != tc.history {
				t.Errorf("history %q, want %q", s.History, tc.history)
			}
			if s.Completeness != tc.completeness {
				t.Errorf("completeness %d (%s), want %d (%s)", s.Completeness, s.Completeness, tc.completeness, tc.completeness)
			}
			line := string(AppendSummaryJSON(nil, &s))
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("summary JSON %q: %v", line, err)
			}
			if v["conn_state"] != tc.state.String() || v["completeness"] != float64(tc.completeness) || v["history"] != tc.history {
				t.Errorf("summary JSON %s", line)
			}
			if !strings.Contains(Summary(&s), "conn_state "+tc.state.String()+",") {
				t.Errorf("summary %q does not say conn_state %s", Summary(&s), tc.state)
			}
			if ws != nil && tc.synFirst {
				if w := ws[k][0]; w.completeness != int(tc.completeness) {
					t.Errorf("tshark's completeness %d, want %d", w.completeness, tc.completeness)
				}
			}
		})
	}
	// Every state has a case.
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.state.String()] = true
	}
	if missing := slices.DeleteFunc(slices.Clone(connStateNames[:]), func(n string) bool { return seen[n] }); len(missing) > 0 {
		t.Errorf("no case for %v", missing)
	}
}

// TestVerdictEnding: the summary's closing facts are Ending's, who closed,
// half-close and reset by whom, in the JSON as in the text.
func TestVerdictEnding(t *testing.T) {
	c := conv{steps: append(handshake(),
		step{cs, FIN | ACK, 1, 1, 0, 502, nil, 0},
		step{sc, ACK, 1, 2, 0, 509, nil, 0},
		step{sc, PSH | ACK, 1, 2, 100, 509, nil, 0},
		step{cs, RST, 2, 0, 0, 0, nil, 0})}
	_, a := walkFrames(t, c.link.linkType(), c.frames(t, 0))
	s := a.Conns()[0]
	var v struct {
		Closer, Ending       string
		HalfClose            []string `json:"half_close"`
		DataAfterClose       []string `json:"data_after_close"`
		ResetBy              *string  `json:"reset_by"`
		ResetState           *string  `json:"reset_state"`
		ServerBytes          int64    `json:"server_bytes"`
		ClientSegs, Segments int
	}
	if err := json.Unmarshal(AppendSummaryJSON(nil, &s), &v); err != nil {
		t.Fatal(err)
	}
	e := s.Ending
	if v.Closer != "client" || v.Ending != e.String() || v.ResetBy == nil || *v.ResetBy != "client" ||
		*v.ResetState != e.Reset.State.String() || len(v.DataAfterClose) != 1 || v.DataAfterClose[0] != "server" || v.ServerBytes != 100 {
		t.Errorf("summary JSON %+v, ending %s", v, e.String())
	}
	if !strings.Contains(Summary(&s), e.String()) {
		t.Errorf("summary %q lacks the ending %q", Summary(&s), e.String())
	}
}

// TestVerdictFixtures pins Zeek's conn_state and history of each
// connection of the real captures, by Zeek's rules: a connection opened
// and closed is SF, one refused REJ, one reset by the server after data
// RSTR, and one cut after the SYN/ACK (neither end established) OTH.
func TestVerdictFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		want    []string // conn_state/history of each connection
	}{
		{"handshake.pcap", []string{"SF/ShAFaf"}},
		{"rst.pcap", []string{"REJ/Sr", "RSTR/ShADadr"}},
		{"half-close.pcap", []string{"SF/ShADaFdf"}},
		// Stream 0 retransmits payload 10 times or more: a second T.
		{"retrans.pcap", []string{"SF/ShADaTTFf", "SF/ShADaTFf"}},
		{"zero-window.pcap", []string{"SF/ShADawFf"}},
		{"tfo.pcap", []string{"SF/ShADadFf", "SF/SDhAdFaf"}},
		{"truncated-record.pcap", []string{"OTH/Sh"}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			src, err := Open(filepath.Join("testdata", tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			a := NewAnnotator()
			Walk(src, a, func(*Packet) error { return nil }) // truncated-record ends in an error, by design
			var got []string
			for _, s := range a.Conns() {
				got = append(got, s.ConnState().String()+"/"+s.History)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("conn_state/history %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHistoryRepeats: Zeek's rules for letters seen again. A and D once a
// direction; S, H, F and R again only with another seq; T and W at the
// 1st, 10th and 100th time.
func TestHistoryRepeats(t *testing.T) {
	ms := time.Millisecond
	retransmitted := func(n int) []step {
		steps := append(handshake(), step{cs, PSH | ACK, 1, 1, 100, 502, nil, 10 * ms})
		for i := range n {
			steps = append(steps, step{cs, PSH | ACK, 1, 1, 100, 502, nil, time.Duration(i+1) * 300 * ms})
		}
		return steps
	}
	tests := []struct {
		name    string
		steps   []step
		history string
	}{
		{"syn-again-same-seq", []step{{cs, SYN, 0, 0, 0, 64240, synOptions(), 0}, {cs, SYN, 0, 0, 0, 64240, synOptions(), time.Second}}, "S"},
		{"two-syn-acks", []step{{cs, SYN, 0, 0, 0, 64240, synOptions(), 0},
			{sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), ms}, {sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), 2 * ms},
			{sc, SYN | ACK, 5000, 1, 0, 65160, synOptions(), 3 * ms}}, "Shh"},
		{"rst-again", append(handshake(),
			step{sc, RST, 1, 0, 0, 0, nil, 0}, step{sc, RST, 1, 0, 0, 0, nil, 0}, step{sc, RST, 2, 0, 0, 0, nil, 0}), "ShArr"},
		{"fin-again", append(handshake(),
			step{cs, FIN | ACK, 1, 1, 0, 502, nil, 0}, step{cs, FIN | ACK, 1, 1, 0, 502, nil, 300 * ms}), "ShAF"},
		{"retransmitted-9-times", retransmitted(9), "ShADT"},
		{"retransmitted-10-times", retransmitted(10), "ShADTT"},
		{"data-and-acks-once", append(handshake(),
			step{cs, PSH | ACK, 1, 1, 10, 502, nil, 0}, step{sc, ACK, 1, 11, 0, 509, nil, 0},
			step{cs, PSH | ACK, 11, 1, 10, 502, nil, 0}, step{sc, ACK, 1, 21, 0, 509, nil, 0}), "ShADa"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, a := walkFrames(t, layers.LinkTypeEthernet, conv{steps: tc.steps}.frames(t, 0))
			if h := a.Conns()[0].History; h != tc.history {
				t.Errorf("history %q, want %q", h, tc.history)
			}
		})
	}
}

// TestVerdictIgnoredRST: a RST its receiver did not take (inside the
// window, not at RCV.NXT: RFC 5961 3.2) counts in tshark's completeness,
// which has RST for any RST seen, and in Zeek's conn_state and history,
// as Zeek takes any RST of an endpoint whose peer has not closed; the
// states and the ending do not take it: both ends stay ESTABLISHED and
// the summary says it was ignored (DIFFERENCES.md, "Not differences").
func TestVerdictIgnoredRST(t *testing.T) {
	c := conv{steps: append(handshake(),
		step{cs, RST, 1001, 0, 0, 0, nil, 0},
		step{sc, ACK, 1, 1, 0, 509, nil, 0},
		step{cs, PSH | ACK, 1, 1, 4, 502, nil, 0},
		step{sc, ACK, 1, 5, 0, 509, nil, 0})}
	frames := c.frames(t, 0)
	_, a := walkFrames(t, c.link.linkType(), frames)
	s := a.Conns()[0]
	want := CompleteSYN | CompleteSYNACK | CompleteACK | CompleteData | CompleteRST
	// The data after the RST is below the RST's number: a retransmission
	// to Wireshark's analysis, and so T to Zeek.
	if s.ConnState() != StateRSTO || s.History != "ShARaDT" || s.Completeness != want {
		t.Errorf("conn_state %s, history %q, completeness %s; want RSTO, ShARaDT, %s", s.ConnState(), s.History, s.Completeness, want)
	}
	if s.ClientState != Established || s.ServerState != Established || s.Ending.Reset.Frame != 0 || s.Ending.Ignored.Frame != 4 {
		t.Errorf("states %s/%s, reset frame %d, ignored frame %d; want ESTABLISHED/ESTABLISHED, none, 4",
			s.ClientState, s.ServerState, s.Ending.Reset.Frame, s.Ending.Ignored.Frame)
	}
	if sum := Summary(&s); !strings.Contains(sum, "the server ignored the client's RST (frame 4)") {
		t.Errorf("summary %q does not say the RST was ignored", sum)
	}
	if _, err := exec.LookPath("tshark"); err == nil {
		path := filepath.Join(t.TempDir(), "v.pcap")
		writePcap(t, path, c.link.linkType(), false, frames)
		if w := tsharkConns(t, path, map[int]Dir{})[0]; w.completeness != int(want) {
			t.Errorf("tshark's completeness %d, want %d", w.completeness, want)
		}
	}
}
