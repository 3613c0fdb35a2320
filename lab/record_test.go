package lab

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/netns"
)

// TestHighRateTimeout holds the two bounds on a HighRate capture's
// block timeout: long enough that the unread ring outlasts a transfer
// slowed by a busy machine (20 ms retired 256 blocks in 5 s and dropped
// frames), short enough that the last block is handed over before the
// lab calls the wire quiet.
func TestHighRateTimeout(t *testing.T) {
	if highRateTimeout < 100*time.Millisecond {
		t.Errorf("highRateTimeout = %v: a 64 MiB ring of half-empty blocks fills within %v of a slow transfer", highRateTimeout, 256*highRateTimeout)
	}
	if 2*highRateTimeout > quiet {
		t.Errorf("highRateTimeout = %v, quiet = %v: the last block may come after the wire was called quiet", highRateTimeout, quiet)
	}
}

// closeAfter is a scenario of one connection, opened and closed at once,
// that must end within timeout.
func closeAfter(timeout time.Duration) *Scenario {
	return &Scenario{
		Name:    "quick",
		Timeout: timeout,
		Server: func(ctx context.Context, env *Env) error {
			ln, err := env.Listen(ctx, nil)
			if err != nil {
				return err
			}
			defer ln.Close()
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = io.Copy(io.Discard, c)
			return err
		},
		Client: func(ctx context.Context, env *Env) error {
			c, err := env.Dial(ctx)
			if err != nil {
				return err
			}
			return c.Close()
		},
		Steps: func(Options) []expect.Step { return append(expect.Handshake(), expect.ClientCloses()...) },
	}
}

// TestSlowCloseIsNoTimeout: once the wire shows the conversation over,
// the time the kernel takes to close the captures (a packet socket's
// ring waits for RCU grace periods, which a loaded machine made longer
// than a scenario's whole timeout) does not fail the scenario as a
// conversation that did not end; a conversation that does not end in
// time still fails.
func TestSlowCloseIsNoTimeout(t *testing.T) {
	if !testenv.InNamespace(t, time.Minute) {
		return
	}
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "a run without its own namespace captures on lo as root", "run as root")
		return
	}
	if err := netns.SetupLoopback(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		timeout time.Duration
		pause   time.Duration
		pass    bool
	}{
		{"closing outlasts the timeout", 2 * time.Second, 2500 * time.Millisecond, true},
		{"the conversation outlasts the timeout", 10 * time.Millisecond, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := Options{afterConversation: func() { time.Sleep(tt.pause) }}
			results, err := Run(context.Background(), []*Scenario{closeAfter(tt.timeout)}, Config{Out: t.TempDir(), NoSandbox: true, Options: opt})
			if err != nil {
				t.Fatal(err)
			}
			r := results[0]
			timedOut := strings.Contains(r.Error, "timed out after")
			if r.Pass != tt.pass || timedOut == tt.pass {
				t.Errorf("pass %v, error %q; want pass %v", r.Pass, r.Error, tt.pass)
			}
		})
	}
}
