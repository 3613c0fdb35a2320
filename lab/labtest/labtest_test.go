package labtest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/labtest"
)

// greeter is a scenario written only with the public API: the server
// greets and closes first; abort makes it close with a RST instead.
func greeter(abort bool) *lab.Scenario {
	return &lab.Scenario{
		Name:    "greeter",
		Summary: "the server says hello and closes first",
		Server: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := io.WriteString(c, "hello\n"); err != nil {
				return err
			}
			if abort {
				c.SetLinger(0)
				return c.Close()
			}
			c.CloseWrite()
			_, err = io.Copy(io.Discard, c)
			return err
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			io.Copy(io.Discard, c) // until the server's FIN, or its RST
			return c.Close()
		},
		Steps: func(lab.Options) []expect.Step {
			steps := append(expect.Handshake(),
				expect.S2C(expect.PSH|expect.ACK).SeqNum(1).Length(6),
				// Linux acknowledges the first data at once (quick ACK
				// mode) or rides the ACK on the client's FIN.
				expect.C2S(expect.ACK).Length(0).Optional())
			return append(steps, expect.ServerCloses()...)
		},
	}
}

func TestRunPasses(t *testing.T) {
	r := labtest.Run(t, greeter(false))
	if !r.Pass || r.Segments < 8 {
		t.Errorf("result %+v, want a pass with the handshake, the data and the close", r)
	}
}

// recorder is a testing.TB that keeps what the test would report.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestRunFailsWithTheDiff: a server that resets instead of closing fails
// the test, and the report names the step, the fields that differ, and
// where the artifacts are.
func TestRunFailsWithTheDiff(t *testing.T) {
	rec := &recorder{TB: t}
	r := labtest.Run(rec, greeter(true))
	if lab.InChild() {
		return
	}
	if r.Pass || len(rec.errors) != 1 {
		t.Fatalf("a RST passed for a FIN: pass %v, errors %q", r.Pass, rec.errors)
	}
	// A failure keeps its artifacts for the user; this test's are removed.
	if _, err := os.Stat(filepath.Join(r.Dir, "capture.pcapng")); err != nil {
		t.Errorf("the failure's artifacts are not kept: %v", err)
	}
	out := filepath.Dir(r.Dir)
	if !strings.HasPrefix(filepath.Base(out), "tcplab-TestRunFailsWithTheDiff-") {
		t.Fatalf("artifacts in %s, not in the test's own temporary directory", out)
	}
	t.Cleanup(func() { os.RemoveAll(out) })
	msg := rec.errors[0]
	for _, want := range []string{
		"scenario greeter failed",
		"greeter step 7: field flags: expected FIN,ACK vs actual RST,ACK",
		"expected: S>C FIN,ACK",
		"actual:   S>C RST,ACK",
		"artifacts: ",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
}

// TestServerListensAlone: a server that listens with net.Listen instead of
// env.Listen fails at once with what to call, not after the timeout with
// "did not listen".
func TestServerListensAlone(t *testing.T) {
	sc := greeter(false)
	sc.Server = func(ctx context.Context, env *lab.Env) error {
		ln, err := net.Listen("tcp", env.Addr)
		if err != nil {
			return err
		}
		defer ln.Close()
		<-ctx.Done()
		return nil
	}
	rec := &recorder{TB: t}
	start := time.Now()
	r := labtest.Run(rec, sc)
	if lab.InChild() {
		return
	}
	if r.Pass || len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "not through env.Listen") {
		t.Fatalf("pass %v, errors %q; want a failure naming env.Listen", r.Pass, rec.errors)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to say so, want a few seconds at most", d)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(r.Dir)) })
}
