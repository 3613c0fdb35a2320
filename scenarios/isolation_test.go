package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

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

// hostNetwork describes the host namespace's interfaces, addresses and
// routes (IPv4 and IPv6), one line each, sorted.
func hostNetwork(t *testing.T) []string {
	t.Helper()
	var lines []string
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		lines = append(lines, fmt.Sprintf("link %s %s mtu %d %v", ifc.Name, ifc.HardwareAddr, ifc.MTU, addrs))
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteList(nil, family)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			lines = append(lines, "route "+r.String())
		}
	}
	slices.Sort(lines)
	return lines
}

// TestLANLeavesHostAlone runs the lan scenario, whose hosts use the blog
// post's addresses: both hosts' interfaces saw the conversation, and the
// host's interfaces, addresses and routes are the same after the run as
// before, and nothing in the host routes to 192.168.0.101 through an
// interface the lab made.
func TestLANLeavesHostAlone(t *testing.T) {
	testenv.NetNS(t)
	before := hostNetwork(t)
	out := t.TempDir()
	results, err := lab.Run(context.Background(), []*lab.Scenario{LAN()}, lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if !results[0].Pass {
		t.Errorf("lan failed:\n%s", results[0].Failure())
	}
	// Both hosts' eth0 saw the conversation.
	checkPoints(t, filepath.Join(out, "lan"), results[0].Segments, 2)
	after := hostNetwork(t)
	if !slices.Equal(before, after) {
		t.Errorf("the host's network changed during the run:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	for _, l := range after {
		if strings.Contains(l, "tcplab-") || strings.Contains(l, lab.LANServerMAC) || strings.Contains(l, lab.LANClientMAC) {
			t.Errorf("the host has a lab interface: %s", l)
		}
	}
}
