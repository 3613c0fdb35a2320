package path_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/lab/path"
)

func TestParse(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		in   string
		want path.Path
		str  string // canonical form; "" means in is canonical
	}{
		{in: "", want: path.Path{}},
		{in: "delay=20ms", want: path.Path{C2S: path.Conditions{Delay: 20 * ms}, S2C: path.Conditions{Delay: 20 * ms}}},
		{
			in: "delay=20ms,jitter=2ms,loss=1%,reorder=2%,duplicate=1%,rate=10mbit",
			want: path.Path{
				C2S: path.Conditions{Delay: 20 * ms, Jitter: 2 * ms, Loss: 1, Reorder: 2, Duplicate: 1, Rate: 10_000_000},
				S2C: path.Conditions{Delay: 20 * ms, Jitter: 2 * ms, Loss: 1, Reorder: 2, Duplicate: 1, Rate: 10_000_000},
			},
		},
		{
			in:   "rate=10mbit, loss=0.5% ,delay=1.5s",
			want: path.Path{C2S: path.Conditions{Delay: 1500 * ms, Loss: 0.5, Rate: 1e7}, S2C: path.Conditions{Delay: 1500 * ms, Loss: 0.5, Rate: 1e7}},
			str:  "delay=1.5s,loss=0.5%,rate=10mbit",
		},
		{
			in:   "delay=10ms,s2c:loss=5%",
			want: path.Path{C2S: path.Conditions{Delay: 10 * ms}, S2C: path.Conditions{Delay: 10 * ms, Loss: 5}},
		},
		{
			in:   "s2c:delay=30ms,delay=10ms,c2s:rate=1gbit",
			want: path.Path{C2S: path.Conditions{Delay: 10 * ms, Rate: 1e9}, S2C: path.Conditions{Delay: 30 * ms}},
			str:  "c2s:delay=10ms,s2c:delay=30ms,c2s:rate=1gbit",
		},
		{
			in:   "c2s:delay=5ms,s2c:delay=5ms",
			want: path.Path{C2S: path.Conditions{Delay: 5 * ms}, S2C: path.Conditions{Delay: 5 * ms}},
			str:  "delay=5ms",
		},
		{
			in:   "c2s:delay=0s,delay=5ms",
			want: path.Path{S2C: path.Conditions{Delay: 5 * ms}},
			str:  "s2c:delay=5ms",
		},
		{in: "rate=100kbps", want: path.Path{C2S: path.Conditions{Rate: 800_000}, S2C: path.Conditions{Rate: 800_000}}, str: "rate=800kbit"},
		{in: "rate=1500bit", want: path.Path{C2S: path.Conditions{Rate: 1500}, S2C: path.Conditions{Rate: 1500}}},
		{in: "rate=1.5Mbit", want: path.Path{C2S: path.Conditions{Rate: 1_500_000}, S2C: path.Conditions{Rate: 1_500_000}}, str: "rate=1500kbit"},
		{in: "rate=3bps", want: path.Path{C2S: path.Conditions{Rate: 24}, S2C: path.Conditions{Rate: 24}}, str: "rate=24bit"},
		{in: "loss=100%", want: path.Path{C2S: path.Conditions{Loss: 100}, S2C: path.Conditions{Loss: 100}}},
		{in: "delay=250us,jitter=250us", want: path.Path{
			C2S: path.Conditions{Delay: 250 * time.Microsecond, Jitter: 250 * time.Microsecond},
			S2C: path.Conditions{Delay: 250 * time.Microsecond, Jitter: 250 * time.Microsecond},
		}, str: "delay=250µs,jitter=250µs"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := path.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			want := tt.str
			if want == "" {
				want = tt.in
			}
			if s := got.String(); s != want {
				t.Errorf("String() = %q, want %q", s, want)
			}
			back, err := path.Parse(got.String())
			if err != nil || back != got {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", back, err, got)
			}
			if got.IsZero() != (tt.in == "") {
				t.Errorf("IsZero() = %v", got.IsZero())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want []string // substrings of the error
	}{
		{"latency=20ms", []string{`unknown key "latency"`, "delay, jitter"}},
		{"delay=-5ms", []string{"delay=-5ms", "negative", "duration >= 0"}},
		{"delay=20", []string{"delay=20", "not a duration", "with its unit"}},
		{"loss=150%", []string{"loss=150%", "out of range", "0% to 100%"}},
		{"loss=-1%", []string{"loss=-1%", "out of range"}},
		{"loss=1", []string{"loss=1", "no % sign"}},
		{"loss=NaN%", []string{"loss=NaN%", "not a number"}},
		{"rate=10", []string{"rate=10", "no unit", "kbit, mbit"}},
		{"rate=10mb", []string{"rate=10mb", "no unit"}},
		{"rate=-1mbit", []string{"rate=-1mbit", "negative"}},
		{"rate=0.1bit", []string{"rate=0.1bit", "below 1bit"}},
		{"jitter=2ms", []string{"jitter=2ms without a delay"}},
		{"delay=5ms,c2s:delay=0s,jitter=1ms", []string{"c2s:jitter=1ms without a delay"}},
		{"reorder=5%", []string{"reorder=5% without a delay"}},
		{"delay=1ms,delay=2ms", []string{"delay given twice"}},
		{"s2c:loss=1%,s2c:loss=2%", []string{"s2c:loss given twice"}},
		{"delay", []string{`"delay" has no value`}},
		{"delay=1ms,,loss=1%", []string{"empty term"}},
		{"delay=1ms,", []string{"empty term"}},
		{"x2y:delay=1ms", []string{`unknown key "x2y:delay"`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := path.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, p)
			}
			if !errors.Is(err, path.ErrSyntax) {
				t.Errorf("error %v does not wrap ErrSyntax", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "delay=20ms,jitter=2ms,loss=1%,reorder=2%,duplicate=1%,rate=10mbit",
		"delay=10ms,s2c:loss=5%", "c2s:rate=1.5kbps,s2c:delay=1h", "loss=1e-3%", "rate=0x1p4bit",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := path.Parse(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Errorf("Parse(%q): error of more than one line: %q", s, err)
			}
			return
		}
		str := p.String()
		back, err := path.Parse(str)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, whose String %q does not parse: %v", s, p, str, err)
		}
		if back != p {
			t.Fatalf("Parse(%q) = %+v; Parse(String() = %q) = %+v", s, p, str, back)
		}
		if back.String() != str {
			t.Fatalf("String is not canonical: %q then %q", str, back.String())
		}
	})
}
