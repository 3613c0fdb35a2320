package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// seg builds a Seen for matcher tests: stream 0, with relative numbers.
func seg(dir capture.Dir, flags capture.Flags, seq, ack uint32, n int, labels ...capture.Label) Seen {
	var l capture.Labels
	for _, x := range labels {
		l = l.With(x)
	}
	return Seen{
		Segment:    capture.Segment{Flags: flags, Len: n, Time: time.Unix(0, 0)},
		Annotation: capture.Annotation{Dir: dir, RelSeq: seq, RelAck: ack, Labels: l},
	}
}

const (
	toServer = capture.ClientToServer
	toClient = capture.ServerToClient
	A        = capture.ACK
	PA       = capture.PSH | capture.ACK
	FA       = capture.FIN | capture.ACK
)

func numbered(seen []Seen) []Seen {
	for i := range seen {
		seen[i].Segment.Frame = i + 1
	}
	return seen
}

// teardown is a client-first close where the server's ACK may ride on its FIN.
var teardown = []Step{
	C2S(FA),
	OneOf(Seq(S2C(A), S2C(FA)), Seq(S2C(FA))),
	C2S(A),
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name   string
		steps  []Step
		seen   []Seen
		pass   bool
		step   string // failing step
		field  string
		stepOf []string
	}{
		{
			name:   "separate ACK",
			steps:  teardown,
			seen:   []Seen{seg(toServer, FA, 1, 1, 0), seg(toClient, A, 1, 2, 0), seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0)},
			pass:   true,
			stepOf: []string{"1", "2", "2", "3"},
		},
		{
			name:   "ACK on the FIN",
			steps:  teardown,
			seen:   []Seen{seg(toServer, FA, 1, 1, 0), seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0)},
			pass:   true,
			stepOf: []string{"1", "2", "3"},
		},
		{
			name:  "server closes first",
			steps: teardown,
			seen:  []Seen{seg(toClient, FA, 1, 1, 0), seg(toServer, A, 1, 2, 0), seg(toServer, FA, 1, 2, 0), seg(toClient, A, 2, 2, 0)},
			step:  "1", field: "dir",
		},
		{
			name:  "RST instead of FIN",
			steps: teardown,
			seen:  []Seen{seg(toServer, FA, 1, 1, 0), seg(toClient, A, 1, 2, 0), seg(toClient, capture.RST|A, 1, 2, 0)},
			step:  "2", field: "flags",
		},
		{
			name:  "missing last ACK",
			steps: teardown,
			seen:  []Seen{seg(toServer, FA, 1, 1, 0), seg(toClient, FA, 1, 2, 0)},
			step:  "3", field: "missing",
		},
		{
			name:  "extra segment",
			steps: teardown,
			seen:  []Seen{seg(toServer, FA, 1, 1, 0), seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0), seg(toServer, A, 2, 2, 0)},
			step:  "end", field: "unexpected",
		},
		{
			name:  "no segments",
			steps: teardown,
			step:  "1", field: "missing",
		},
		{
			name: "repeated pairs",
			steps: []Step{
				OneOf(Seq(S2C(A).With(capture.KeepAlive), C2S(A).With(capture.KeepAliveACK))).Times(1, 3),
				S2C(PA).Length(5),
			},
			seen: []Seen{
				seg(toClient, A, 0, 1, 0, capture.KeepAlive), seg(toServer, A, 1, 1, 0, capture.KeepAliveACK),
				seg(toClient, A, 0, 1, 0, capture.KeepAlive), seg(toServer, A, 1, 1, 0, capture.KeepAliveACK),
				seg(toClient, PA, 1, 1, 5),
			},
			pass:   true,
			stepOf: []string{"1", "1", "1", "1", "2"},
		},
		{
			name:  "label missing",
			steps: []Step{S2C(A).With(capture.KeepAlive)},
			seen:  []Seen{seg(toClient, A, 1, 1, 0)},
			step:  "1", field: "labels",
		},
		{
			name:   "optional absent, note consumes nothing",
			steps:  []Step{C2S(PA).SeqNum(1).Length(3), S2C(A).Optional(), Note("a remark"), S2C(PA).AckNum(4)},
			seen:   []Seen{seg(toServer, PA, 1, 1, 3), seg(toClient, PA, 1, 4, 5)},
			pass:   true,
			stepOf: []string{"1", "4"},
		},
		{
			name:  "wrong length",
			steps: []Step{C2S(PA).Length(3)},
			seen:  []Seen{seg(toServer, PA, 1, 1, 4)},
			step:  "1", field: "len",
		},
		{
			name:  "data required",
			steps: []Step{S2C(A).WithData()},
			seen:  []Seen{seg(toClient, A, 1, 1, 0)},
			step:  "1", field: "len",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Match("test", tt.steps, numbered(tt.seen), MatchOptions{})
			if v.Pass != tt.pass {
				t.Fatalf("pass = %v, want %v: %+v", v.Pass, tt.pass, v.Mismatches)
			}
			if tt.pass {
				if strings.Join(v.StepOf, " ") != strings.Join(tt.stepOf, " ") {
					t.Errorf("steps %q, want %q", v.StepOf, tt.stepOf)
				}
				return
			}
			m := v.Mismatches[0]
			if m.Step != tt.step || m.Field != tt.field {
				t.Errorf("mismatch at step %s field %s, want step %s field %s\n%s", m.Step, m.Field, tt.step, tt.field, m.Error())
			}
			if !strings.HasPrefix(m.Error(), "test step "+tt.step+": field "+tt.field) {
				t.Errorf("report does not start with the step and field:\n%s", m.Error())
			}
		})
	}
}

// TestMatchOtherStreams: a connection no step mentions fails a lab run but
// not a check of a capture made elsewhere.
func TestMatchOtherStreams(t *testing.T) {
	seen := numbered([]Seen{seg(toServer, FA, 1, 1, 0), seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0), seg(toServer, A, 1, 1, 0)})
	seen[3].Annotation.Stream = 1
	if v := Match("test", teardown, seen, MatchOptions{}); v.Pass {
		t.Error("a second connection passed a strict match")
	}
	if v := Match("test", teardown, seen, MatchOptions{IgnoreOtherStreams: true}); !v.Pass {
		t.Errorf("a second connection failed a lenient match: %+v", v.Mismatches)
	}
}

// FuzzMatch feeds the matcher arbitrary segments: it must not panic and
// must return a verdict.
func FuzzMatch(f *testing.F) {
	f.Add([]byte{0, 0x11, 1, 1, 0x10, 0, 1, 0x10})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var seen []Seen
		for i := 0; i+3 < len(b) && len(seen) < 64; i += 4 {
			s := seg(capture.Dir(b[i]&1), capture.Flags(b[i+1]), uint32(b[i+2]), uint32(b[i+3]), int(b[i]>>4), capture.Label(b[i+2]%14))
			s.Annotation.Stream = int(b[i]>>1) & 1
			seen = append(seen, s)
		}
		steps := append([]Step{OneOf(Seq(C2S(A)), Seq(S2C(A).Optional())).Times(0, -1)}, teardown...)
		v := Match("fuzz", steps, numbered(seen), MatchOptions{})
		if !v.Pass && len(v.Mismatches) == 0 {
			t.Fatal("failed without a mismatch")
		}
	})
}

// TestMatchKeepsPartialSteps: when a match fails, the segments before the
// failure still say which steps they matched, so the walkthrough and the
// diagram show how far the conversation went right.
func TestMatchKeepsPartialSteps(t *testing.T) {
	seen := numbered([]Seen{seg(toServer, FA, 1, 1, 0), seg(toClient, A, 1, 2, 0), seg(toClient, capture.RST|A, 1, 2, 0)})
	v := Match("test", teardown, seen, MatchOptions{})
	if v.Pass {
		t.Fatal("a RST passed for a FIN")
	}
	if got := strings.Join(v.StepOf, ","); got != "1,2," {
		t.Errorf("steps %q, want the FIN on step 1, the ACK on step 2, the RST on none", got)
	}
	if len(v.Matched[0]) != 1 || len(v.Matched[1]) != 1 {
		t.Errorf("matched %v", v.Matched)
	}
}
