package property

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// contextOf is the context as the judge must show it, computed the plain
// way over every packet: from three segments before the first of frames to
// three after the last, at most 20 lines, frames marked.
func contextOf(c *Conn, frames []int) []string {
	first, last := -1, -1
	for i := range c.Packets {
		if slices.Contains(frames, c.Packets[i].Segment.Frame) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	lo := max(0, first-3)
	hi := min(len(c.Packets), last+4, lo+20)
	var lines []string
	for i := lo; i < hi; i++ {
		mark := "  "
		if slices.Contains(frames, c.Packets[i].Segment.Frame) {
			mark = "> "
		}
		lines = append(lines, mark+expect.Format(&c.Packets[i], c.start))
	}
	return lines
}

// randomConn returns a connection of n segments of random flags and
// labels: RSTs, FINs either way, retransmissions, zero windows, SYNs,
// keep-alives, data after a FIN.
func randomConn(t *testing.T, rng *rand.Rand, n int) *Conn {
	t.Helper()
	lines := []string{"C>S S 1000 0 0"}
	seq := [2]int{1001, 5001}
	if rng.IntN(4) == 0 {
		lines = lines[:0] // begun mid-connection
	} else {
		lines = append(lines, "S>C SA 5000 1001 0", "C>S A 1001 5001 0")
	}
	dirs := [2]string{"C>S", "S>C"}
	labels := []string{"", "", "", "", "|retransmission", "|fast-retransmission", "|zero-window", "|keep-alive", "|keep-alive-ack"}
	for len(lines) < n {
		d := rng.IntN(2)
		flags := "A"
		switch k := rng.IntN(40); {
		case k == 0:
			flags = "RA"
		case k < 3:
			flags = "FA"
		case k == 3 && d == 0:
			flags = "S"
		case k < 20:
			flags = "PA"
		}
		length := 0
		if flags == "PA" {
			length = 1 + rng.IntN(100)
		}
		lines = append(lines, fmt.Sprintf("%s %s %d %d %d%s", dirs[d], flags, seq[d], seq[1-d], length, labels[rng.IntN(len(labels))]))
		seq[d] += length
		if flags == "FA" {
			seq[d]++
		}
	}
	return talk(t, lines...)
}

// TestJudgeContext feeds random connections, short and long, to one Judge
// of every property and compares each failure's context with the one
// computed over every packet, and each result with the property judged
// alone: the judge keeps the segments each failure shows, whichever they
// are, and the properties do not disturb one another.
func TestJudgeContext(t *testing.T) {
	list := "handshake,no-rst,no-retransmission,no-zero-window,closer=client,closer=server,closer=simultaneous,half-close," +
		"teardown=FIN,ACK,FIN,ACK,teardown=C>S FIN,S>C FIN,C>S ACK,S>C ACK,keepalive,max-syn-retries=0"
	props, err := Parse(list)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	failures := 0
	for n := range 400 {
		c := randomConn(t, rng, 1+n%10+rng.IntN(1+n%4*40))
		j := NewJudge(props, c.start)
		for i := range c.Packets {
			j.Add(&c.Packets[i])
		}
		for k, r := range j.Results() {
			if alone := props[k].Check(c); !equalResults(r, alone) {
				t.Fatalf("connection %d, %s: with the others %+v, alone %+v", n, props[k], r, alone)
			}
			if r.Pass || len(r.Frames) == 0 || strings.Contains(r.Detail, "listed)") {
				continue
			}
			failures++
			if want := contextOf(c, r.Frames); !slices.Equal(r.Context, want) {
				t.Fatalf("connection %d, %s (%s), frames %v: context\n%s\nwant\n%s", n, props[k], r.Detail, r.Frames,
					strings.Join(r.Context, "\n"), strings.Join(want, "\n"))
			}
		}
	}
	if failures < 1000 {
		t.Errorf("only %d failures with frames: the connections test too little", failures)
	}
}

func equalResults(a, b Result) bool {
	return a.Property == b.Property && a.Pass == b.Pass && a.Detail == b.Detail && slices.Equal(a.Frames, b.Frames) && slices.Equal(a.Context, b.Context)
}

// TestJudgeListsFirstFrames: a property broken by more segments than
// MaxFrames lists the first MaxFrames, says how many there were and that
// only the first are listed, and shows 20 lines from three before the
// first.
func TestJudgeListsFirstFrames(t *testing.T) {
	lines := append([]string(nil), open...)
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("C>S PA %d 5001 10", 1001+10*i), fmt.Sprintf("C>S PA %d 5001 10|retransmission", 1001+10*i))
	}
	c := talk(t, lines...)
	for _, tt := range []struct{ prop, detail string }{
		{"no-retransmission", "100 retransmitted segment(s) (the first 20 listed)"},
		{"no-rst", ""},
	} {
		props, err := Parse(tt.prop)
		if err != nil {
			t.Fatal(err)
		}
		r := props[0].Check(c)
		if tt.detail == "" {
			if !r.Pass || r.Frames != nil || r.Context != nil {
				t.Errorf("%s: %+v, want a pass", tt.prop, r)
			}
			continue
		}
		if r.Pass || r.Detail != tt.detail || len(r.Frames) != MaxFrames || r.Frames[0] != 5 || r.Frames[MaxFrames-1] != 5+2*(MaxFrames-1) {
			t.Errorf("%s: pass %v, detail %q, frames %v", tt.prop, r.Pass, r.Detail, r.Frames)
		}
		if len(r.Context) != 20 || !strings.Contains(r.Context[0], "(frame 2,") || strings.Count(strings.Join(r.Context, "\n"), "\n> ") != 9 {
			t.Errorf("%s: context\n%s", tt.prop, strings.Join(r.Context, "\n"))
		}
	}
}

// TestJudgeEnding: the judge's Ending is capture.EndingOf the packets fed.
func TestJudgeEnding(t *testing.T) {
	for _, conn := range [][]string{clientCloses, merged, serverCloses, crossing, halfClosed, crossedAnswer, reset, midway, challenged, challengedThenReset, dropped} {
		c := talk(t, conn...)
		j := NewJudge(nil, c.start)
		for i := range c.Packets {
			j.Add(&c.Packets[i])
		}
		if got, want := j.Ending(), capture.EndingOf(c.Packets); got != want {
			t.Errorf("%v: ending %s, want %s", conn, &got, &want)
		}
	}
}

// TestJudgeKeepalive: a probe is answered only by the other side's
// keep-alive ACK, after it.
func TestJudgeKeepalive(t *testing.T) {
	probe := "S>C A 5000 1001 0|keep-alive"
	tests := []struct {
		conn   []string
		pass   bool
		detail string
	}{
		{append(append([]string(nil), open...), probe, "C>S A 1001 5001 0|keep-alive-ack"), true, "probe frame 4, answered in frame 5"},
		{append(append([]string(nil), open...), probe, "S>C A 5001 1001 0|keep-alive-ack"), false, "keep-alive probe in frame 4 never answered"},
		{append(append([]string(nil), open...), "C>S A 1001 5001 0|keep-alive-ack", probe), false, "keep-alive probe in frame 5 never answered"},
		{append(append([]string(nil), open...), probe, probe, "C>S A 1001 5001 0|keep-alive-ack"), true, "probe frame 4, answered in frame 6"},
	}
	props, err := Parse("keepalive")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		r := props[0].Check(talk(t, tt.conn...))
		if r.Pass != tt.pass || r.Detail != tt.detail {
			t.Errorf("%v: pass %v, detail %q; want %v, %q", tt.conn, r.Pass, r.Detail, tt.pass, tt.detail)
		}
	}
}
