package expect

import (
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// seg builds a packet for matcher tests: stream 0, with relative numbers.
func seg(dir capture.Dir, flags capture.Flags, seq, ack uint32, n int, labels ...capture.Label) capture.Packet {
	var l capture.Labels
	for _, x := range labels {
		l = l.With(x)
	}
	return capture.Packet{
		TCP:        true,
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

func numbered(seen []capture.Packet) []capture.Packet {
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
		seen   []capture.Packet
		pass   bool
		step   string // failing step
		field  string
		stepOf string
	}{
		{
			name:   "separate ACK",
			steps:  teardown,
			seen:   []capture.Packet{seg(toServer, FA, 1, 1, 0), seg(toClient, A, 1, 2, 0), seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0)},
			pass:   true,
			stepOf: "1 2 2 3",
		},
		{
			name:   "ACK on the FIN",
			steps:  teardown,
			seen:   []capture.Packet{seg(toServer, FA, 1, 1, 0), seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0)},
			pass:   true,
			stepOf: "1 2 3",
		},
		{
			name:  "server closes first",
			steps: teardown,
			seen:  []capture.Packet{seg(toClient, FA, 1, 1, 0), seg(toServer, A, 1, 2, 0), seg(toServer, FA, 1, 2, 0), seg(toClient, A, 2, 2, 0)},
			step:  "1", field: "dir",
		},
		{
			name:  "RST instead of FIN",
			steps: teardown,
			seen:  []capture.Packet{seg(toServer, FA, 1, 1, 0), seg(toClient, A, 1, 2, 0), seg(toClient, capture.RST|A, 1, 2, 0)},
			step:  "2", field: "flags",
		},
		{
			name:  "missing last ACK",
			steps: teardown,
			seen:  []capture.Packet{seg(toServer, FA, 1, 1, 0), seg(toClient, FA, 1, 2, 0)},
			step:  "3", field: "missing",
		},
		{
			name:  "extra segment",
			steps: teardown,
			seen:  []capture.Packet{seg(toServer, FA, 1, 1, 0), seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0), seg(toServer, A, 2, 2, 0)},
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
			seen: []capture.Packet{
				seg(toClient, A, 0, 1, 0, capture.KeepAlive), seg(toServer, A, 1, 1, 0, capture.KeepAliveACK),
				seg(toClient, A, 0, 1, 0, capture.KeepAlive), seg(toServer, A, 1, 1, 0, capture.KeepAliveACK),
				seg(toClient, PA, 1, 1, 5),
			},
			pass:   true,
			stepOf: "1 1 1 1 2",
		},
		{
			name:  "label missing",
			steps: []Step{S2C(A).With(capture.KeepAlive)},
			seen:  []capture.Packet{seg(toClient, A, 1, 1, 0)},
			step:  "1", field: "labels",
		},
		{
			name:   "optional absent, note consumes nothing",
			steps:  []Step{C2S(PA).SeqNum(1).Length(3), S2C(A).Optional(), Note("a remark"), S2C(PA).AckNum(4)},
			seen:   []capture.Packet{seg(toServer, PA, 1, 1, 3), seg(toClient, PA, 1, 4, 5)},
			pass:   true,
			stepOf: "1 4",
		},
		{
			name:  "wrong length",
			steps: []Step{C2S(PA).Length(3)},
			seen:  []capture.Packet{seg(toServer, PA, 1, 1, 4)},
			step:  "1", field: "len",
		},
		{
			name:  "data required",
			steps: []Step{S2C(A).WithData()},
			seen:  []capture.Packet{seg(toClient, A, 1, 1, 0)},
			step:  "1", field: "len",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Match("test", tt.steps, numbered(tt.seen), Options{})
			if v.Pass != tt.pass {
				t.Fatalf("pass = %v, want %v: %+v", v.Pass, tt.pass, v.Mismatches)
			}
			if tt.pass {
				if got := stepString(v.StepOf); got != tt.stepOf {
					t.Errorf("steps %q, want %q", got, tt.stepOf)
				}
				return
			}
			m := v.Mismatches[0]
			if m.Step.String() != tt.step || m.Field().String() != tt.field {
				t.Errorf("mismatch at step %s field %s, want step %s field %s\n%s", m.Step, m.Field(), tt.step, tt.field, m.Error())
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
	seen := numbered([]capture.Packet{seg(toServer, FA, 1, 1, 0), seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0), seg(toServer, A, 1, 1, 0)})
	seen[3].Annotation.Stream = 1
	if v := Match("test", teardown, seen, Options{}); v.Pass {
		t.Error("a second connection passed a strict match")
	}
	if v := Match("test", teardown, seen, Options{IgnoreOtherStreams: true}); !v.Pass {
		t.Errorf("a second connection failed a lenient match: %+v", v.Mismatches)
	}
}

// FuzzMatch feeds the matcher arbitrary segments: it must not panic and
// must return a verdict.
func FuzzMatch(f *testing.F) {
	f.Add([]byte{0, 0x11, 1, 1, 0x10, 0, 1, 0x10})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var seen []capture.Packet
		for i := 0; i+3 < len(b) && len(seen) < 64; i += 4 {
			s := seg(capture.Dir(b[i]&1), capture.Flags(b[i+1]), uint32(b[i+2]), uint32(b[i+3]), int(b[i]>>4), capture.Label(b[i+2]%14))
			s.Annotation.Stream = int(b[i]>>1) & 1
			seen = append(seen, s)
		}
		steps := append([]Step{Either(C2S(A), S2C(A).Optional()).AnyNumber()}, teardown...)
		v := Match("fuzz", steps, numbered(seen), Options{})
		if !v.Pass && len(v.Mismatches) == 0 {
			t.Fatal("failed without a mismatch")
		}
	})
}

// TestMatchKeepsPartialSteps: when a match fails, the segments before the
// failure still say which steps they matched, so the walkthrough and the
// diagram show how far the conversation went right.
func TestMatchKeepsPartialSteps(t *testing.T) {
	seen := numbered([]capture.Packet{seg(toServer, FA, 1, 1, 0), seg(toClient, A, 1, 2, 0), seg(toClient, capture.RST|A, 1, 2, 0)})
	v := Match("test", teardown, seen, Options{})
	if v.Pass {
		t.Fatal("a RST passed for a FIN")
	}
	if got := stepString(v.StepOf); got != "1 2 -" {
		t.Errorf("steps %q, want the FIN on step 1, the ACK on step 2, the RST on none", got)
	}
	if len(v.Matched[0]) != 1 || len(v.Matched[1]) != 1 {
		t.Errorf("matched %v", v.Matched)
	}
}

// stepString joins step numbers with spaces, "-" for none.
func stepString(steps []StepNum) string {
	var parts []string
	for _, n := range steps {
		parts = append(parts, n.String())
	}
	return strings.Join(parts, " ")
}

// TestMismatchShowsEveryField: a segment that differs in several fields
// reports all of them, in a table, not only the first.
func TestMismatchShowsEveryField(t *testing.T) {
	steps := []Step{S2C(A).AckNum(415).Length(0)}
	v := Match("halfclose", steps, numbered([]capture.Packet{seg(toClient, PA, 1, 415, 113)}), Options{})
	if v.Pass {
		t.Fatal("a data segment passed for a bare ACK")
	}
	m := v.Mismatches[0]
	var fields []string
	for _, d := range m.Diffs {
		fields = append(fields, d.Field.String())
	}
	if got := strings.Join(fields, ","); got != "flags,len" {
		t.Errorf("fields %s, want flags,len", got)
	}
	want := "halfclose step 1: field flags: expected ACK vs actual PSH,ACK; field len: expected 0 vs actual 113\n" +
		"  field  expected  actual\n" +
		"  flags  ACK       PSH,ACK\n" +
		"  len    0         113\n"
	if !strings.HasPrefix(m.Error(), want) {
		t.Errorf("report:\n%s\nwant it to start with:\n%s", m.Error(), want)
	}
}

// TestEmptyStepFails: a Step literal checks nothing, so Match refuses it
// instead of passing whatever segment comes.
func TestEmptyStepFails(t *testing.T) {
	v := Match("test", []Step{{}}, numbered([]capture.Packet{seg(toServer, A, 1, 1, 0)}), Options{})
	if v.Pass {
		t.Fatal("an empty Step passed")
	}
	if f := v.Mismatches[0].Field(); f != FieldSteps {
		t.Errorf("field %v, want steps", f)
	}
}

// TestNonTCPPacketsMatchNothing: packets without TCP are skipped and
// matched to no step, so a whole capture can be given to Match.
func TestNonTCPPacketsMatchNothing(t *testing.T) {
	pkts := []capture.Packet{seg(toServer, FA, 1, 1, 0), {}, seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0)}
	v := Match("test", teardown, numbered(pkts), Options{})
	if !v.Pass {
		t.Fatalf("mismatch: %+v", v.Mismatches)
	}
	if got := stepString(v.StepOf); got != "1 - 2 3" {
		t.Errorf("steps %q, want 1 - 2 3", got)
	}
}

func TestTextRoundTrip(t *testing.T) {
	for _, n := range []StepNum{1, 15, End, 0} {
		b, _ := n.MarshalText()
		var got StepNum
		if err := got.UnmarshalText(b); err != nil || got != n {
			t.Errorf("step %v: round trip gives %v, %v", n, got, err)
		}
	}
	for f := FieldStream; f < fieldEnd; f++ {
		b, _ := f.MarshalText()
		var got Field
		if err := got.UnmarshalText(b); err != nil || got != f {
			t.Errorf("field %v: round trip gives %v, %v", f, got, err)
		}
	}
	for _, l := range []Lang{English, Chinese} {
		b, _ := l.MarshalText()
		var got Lang
		if err := got.UnmarshalText(b); err != nil || got != l {
			t.Errorf("lang %v: round trip gives %v, %v", l, got, err)
		}
	}
	if _, err := ParseLang("fr"); err == nil {
		t.Error("ParseLang accepted fr")
	}
}

// TestLanguage: the words of the language mean what they say.
func TestLanguage(t *testing.T) {
	ka := seg(toClient, A, 0, 1, 0, capture.KeepAlive)
	plain := seg(toClient, A, 1, 1, 0)
	data := seg(toClient, PA, 1, 1, 5)
	tests := []struct {
		name  string
		steps []Step
		pkts  []capture.Packet
		pass  bool
	}{
		{"Either takes either", []Step{Either(S2C(A), S2C(PA))}, []capture.Packet{data}, true},
		{"Either takes one", []Step{Either(S2C(A), S2C(PA))}, []capture.Packet{data, plain}, false},
		{"With on a choice refines every alternative", []Step{Either(S2C(A), S2C(PA)).With(capture.KeepAlive)}, []capture.Packet{plain}, false},
		{"With on a choice, met", []Step{Either(S2C(A), S2C(PA)).With(capture.KeepAlive)}, []capture.Packet{ka}, true},
		{"Length on a choice", []Step{Either(S2C(A), S2C(PA)).Length(0)}, []capture.Packet{data}, false},
		{"AnyNumber takes none", []Step{S2C(A).AnyNumber(), S2C(PA)}, []capture.Packet{data}, true},
		{"AnyNumber takes many", []Step{S2C(A).AnyNumber(), S2C(PA)}, []capture.Packet{plain, plain, plain, data}, true},
		{"AtLeast needs one", []Step{S2C(A).AtLeast(1), S2C(PA)}, []capture.Packet{data}, false},
		{"Optional takes one at most", []Step{S2C(A).Optional()}, []capture.Packet{plain, plain}, false},
		{"int numbers", []Step{S2C(PA).SeqNum(1).AckNum(1).Length(5)}, []capture.Packet{data}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Match("test", tt.steps, numbered(append([]capture.Packet(nil), tt.pkts...)), Options{})
			if v.Pass != tt.pass {
				t.Errorf("pass = %v, want %v: %+v", v.Pass, tt.pass, v.Mismatches)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		step Step
		want string
	}{
		{C2S(FIN | ACK), "a C>S FIN,ACK"},
		{S2C(ACK).Length(0), "a S>C ACK without data"},
		{Either(S2C(ACK).WithData(), S2C(PSH|ACK).Length(5)), "a S>C ACK with data; or a S>C PSH,ACK with 5 bytes"},
		{Note("x"), "no segment"},
	}
	for _, tt := range tests {
		if got := tt.step.Describe(); got != tt.want {
			t.Errorf("Describe() = %q, want %q", got, tt.want)
		}
	}
}
