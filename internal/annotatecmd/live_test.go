package annotatecmd

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
)

// syncBuffer is a bytes.Buffer that two goroutines may use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAnnotateLive annotates live traffic on lo, in a network namespace
// of its own: a real connection (request, echo, close) through the
// kernel's TCP. Its lines appear while the capture still runs; stopped
// (as by Ctrl-C), annotate prints the connection's verdict, leaves a whole
// -o file with every packet, and says the kernel's counts on stderr.
func TestAnnotateLive(t *testing.T) {
	if !testenv.InNamespace(t, 2*time.Minute) {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c) // echo until the client's FIN
		served <- err
	}()

	stop, ready := make(chan struct{}), make(chan struct{})
	var out, stderr syncBuffer
	pcapng := filepath.Join(t.TempDir(), "live.pcapng")
	f := flags{liveIface: "lo", stop: stop, stderr: &stderr, out: pcapng, stream: -1, iface: -1, ready: func() { close(ready) }}
	done := make(chan error, 1)
	go func() { done <- annotate("-i lo", "tcp port "+strconv.Itoa(port), nil, &f, &out) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("annotate -i lo: %v", err)
	}

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "hello\n" {
		t.Fatalf("echo: %q, %v", b, err)
	}
	c.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	// The last ACK's line shows while the capture still runs.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "TIME_WAIT/CLOSED") {
		if time.Now().After(deadline) {
			t.Fatalf("no line of the last ACK after 10 s; so far:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("annotate still running 10 s after it was stopped")
	}
	text := out.String()
	lines := strings.Count(text[:strings.Index(text, "\n\n")+1], "\n")
	if lines < 8 || !strings.Contains(text, " SYN ") || !strings.Contains(text, "conn_state SF,") ||
		!strings.Contains(text, "history ShAD") || !strings.Contains(text, "the client closed first") {
		t.Errorf("annotate -i lo printed:\n%s", text)
	}
	if !strings.Contains(stderr.String(), "captured on lo") || !strings.Contains(stderr.String(), "dropped by kernel") {
		t.Errorf("stderr %q: want the kernel's counts", stderr.String())
	}
	src, err := capture.Open(pcapng)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	counts, err := capture.Walk(src, capture.NewAnnotator(), func(*capture.Packet) error { return nil })
	if err != nil || counts.TCP != lines {
		t.Errorf("-o file: %d TCP packets (%v), want the %d annotated", counts.TCP, err, lines)
	}
}

// unprivilegedEnv marks the copy of the test binary that
// TestAnnotateLiveNeedsPrivilege runs without privileges.
const unprivilegedEnv = "TCPLAB_ANNOTATE_UNPRIVILEGED"

// TestAnnotateLiveNeedsPrivilege: without the capture privilege, annotate
// -i says in one line that it needs CAP_NET_RAW, and captures nothing. As
// root, the test runs a copy of its binary as nobody.
func TestAnnotateLiveNeedsPrivilege(t *testing.T) {
	if os.Getenv(unprivilegedEnv) == "1" || os.Geteuid() != 0 {
		err := Run("tcplab", []string{"annotate", "-i", "lo"}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "CAP_NET_RAW") || !strings.Contains(err.Error(), "-i lo") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("annotate -i lo without privileges: %v; want one line saying CAP_NET_RAW is needed", err)
		}
		t.Logf("annotate -i lo: %v", err)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A directory nobody can reach: the test binary's own is root's only.
	dir, err := os.MkdirTemp("", "tcplab-unprivileged-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "annotatecmd.test")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestAnnotateLiveNeedsPrivilege$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestAnnotateLiveNeedsPrivilege") {
		t.Fatalf("as nobody (%v):\n%s", err, out)
	}
	t.Logf("as nobody:\n%s", out)
}
