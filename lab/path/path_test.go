package path_test

import (
	"errors"
	"math"
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
		{in: "rate=125bps", want: path.Path{C2S: path.Conditions{Rate: 1000}, S2C: path.Conditions{Rate: 1000}}, str: "rate=1kbit"},
		{in: "rate=100gbit,delay=1m,jitter=1m", want: path.Path{
			C2S: path.Conditions{Delay: time.Minute, Jitter: time.Minute, Rate: 100e9},
			S2C: path.Conditions{Delay: time.Minute, Jitter: time.Minute, Rate: 100e9},
		}, str: "delay=1m0s,jitter=1m0s,rate=100gbit"},
		{in: "rate=10mbit,s2c:rate=0bit", want: path.Path{C2S: path.Conditions{Rate: 1e7}}, str: "c2s:rate=10mbit"},
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
		{"delay=-5ms", []string{"delay=-5ms", "negative", "duration from 0 to 1m0s"}},
		{"delay=20", []string{"delay=20", "not a duration", "with its unit"}},
		{"loss=150%", []string{"loss=150%", "out of range", "0% to 100%"}},
		{"loss=-1%", []string{"loss=-1%", "out of range"}},
		{"loss=1", []string{"loss=1", "no % sign"}},
		{"loss=NaN%", []string{"loss=NaN%", "not a number"}},
		{"rate=10", []string{"rate=10", "no unit", "kbit, mbit"}},
		{"rate=10mb", []string{"rate=10mb", "no unit"}},
		{"rate=-1mbit", []string{"rate=-1mbit", "negative"}},
		{"rate=0.1bit", []string{"rate=0.1bit", "at least 1kbit"}},
		{"rate=3bps", []string{"rate=3bps", "at least 1kbit", "from 1kbit to 100gbit"}},
		{"rate=999bit", []string{"rate=999bit", "at least 1kbit"}},
		{"rate=100.001gbit", []string{"rate=100.001gbit", "at most 100gbit"}},
		{"rate=1e30tbit", []string{"rate=1e30tbit", "at most 100gbit"}},
		// Issue 18: this jitter made Int64N panic in the delay line, and
		// this delay wrapped around to none at all.
		{"delay=1ms,jitter=1300000h", []string{"jitter=1300000h: at most 1m0s", "from 0 to 1m0s"}},
		{"delay=9223372036854775807ns", []string{"delay=9223372036854775807ns: at most 1m0s"}},
		{"delay=9223372036854775808ns", []string{"delay=9223372036854775808ns: at most 1m0s"}},
		{"s2c:delay=99999999999999999999h", []string{"s2c:delay=99999999999999999999h: at most 1m0s"}},
		{"delay=-99999999999999999999h", []string{"negative"}},
		{"delay=1m0.000000001s", []string{"at most 1m0s"}},
		{"delay=1h", []string{"delay=1h: at most 1m0s"}},
		{"delay=1e3s", []string{"delay=1e3s", "not a duration"}},
		{"delay=1.2.3s", []string{"not a duration"}},
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

// TestCheck: conditions made in code, not parsed, are held to the bounds
// of Parse, and each error names the key and its bound in one line.
func TestCheck(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		c    path.Conditions
		want string // "" when c is good
	}{
		{path.Conditions{}, ""},
		{path.Conditions{Delay: path.MaxDelay, Jitter: path.MaxDelay, Loss: 100, Reorder: 100, Duplicate: 100, Rate: path.MaxRate}, ""},
		{path.Conditions{Rate: path.MinRate}, ""},
		{path.Conditions{Delay: path.MaxDelay + 1}, "delay=1m0.000000001s: at most 1m0s"},
		{path.Conditions{Delay: ms, Jitter: 1300000 * time.Hour}, "jitter=1300000h0m0s: at most 1m0s"},
		{path.Conditions{Delay: ms, Jitter: -ms}, "jitter=-1ms: negative"},
		{path.Conditions{Delay: -ms}, "delay=-1ms: negative"},
		{path.Conditions{Loss: 101}, "loss=101%: out of range"},
		{path.Conditions{Duplicate: -1}, "duplicate=-1%: out of range"},
		{path.Conditions{Reorder: math.NaN(), Delay: ms}, "reorder=NaN%: out of range"},
		{path.Conditions{Rate: path.MinRate - 1}, "rate=999bit: at least 1kbit"},
		{path.Conditions{Rate: path.MaxRate + 1}, "rate=100000000001bit: at most 100gbit"},
		{path.Conditions{Jitter: ms}, "jitter=1ms without a delay"},
		{path.Conditions{Reorder: 1}, "reorder=1% without a delay"},
	}
	for _, tt := range tests {
		t.Run(tt.c.String(), func(t *testing.T) {
			err := tt.c.Check()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Check() = %v, want one line saying %q", err, tt.want)
			}
			if !errors.Is(err, path.ErrSyntax) {
				t.Errorf("error %v does not wrap ErrSyntax", err)
			}
			for _, p := range []path.Path{{C2S: tt.c}, {S2C: tt.c}} {
				if err := p.Check(); err == nil {
					t.Errorf("Path%+v.Check() = nil", p)
				}
			}
		})
	}
}

// TestStartLineChecks: a Line refuses a path out of bounds before it
// makes any device, so the test needs no privilege.
func TestStartLineChecks(t *testing.T) {
	_, err := path.StartLine(t.Context(), path.LineConfig{Path: path.Path{S2C: path.Conditions{Delay: ms(1), Jitter: 1300000 * time.Hour}}})
	if err == nil || !strings.Contains(err.Error(), "s2c: bad path: jitter=1300000h0m0s: at most 1m0s") {
		t.Fatalf("StartLine = %v, want the jitter refused", err)
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "delay=20ms,jitter=2ms,loss=1%,reorder=2%,duplicate=1%,rate=10mbit",
		"delay=10ms,s2c:loss=5%", "c2s:rate=1.5kbps,s2c:delay=1h", "loss=1e-3%", "rate=0x1p4bit",
		"delay=1ms,jitter=1300000h", "delay=9223372036854775807ns", "rate=100gbit,delay=1m",
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
		if err := p.Check(); err != nil {
			t.Fatalf("Parse(%q) = %+v, which fails Check: %v", s, p, err)
		}
		for _, c := range []path.Conditions{p.C2S, p.S2C} {
			if c.Delay < 0 || c.Delay > path.MaxDelay || c.Jitter < 0 || c.Jitter > path.MaxDelay ||
				c.Rate != 0 && (c.Rate < path.MinRate || c.Rate > path.MaxRate) {
				t.Fatalf("Parse(%q) = %+v, out of bounds", s, c)
			}
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
