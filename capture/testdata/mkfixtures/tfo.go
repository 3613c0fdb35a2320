package main

// The TCP Fast Open fixture (RFC 7413), the kernel's own:
//
//   - tfo: net.ipv4.tcp_fastopen=3 in the fixture's namespace, a listener
//     with TCP_FASTOPEN, and a client with TCP_FASTOPEN_CONNECT. The first
//     connection's SYN asks for a cookie and the SYN/ACK brings one; the
//     second connection's SYN carries the cookie and the request, and the
//     SYN/ACK acknowledges the data with the SYN. Each is an echo of one
//     line, then the client closes.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// TCP_FASTOPEN (a listener's queue of Fast Open requests) and
// TCP_FASTOPEN_CONNECT (Linux 4.11: connect returns at once and the first
// write goes out in the SYN), which package syscall lacks.
const (
	tcpFastOpen        = 23
	tcpFastOpenConnect = 30
)

func init() {
	fixtures = append(fixtures,
		fixture{name: "tfo", taps: []tap{lo("tfo.pcap")}, setup: setupTFO, run: runTFO},
	)
}

// setupTFO turns Fast Open on for clients and servers in the namespace.
func setupTFO() error {
	return os.WriteFile("/proc/sys/net/ipv4/tcp_fastopen", []byte("3\n"), 0o644)
}

func runTFO() error {
	ln, err := listen("tcp4", syscall.IPPROTO_TCP, tcpFastOpen, 16)
	if err != nil {
		return err
	}
	defer ln.Close()
	for i, line := range []string{"ping tfo cookie\n", "ping tfo data\n"} {
		errc := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			tc := c.(*net.TCPConn)
			r := bufio.NewReader(tc)
			got, err := r.ReadString('\n')
			if err == nil {
				_, err = tc.Write([]byte(got))
			}
			if err == nil {
				err = drainClose(tc)
			}
			errc <- err
		}()
		c, err := dial("tcp4", clientPort+i, serverPort, syscall.IPPROTO_TCP, tcpFastOpenConnect, 1)
		if err != nil {
			return err
		}
		if _, err := c.Write([]byte(line)); err != nil {
			return err
		}
		echo, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || echo != line {
			return fmt.Errorf("tfo connection %d: echo %q, %v", i, echo, err)
		}
		time.Sleep(settle)
		c.Close()
		if err := wait(errc); err != nil {
			return err
		}
		time.Sleep(settle)
	}
	return nil
}
