package scripted_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/lab/scripted"
)

// TestNoiseWidensLateOnly: with Config.Noise a due segment that comes
// later than its tolerance passes when the machine's measured noise
// covers the lateness, and fails when it does not, or when there is no
// measure; an early segment fails whatever the noise. The SYN/ACK comes
// at once; the test declares it due 100 ms before (late) or after
// (early) the SYN.
func TestNoiseWidensLateOnly(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	needTUN(t)
	const tol = 4 * time.Millisecond
	synack := scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1)}
	tests := []struct {
		name  string
		noise func(from, to time.Time) time.Duration
		due   time.Duration // from the SYN
		pass  bool
		want  string // in the report of a failure
	}{
		{name: "late, no measure", due: -100 * time.Millisecond},
		{name: "late beyond the noise", noise: fixedNoise(30 * time.Millisecond), due: -100 * time.Millisecond, want: "noise +30ms"},
		// Noise of seconds: the frame, however long a loaded machine
		// takes to hand it over, is waited for.
		{name: "late within the noise", noise: fixedNoise(5 * time.Second), due: -100 * time.Millisecond, pass: true},
		{name: "early, whatever the noise", noise: fixedNoise(time.Second), due: 100 * time.Millisecond, want: "± 4ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked [][2]time.Time
			cfg := scripted.Config{}
			if tt.noise != nil {
				cfg.Noise = func(from, to time.Time) time.Duration {
					asked = append(asked, [2]time.Time{from, to})
					return tt.noise(from, to)
				}
			}
			p, err := scripted.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			listen(t, p)
			conn := p.Dial(serverPort)
			sent, err := conn.TrySend(scripted.TCP{Flags: scripted.SYN})
			if err != nil {
				t.Fatal(err)
			}
			due := sent.Add(tt.due)
			_, err = conn.TryExpectDue(synack, due, 0, tol)
			switch {
			case tt.pass && err != nil:
				t.Fatalf("a segment late within the noise failed: %v", err)
			case !tt.pass && err == nil:
				t.Fatalf("passed; want a failure")
			case !tt.pass:
				t.Logf("report:\n%v", err)
				if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
					t.Errorf("report lacks %q:\n%v", tt.want, err)
				}
				return
			}
			tm := p.Timings()
			if len(tm) != 1 || tm[0].Noise != 5*time.Second || tm[0].Tolerance != tol+5*time.Second {
				t.Errorf("timings %+v, want one widened by the noise: Noise 5s, Tolerance 5.004s", tm)
			}
			// The noise asked about starts where the segment became
			// late, the earliest time it was due.
			if len(asked) == 0 || !asked[0][0].Equal(due.Add(-tol)) {
				t.Errorf("noise asked for %v, want from %v", asked, due.Add(-tol))
			}
		})
	}
}

func fixedNoise(d time.Duration) func(from, to time.Time) time.Duration {
	return func(time.Time, time.Time) time.Duration { return d }
}

// TestWithin: on time and within tol passes without widening; late
// beyond tol passes only with noise that covers it, asked from the
// earliest due time to the arrival; early never passes.
func TestWithin(t *testing.T) {
	due := time.Unix(100, 0)
	const tol = 4 * time.Millisecond
	ms := func(n int) time.Time { return due.Add(time.Duration(n) * time.Millisecond) }
	var asked [2]time.Time
	noise := func(d time.Duration) func(from, to time.Time) time.Duration {
		return func(from, to time.Time) time.Duration { asked = [2]time.Time{from, to}; return d }
	}
	tests := []struct {
		name    string
		at      time.Time
		noise   func(from, to time.Time) time.Duration
		in      bool
		widened time.Duration
	}{
		{"on time", ms(0), noise(time.Second), true, 0},
		{"late within tol", ms(4), noise(time.Second), true, 0},
		{"late, no measure", ms(10), nil, false, 0},
		{"late, noise short", ms(10), noise(5 * time.Millisecond), false, 5 * time.Millisecond},
		{"late, noise enough", ms(10), noise(6 * time.Millisecond), true, 6 * time.Millisecond},
		{"early", ms(-5), noise(time.Second), false, 0},
	}
	for _, tt := range tests {
		asked = [2]time.Time{}
		in, widened := scripted.Within(tt.at, due, tol, tt.noise)
		if in != tt.in || widened != tt.widened {
			t.Errorf("%s: Within = %v, %v; want %v, %v", tt.name, in, widened, tt.in, tt.widened)
		}
		if widened > 0 && (!asked[0].Equal(ms(-4)) || !asked[1].Equal(tt.at)) {
			t.Errorf("%s: noise asked from %v to %v, want from the earliest due time to the arrival", tt.name, asked[0], asked[1])
		}
	}
}
