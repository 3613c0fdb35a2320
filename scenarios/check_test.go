package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"tcplab/internal/testenv"
	"tcplab/lab"
)

// serverClosesFirst is HalfClose's conversation with the roles of the
// closers reversed: the server answers and closes first, then the client.
// Only the tests use it, to prove that the matcher catches the wrong
// teardown order.
func serverClosesFirst() *lab.Scenario {
	sc := HalfClose()
	sc.Name = "server-closes-first"
	sc.Server = func(ctx context.Context, env *lab.Env) error {
		ln, err := env.Listen(ctx, nil)
		if err != nil {
			return err
		}
		c, err := acceptOne(ctx, ln)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := readRequest(bufio.NewReader(c)); err != nil {
			return err
		}
		if _, err := c.Write([]byte(response)); err != nil {
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
		if _, err := c.Write(getRequest()); err != nil {
			return err
		}
		r := bufio.NewReader(c)
		if err := readResponse(r); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		return c.Close()
	}
	// Its own expectation: the server's FIN first.
	sc.Steps = func(lab.Options) []lab.Step {
		return append(handshake(),
			lab.C2S(pshAck), lab.S2C(ack).Optional(), lab.S2C(pshAck),
			lab.C2S(ack).Optional(), lab.S2C(finAck), lab.C2S(ack).Optional(), lab.C2S(finAck), lab.S2C(ack))
	}
	return sc
}

// testOnly lists the scenarios that only the tests run.
func testOnly() []*lab.Scenario { return []*lab.Scenario{serverClosesFirst()} }

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
			v, err := lab.CheckFile(filepath.Join(out, tt.capture, "capture.pcapng"), HalfClose(), lab.Options{}, lab.MatchOptions{})
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
			if m.Step != tt.step || m.Field != tt.field || m.Want != tt.want || m.Got != tt.got {
				t.Errorf("mismatch at step %s field %s (%s vs %s), want step %s field %s (%s vs %s)\n%s",
					m.Step, m.Field, m.Want, m.Got, tt.step, tt.field, tt.want, tt.got, m.Error())
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
