package netns_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"
)

// childLAN joins this namespace (the server, 192.168.0.101) and a new
// client host (192.168.0.2) by a LAN, connects from the client host over
// IPv4 and IPv6, and reports what each side sees: addresses, the MSS, the
// client host's interfaces and offloads.
func childLAN() error {
	if err := netns.SetupLoopback(); err != nil {
		return err
	}
	client, err := netns.NewHost("client")
	if err != nil {
		return err
	}
	defer client.Close()
	lan := netns.LAN{
		A: netns.LANEnd{MAC: net.HardwareAddr{2, 0, 0, 0, 1, 1},
			Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.0.101/24"), netip.MustParsePrefix("fd00::101/64")}},
		B: netns.LANEnd{Host: client, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
			Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.0.2/24"), netip.MustParsePrefix("fd00::2/64")}},
	}
	if err := lan.Join(); err != nil {
		return err
	}
	for _, server := range []string{"192.168.0.101:8000", "[fd00::101]:8000"} {
		ln, err := net.Listen("tcp", server)
		if err != nil {
			return err
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				fmt.Printf("server %s accepted %s\n", server, c.RemoteAddr())
				io.Copy(c, c)
				c.Close()
			}
		}()
		var conn net.Conn
		if err := client.Do(func() error {
			var err error
			conn, err = net.DialTimeout("tcp", server, 5*time.Second)
			return err
		}); err != nil {
			ln.Close()
			return fmt.Errorf("dial %s from the client host: %w", server, err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		msg := strings.Repeat("x", 4000) // more than one segment
		if _, err := conn.Write([]byte(msg)); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil {
			return err
		}
		raw, _ := conn.(*net.TCPConn).SyscallConn()
		var mss int
		raw.Control(func(fd uintptr) { mss, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) })
		fmt.Printf("client %s -> %s echo %d mss %d\n", conn.LocalAddr(), server, len(got), mss)
		conn.Close()
		ln.Close()
	}
	return client.Do(func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, ifc := range ifs {
			fmt.Printf("client-host %s mtu %d %s up=%v\n", ifc.Name, ifc.MTU, ifc.HardwareAddr, ifc.Flags&net.FlagUp != 0)
		}
		return nil
	})
}

// TestLAN: two hosts on one LAN, as the blog post's client and server
// were: the client host's connection arrives from 192.168.0.2 over eth0
// (MTU 1500, its own MAC), the MSS is 1460 less the timestamps option, and
// IPv6 works at once (no duplicate address detection wait).
func TestLAN(t *testing.T) {
	testenv.NetNS(t)
	lines := runSelf(t, "lan")
	for _, want := range []string{
		"server 192.168.0.101:8000 accepted 192.168.0.2:",
		"client 192.168.0.2:",
		"-> 192.168.0.101:8000 echo 4000 mss 1448",
		"server [fd00::101]:8000 accepted [fd00::2]:",
		"-> [fd00::101]:8000 echo 4000 mss 1428",
		"client-host eth0 mtu 1500 02:00:00:00:00:02 up=true",
		"client-host lo mtu 65536  up=true",
	} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("no line with %q in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}
