package annotatecmd

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/capture/live"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"
)

var realCapture = flag.String("realcapture", "", "TestWriteRealCapture writes the real-shape benchmark capture to `FILE`")

// The real-shape capture (make bench): real kernel TCP on a namespace's
// loopback, captured with the bulk scenario's snap length, as a capture
// of a busy host is usually taken. Its counts are fixed, so every run
// makes a file of about the same shape (some 240k frames, 25 MB); only
// the kernel's segment sizes vary a little.
const (
	realBulk       = 3000      // bulk transfers: a POST of realBulkBytes, a short answer
	realBulkBytes  = 768 << 10 // each bulk transfer's body
	realShort      = 12000     // short connections: a 100-byte request, a 300-byte answer
	realConcurrent = 8         // connections open at once, of each kind
	realSnaplen    = 128       // as the bulk scenario's capture
	realTimeout    = 3 * time.Minute
)

// TestWriteRealCapture writes the real-shape benchmark capture to the file
// given with -realcapture, for timing annotate against tshark and tcpdump
// on a capture of real traffic (make bench). It is a generator, not a
// test: without the flag it skips. The traffic runs in a network
// namespace of its own (a child of this test binary), so nothing is
// routed from the host; the capture fails rather than keep a file the
// kernel dropped frames from.
func TestWriteRealCapture(t *testing.T) {
	if *realCapture == "" {
		t.Skip("skipping; -realcapture=FILE writes the real-shape benchmark capture")
	}
	if !netns.InChild() {
		testenv.NetNS(t)
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), realTimeout)
		defer cancel()
		path, err := filepath.Abs(*realCapture)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := netns.Command(ctx, exe, "-test.run=^TestWriteRealCapture$", "-test.count=1", "-test.v", "-realcapture", path)
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in a network namespace (%v):\n%s", err, out)
		}
		t.Logf("in a network namespace:\n%s", out)
		return
	}
	// In the namespace (testenv.Main brought lo up).
	tmp := *realCapture + ".tmp"
	frames, err := writeRealCapture(tmp)
	if err != nil {
		os.Remove(tmp)
		t.Fatal(err)
	}
	if err := os.Rename(tmp, *realCapture); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d frames: %d bulk transfers of %d bytes, %d short connections", *realCapture, frames, realBulk, realBulkBytes, realShort)
}

// writeRealCapture runs the real-shape traffic on lo while capturing it to
// a pcap file at path, and returns the number of frames written.
func writeRealCapture(path string) (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// A ring that holds the whole capture: the reader keeps up on an idle
	// machine, and on a busy one nothing is lost while it waits for CPU.
	lc, err := live.Open(live.Config{Interface: "lo", Snaplen: realSnaplen, Batch: true, BufferSize: 256 << 20,
		Filter: fmt.Sprintf("tcp port %d", port)})
	if err != nil {
		return 0, err
	}
	defer lc.Close()
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriter(bw) // microseconds, as tcpdump -w writes
	if err := w.WriteFileHeader(realSnaplen, lc.LinkType()); err != nil {
		return 0, err
	}

	// The reader writes frames as they come, until the traffic is over
	// and the ring has been quiet for several block timeouts.
	done := make(chan struct{})
	var frames int
	var readErr error
	var reading sync.WaitGroup
	reading.Add(1)
	go func() {
		defer reading.Done()
		quiet := 0
		for {
			data, ci, err := lc.ReadPacketData()
			if errors.Is(err, capture.ErrTimeout) {
				select {
				case <-done:
					if quiet++; quiet >= 5 {
						return
					}
				default:
				}
				continue
			}
			if err != nil {
				readErr = err
				return
			}
			quiet = 0
			if err := w.WritePacket(ci, data); err != nil {
				readErr = err
				return
			}
			frames++
		}
	}()

	trafficErr := realTraffic(ln)
	close(done)
	reading.Wait()
	if trafficErr != nil {
		return 0, trafficErr
	}
	if readErr != nil {
		return 0, readErr
	}
	st, err := lc.Stats()
	if err != nil {
		return 0, err
	}
	if st.Dropped > 0 {
		return 0, fmt.Errorf("the kernel dropped %d frames of the capture; run it again on a quieter machine", st.Dropped)
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return frames, f.Close()
}

// realTraffic serves ln and runs the clients: realBulk bulk transfers and
// realShort short connections, realConcurrent of each kind at once. The
// server closes each connection once it has answered; the client closes
// on the server's FIN.
func realTraffic(ln net.Listener) error {
	ctx, cancel := context.WithTimeout(context.Background(), realTimeout-30*time.Second)
	defer cancel()
	var served sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				realServe(c)
			}()
		}
	}()
	var clients sync.WaitGroup
	errs := make(chan error, 2*realConcurrent)
	for _, kind := range []struct{ n, size int }{{realBulk, realBulkBytes}, {realShort, 100}} {
		for i := range realConcurrent {
			n := kind.n / realConcurrent
			if i < kind.n%realConcurrent {
				n++
			}
			clients.Add(1)
			go func() {
				defer clients.Done()
				errs <- realClients(ctx, ln.Addr().String(), n, kind.size)
			}()
		}
	}
	clients.Wait()
	served.Wait()
	close(errs)
	var err error
	for e := range errs {
		err = errors.Join(err, e)
	}
	return err
}

// realClients makes n connections to addr one after another, each sending
// a 4-byte length, then that many bytes, and reading the answer to EOF.
func realClients(ctx context.Context, addr string, n, size int) error {
	body := make([]byte, 4+size)
	body[0], body[1], body[2], body[3] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
	var d net.Dialer
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		if deadline, ok := ctx.Deadline(); ok {
			c.SetDeadline(deadline)
		}
		if _, err := c.Write(body); err != nil {
			c.Close()
			return fmt.Errorf("send %d bytes: %w", size, err)
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			c.Close()
			return fmt.Errorf("read the answer: %w", err)
		}
		if err := c.Close(); err != nil {
			return err
		}
	}
	return nil
}

// realServe reads one request (a 4-byte length, then the body), answers
// with 300 bytes and closes: the server closes first, as an HTTP/1.0
// server does, and the client's close follows its EOF.
func realServe(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReaderSize(c, 64<<10)
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return
	}
	n := int64(head[0])<<24 | int64(head[1])<<16 | int64(head[2])<<8 | int64(head[3])
	if _, err := io.CopyN(io.Discard, r, n); err != nil {
		return
	}
	c.Write(make([]byte, 300))
}
