package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// serverClosesFirst is HalfClose's conversation with the roles of the
// closers reversed: the server answers and closes first, then the client.
// Only the tests use it, to prove that the matcher catches the wrong
// teardown order.
func serverClosesFirst() *lab.Scenario {
	sc := HalfClose()
	sc.Name = "server-closes-first"
	sc.Server = func(ctx context.Context, env *lab.Env) error {
		c, _, err := peer.AcceptRequest(ctx, env, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte(peer.Response)); err != nil {
			return err
		}
		return c.Close()
	}
	sc.Client = func(ctx context.Context, env *lab.Env) error {
		c, err := env.Dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		r, err := peer.Exchange(c, peer.GetRequest())
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		return c.Close()
	}
	// Its own expectation: the server's FIN first.
	sc.Steps = func(lab.Options) []expect.Step {
		return append(expect.Handshake(),
			expect.C2S(pshAck), expect.S2C(ack).Optional(), expect.S2C(pshAck),
			expect.C2S(ack).Optional(), expect.S2C(finAck), expect.C2S(ack).Optional(), expect.C2S(finAck), expect.S2C(ack))
	}
	return sc
}

// testOnly lists the scenarios that only the tests run.
func testOnly() []*lab.Scenario {
	scs := []*lab.Scenario{serverClosesFirst(), hang(), offloadLostSYN()}
	for _, c := range endingCases() {
		if strings.HasPrefix(c.sc.Name, "ending-") {
			scs = append(scs, c.sc)
		}
	}
	return scs
}

// TestHalfCloseCatchesWrongOrder runs a conversation whose FIN order is
// reversed, and another scenario's, and checks them against the halfclose
// expectation: both must fail, and the report must name the step and the
// field that differ.
func TestHalfCloseCatchesWrongOrder(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	results, err := lab.Run(context.Background(), []*lab.Scenario{serverClosesFirst(), KeepAlive(), HalfClose()}, lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.Pass {
			t.Fatalf("%s did not record cleanly:\n%s", r.Scenario, r.Failure())
		}
	}
	tests := []struct {
		capture   string
		pass      bool
		step      string
		field     string
		want, got string
	}{
		{capture: "halfclose", pass: true},
		// The server's response comes where the client's FIN should.
		{capture: "server-closes-first", step: "7", field: "dir", want: "C>S", got: "S>C"},
		// The keep-alive probe comes where the client's FIN should.
		{capture: "keepalive", step: "7", field: "dir", want: "C>S", got: "S>C"},
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			v, err := lab.CheckFile(filepath.Join(out, tt.capture, "capture.pcapng"), HalfClose(), lab.Options{}, expect.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if v.Pass != tt.pass {
				t.Fatalf("pass = %v, want %v; mismatches: %+v", v.Pass, tt.pass, v.Mismatches)
			}
			if tt.pass {
				return
			}
			m := v.Mismatches[0]
			d := m.Diffs[0]
			if m.Step.String() != tt.step || d.Field.String() != tt.field || d.Want != tt.want || d.Got != tt.got {
				t.Errorf("mismatch at step %s field %s (%s vs %s), want step %s field %s (%s vs %s)\n%s",
					m.Step, d.Field, d.Want, d.Got, tt.step, tt.field, tt.want, tt.got, m.Error())
			}
			msg := m.Error()
			head := fmt.Sprintf("halfclose step %s: field %s: expected %s vs actual %s", tt.step, tt.field, tt.want, tt.got)
			for _, part := range []string{head, "expected: ", "actual: ", "(frame "} {
				if !strings.Contains(msg, part) {
					t.Errorf("report lacks %q:\n%s", part, msg)
				}
			}
		})
	}
}

// hang is a scenario whose server reads the request and never answers:
// only its timeout ends it.
func hang() *lab.Scenario {
	return &lab.Scenario{
		Name:    "hang",
		Summary: "a server that never answers",
		Timeout: 2 * time.Second,
		Server: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			<-ctx.Done()
			return nil
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = peer.Exchange(c, peer.GetRequest())
			return err
		},
		Steps: func(lab.Options) []expect.Step {
			return append(expect.Handshake(), expect.C2S(pshAck), expect.S2C(pshAck))
		},
	}
}

// TestTimeoutLeavesNothingBehind runs a scenario whose server hangs: it
// fails at its timeout with a clear error, keeps and annotates the capture
// so far, and leaves no scenario process behind.
func TestTimeoutLeavesNothingBehind(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	start := time.Now()
	results, err := lab.Run(context.Background(), []*lab.Scenario{hang()}, lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if r.Pass || !strings.Contains(r.Error, "timed out after") {
		t.Errorf("pass=%v error=%q, want a timeout failure", r.Pass, r.Error)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the run took %v; the timeout is 2s", d)
	}
	if r.Segments < 4 {
		t.Errorf("%d segments kept, want the handshake and the request", r.Segments)
	}
	v, err := lab.CheckFile(filepath.Join(out, "hang", "capture.pcapng"), hang(), lab.Options{}, expect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Pass || v.Mismatches[0].Step != 6 {
		t.Errorf("the kept capture should fail at the missing response (step 6): %+v", v.Mismatches)
	}
	if left := scenarioProcesses(t, out); len(left) > 0 {
		t.Errorf("scenario processes left behind: %v", left)
	}
}

// scenarioProcesses lists the pids of processes that lab.Run started for
// the artifacts directory out and that still run: they carry their orders,
// which name out, in their environment.
func scenarioProcesses(t *testing.T, out string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // not a process, or gone
		}
		if bytes.Contains(env, []byte("TCPLAB_LAB_CHILD=")) && bytes.Contains(env, []byte(out)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
