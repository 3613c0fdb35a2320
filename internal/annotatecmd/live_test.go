package annotatecmd

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
