package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
)

// TestHostTrafficIsolated sends traffic on the host's loopback, to the very
// port the scenarios use, during a lab run, and finds none of it in the
// lab's captures.
func TestHostTrafficIsolated(t *testing.T) {
	testenv.NetNS(t)
	marker := []byte("tcplab-host-noise")
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", lab.Port))
	if err != nil {
		ln, err = net.Listen("tcp4", "127.0.0.1:0") // the port is taken: any port proves it too
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	wg.Add(2)
	go func() { // the host's server: drain every connection
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	sent := 0
	go func() { // the host's client: a new connection and a write every few ms
		defer wg.Done()
		for ctx.Err() == nil {
			if c, err := net.Dial("tcp4", ln.Addr().String()); err == nil {
				c.Write(marker)
				c.Close()
				sent++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	out := t.TempDir()
	results, err := lab.Run(context.Background(), []*lab.Scenario{Handshake(), HalfClose()}, lab.Config{Out: out})
	cancel()
	ln.Close()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sent < 10 {
		t.Fatalf("only %d host connections were made during the run; the test proves nothing", sent)
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s failed while the host was busy:\n%s", r.Scenario, r.Failure())
		}
		f, err := capture.Open(filepath.Join(out, r.Scenario, "capture.pcapng"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
			if bytes.Contains(p.Data, marker) {
				t.Errorf("%s: frame %d carries the host's traffic", r.Scenario, p.Segment.Frame)
			}
			if p.TCP && p.Annotation.Stream != 0 {
				t.Errorf("%s: frame %d belongs to a second connection", r.Scenario, p.Segment.Frame)
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
