package checksrv

import (
	"bufio"
	"io"
	"net"
	"testing"
)

// TestServerClosesFirst: a client sends a line, gets it back, sees the
// server's FIN and closes too.
func TestServerClosesFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("answer %q, %v; want hello", line, err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v, want the server's FIN (EOF)", err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
