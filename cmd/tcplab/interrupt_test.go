package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
)

// TestInterrupt sends SIGINT to `tcplab run keepalive` while the scenario
// waits for its keep-alive timer: the run exits with status 130, marks the
// scenario interrupted in result.json, and leaves a capture that tshark
// reads, with what was captured until then.
func TestInterrupt(t *testing.T) {
	testenv.NetNS(t)
	tshark := testenv.Tool(t, "tshark")
	out := t.TempDir()
	cmd := exec.Command(os.Args[0], "run", "keepalive", "-out", out)
	cmd.Env = append(os.Environ(), "TCPLAB_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the scenario says it waits on its timer: by then the
	// handshake and the request are on the wire.
	sc := bufio.NewScanner(stderr)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), "keep-alive timer") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("tcplab did not stop after SIGINT; it said %q", seen)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("exit: %v, want status 130", err)
	}

	dir := filepath.Join(out, "keepalive")
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r lab.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Interrupted || r.Pass {
		t.Errorf("result.json: interrupted=%v pass=%v, want interrupted and not passed", r.Interrupted, r.Pass)
	}
	if r.Segments < 4 {
		t.Errorf("only %d segments kept; the handshake and the request were on the wire", r.Segments)
	}
	fields, err := exec.Command(tshark, "-r", filepath.Join(dir, "capture.pcapng"), "-T", "fields", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark cannot read the interrupted capture: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(fields)), "\n")
	if len(lines) != r.Frames {
		t.Errorf("tshark read %d frames, result.json says %d", len(lines), r.Frames)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "tcplab: ") {
			t.Errorf("frame without its comment: %q", l)
		}
	}
}
