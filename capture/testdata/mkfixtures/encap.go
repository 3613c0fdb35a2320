package main

// Live captures of encapsulated TCP, for the encapsulations the kernel of a
// test machine can make without modules that containers rarely have:
//
//   - vxlan-live: two network namespaces joined by a veth pair, each with a
//     VXLAN device (VNI 42, UDP 4789) over it; the client in the fixture's
//     namespace talks to the server in the other one across the VXLAN, and
//     tcpdump captures the outer packets on the veth.
//   - nflog-live: nftables logs every TCP packet of the output hook to log
//     group 5, and tcpdump captures the group (LINKTYPE_NFLOG).
//
// The other encapsulations (VLAN, MPLS, PPPoE, GRE, ERSPAN, Geneve, GTP-U,
// IP in IP, PPP, FDDI, IPoIB, 802.11 with radiotap or PPI, Aruba GRE,
// CAPWAP, Cisco HDLC, ARCNET, FabricPath, E-Tag, IPsec AH, IPComp) need
// kernel support these machines lack (their kernels have no xfrm AH or
// IPComp either); the capture tests build those fixtures with gopacket
// (TestEncapFixtures).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	fixtures = append(fixtures,
		fixture{name: "vxlan-live", taps: []tap{{file: "vxlan-live.pcap", args: []string{"-i", "vxa", "-B", "32768"}, filter: "udp port 4789"}},
			setup: setupVXLAN, run: runVXLAN, teardown: stopVXLANPeer},
		fixture{name: "nflog-live", taps: []tap{{file: "nflog-live.pcap", args: []string{"-i", "nflog:5"}, filter: "-"}},
			setup: setupNFLOG, run: runSmallData},
	)
}

// Addresses of the VXLAN fixture: underlay on the veth, overlay on VXLAN.
const (
	vxUnderA, vxUnderB = "192.168.77.1", "192.168.77.2"
	vxOverA, vxOverB   = "10.77.0.1", "10.77.0.2"
)

// vxPeer is a process that holds the server's network namespace.
var vxPeer *exec.Cmd

// setupVXLAN makes the server's namespace, moves one end of a veth pair
// into it and puts a VXLAN device over each end. Segmentation offloads are
// off, so that tcpdump sees the packets as they would be on the wire.
func setupVXLAN() error {
	vxPeer = exec.Command("unshare", "--net", "--", "sleep", "600")
	if err := vxPeer.Start(); err != nil {
		return err
	}
	pid := vxPeer.Process.Pid
	// unshare has to have made the namespace before the veth moves.
	for i := 0; ; i++ {
		mine, _ := os.Readlink("/proc/self/ns/net")
		theirs, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
		if err == nil && theirs != mine {
			break
		}
		if i == 100 {
			return fmt.Errorf("the peer namespace did not appear")
		}
		time.Sleep(10 * time.Millisecond)
	}
	noGSO := []string{"mtu", "1500", "gso_max_size", "1500", "gso_max_segs", "1"}
	steps := [][]string{
		{"link", "add", "vxa", "type", "veth", "peer", "name", "vxb"},
		{"link", "set", "vxb", "netns", strconv.Itoa(pid)},
		append([]string{"link", "set", "vxa", "up"}, noGSO...),
		{"addr", "add", vxUnderA + "/24", "dev", "vxa"},
		{"link", "add", "vx0", "type", "vxlan", "id", "42", "local", vxUnderA, "remote", vxUnderB, "dstport", "4789", "dev", "vxa"},
		{"link", "set", "vx0", "up", "gso_max_size", "1400", "gso_max_segs", "1"},
		{"addr", "add", vxOverA + "/24", "dev", "vx0"},
	}
	for _, s := range steps {
		if err := sh("ip", s...); err != nil {
			return err
		}
	}
	return inNetns(pid, func() error {
		for _, s := range [][]string{
			{"link", "set", "lo", "up"},
			append([]string{"link", "set", "vxb", "up"}, noGSO...),
			{"addr", "add", vxUnderB + "/24", "dev", "vxb"},
			{"link", "add", "vx0", "type", "vxlan", "id", "42", "local", vxUnderB, "remote", vxUnderA, "dstport", "4789", "dev", "vxb"},
			{"link", "set", "vx0", "up", "gso_max_size", "1400", "gso_max_segs", "1"},
			{"addr", "add", vxOverB + "/24", "dev", "vx0"},
		} {
			if err := sh("ip", s...); err != nil {
				return err
			}
		}
		return nil
	})
}

// inNetns runs fn on a thread in the network namespace of process pid:
// sockets fn opens and commands it starts live there.
func inNetns(pid int, fn func() error) error {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns: %v", err)
	}
	fnErr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so it ends with this goroutine
		// instead of serving others in the wrong namespace.
		return fmt.Errorf("setns back: %v", err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// runVXLAN: the client asks for a 40 KB body across the VXLAN; the server
// sends it and waits for the client to close first.
func runVXLAN() error {
	var ln net.Listener
	if err := inNetns(vxPeer.Process.Pid, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(vxOverB, strconv.Itoa(serverPort)))
		return err
	}); err != nil {
		return err
	}
	body := strings.Repeat("tcplab over vxlan\n", 40000/18)
	errc := serve(ln, func(c *net.TCPConn) error {
		r := bufio.NewReader(c)
		if _, err := readHead(r); err != nil {
			return err
		}
		resp := strings.Replace(httpResponse, "Content-Length: 5", "Content-Length: "+strconv.Itoa(len(body)), 1)
		if _, err := io.WriteString(c, strings.TrimSuffix(resp, "great")+body); err != nil {
			return err
		}
		return drainClose(c)
	})
	laddr := &net.TCPAddr{IP: net.ParseIP(vxOverA), Port: clientPort}
	d := net.Dialer{LocalAddr: laddr, KeepAlive: -1, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp4", net.JoinHostPort(vxOverB, strconv.Itoa(serverPort)))
	if err != nil {
		return err
	}
	c := conn.(*net.TCPConn)
	time.Sleep(settle)
	if _, err := io.WriteString(c, httpRequest(net.JoinHostPort(vxOverB, strconv.Itoa(serverPort)))); err != nil {
		return err
	}
	got, err := readResponse(bufio.NewReader(c))
	if err != nil {
		return err
	}
	if got != body {
		return fmt.Errorf("body of %d bytes, want %d", len(got), len(body))
	}
	time.Sleep(settle)
	c.Close()
	return wait(errc)
}

// stopVXLANPeer ends the server's namespace, once tcpdump is done with
// the veth that goes with it.
func stopVXLANPeer() {
	if vxPeer != nil {
		vxPeer.Process.Kill()
		vxPeer.Wait()
	}
}

// setupNFLOG logs every TCP packet leaving through the output hook (on lo,
// each packet once) to NFLOG group 5.
func setupNFLOG() error {
	return shIn(`table inet nflog {
	chain out {
		type filter hook output priority 0;
		meta l4proto tcp log group 5
	}
}
`, "nft", "-f", "-")
}
