package scripted_test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/scripted"
)

// The live tests run again, each alone, in a private network namespace
// (testenv.InNamespace), where the peer's device and the kernel's sockets
// live; the host's namespace sees none of it.
func TestMain(m *testing.M) { testenv.Main(m) }

// serverPort is where the kernel's listener waits.
const serverPort = 8000

// start opens a scripted peer in the test's namespace, writing its frames
// to a pcapng in the test's temporary directory (or in $TCPLAB_ARTIFACTS,
// to keep it). When the test ends the peer is closed and the pcapng read
// back with package capture: every frame a TCP segment between the two
// addresses, commented as scripted or expected, in step order.
func start(t *testing.T) *scripted.Peer {
	t.Helper()
	return startWith(t, scripted.Config{})
}

// measured is cfg with a noise meter of the test's (Config.Noise), unless
// cfg has one: a timed expectation allows what the machine's load delays,
// as tcplab pkt -tolerance auto does, for these tests run beside others
// (make test runs packages at once; the soak adds two busy loops). A
// kernel segment that is late without the machine being as late still
// fails.
func measured(t *testing.T, cfg scripted.Config) scripted.Config {
	if cfg.Noise == nil {
		m := scripted.StartNoiseMeter()
		t.Cleanup(m.Stop)
		cfg.Noise = m.Noise()
	}
	return cfg
}

// startWith is start with cfg (but its Pcap): with cfg.Veth the peer
// stands behind a veth pair, as it does without root here.
func startWith(t *testing.T, cfg scripted.Config) *scripted.Peer {
	t.Helper()
	if !cfg.Veth {
		needTUN(t)
	}
	dir := os.Getenv("TCPLAB_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	name := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".pcapng")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pcap = f
	p, err := scripted.Open(measured(t, cfg))
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close peer: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Errorf("close pcapng: %v", err)
		}
		if !t.Failed() {
			checkPcap(t, name, p)
		}
	})
	return p
}

// needTUN skips the test (fails it in CI) when this process may not
// create TUN devices: /dev/net/tun is root's, even in a user namespace.
func needTUN(t *testing.T) {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		testenv.SkipOrFail(t, "cannot open /dev/net/tun: "+err.Error(), "run as root, with the tun module")
		return
	}
	unix.Close(fd)
}

// checkPcap reads the peer's pcapng back: with capture.Open and its
// decoder, every frame must be a TCP segment between the kernel and the
// script; with its comments, each must say "scripted: step N" or
// "expected: step N", N growing.
func checkPcap(t *testing.T, name string, p *scripted.Peer) {
	t.Helper()
	f, err := capture.Open(name)
	if err != nil {
		t.Fatalf("read the pcapng back: %v", err)
	}
	defer f.Close()
	dec, err := capture.NewDecoder(f.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for {
		data, _, err := f.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", name, frames+1, err)
		}
		frames++
		var seg capture.Segment
		if !dec.Decode(data, &seg) {
			// The script's ICMP messages are the only other frames.
			if !isICMP(data) {
				t.Errorf("%s: frame %d is neither a TCP segment nor the script's ICMP message", name, frames)
			}
			continue
		}
		if a, b := seg.Src.Addr(), seg.Dst.Addr(); !(a == p.Addr() && b == p.KernelAddr() || a == p.KernelAddr() && b == p.Addr()) {
			t.Errorf("%s: frame %d: %v > %v, not between the script and the kernel", name, frames, seg.Src, seg.Dst)
		}
	}
	comments := pcapComments(t, name)
	if len(comments) != frames || frames == 0 {
		t.Fatalf("%s: %d frames, %d comments; want as many, more than 0", name, frames, len(comments))
	}
	last, teardown := 0, 0
	for i, c := range comments {
		// What the kernel sends as the test's sockets close, after the
		// script's last step, no expectation takes.
		if c == "unexpected: taken by no expectation" {
			teardown++
			continue
		}
		if teardown > 0 {
			t.Errorf("%s: frame %d: comment %q after frames no expectation took", name, i+1, c)
		}
		kind, rest, _ := strings.Cut(c, ": step ")
		var step int
		digits, _, _ := strings.Cut(rest, ":")
		for _, r := range digits {
			step = step*10 + int(r-'0')
		}
		if (kind != "scripted" && kind != "expected") || step <= last {
			t.Errorf("%s: frame %d: comment %q; want scripted or expected: step N, N above %d", name, i+1, c, last)
		}
		last = step
	}
	t.Logf("%s: %d frames, read back and commented (%d of the sockets' teardown)", name, frames, teardown)
}

// pcapComments returns each frame's comment.
func pcapComments(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Errorf("%s: link type %v, want raw IP", name, r.LinkType())
	}
	var out []string
	for {
		_, _, opts, err := r.ReadPacketDataWithOptions()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(opts.Comments, "; "))
	}
}

// isICMP reports whether IP frame b carries ICMP or ICMPv6.
func isICMP(b []byte) bool {
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		return b[9] == 1
	case len(b) >= 40 && b[0]>>4 == 6:
		return b[6] == 58
	}
	return false
}

// listen starts the kernel's listener on the peer's kernel address.
func listen(t *testing.T, p *scripted.Peer) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: p.KernelAddr().AsSlice(), Port: serverPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// accept returns the listener's next connection, or fails within a
// second.
func accept(t *testing.T, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(time.Second))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// handshake makes a connection with the kernel as the server: the
// script's SYN with opts, the kernel's SYN/ACK, the script's ACK with
// window win; it returns the script's end and the kernel's accepted
// socket (RFC 9293 3.5, figure 6).
func handshake(t *testing.T, p *scripted.Peer, opts scripted.Options, win uint16) (*scripted.Conn, *net.TCPConn) {
	t.Helper()
	ln := listen(t, p)
	conn := p.Dial(serverPort)
	conn.Send(t, scripted.TCP{Flags: scripted.SYN, Options: opts})
	conn.Expect(t, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1)}, time.Second)
	conn.Send(t, scripted.TCP{Flags: scripted.ACK, Window: scripted.Uint16(win)})
	return conn, accept(t, ln)
}

// tcpInfo returns the kernel's TCP_INFO of c.
func tcpInfo(t *testing.T, c *net.TCPConn) *unix.TCPInfo {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatalf("TCP_INFO: %v", ierr)
	}
	return info
}

// write writes b on c or fails.
func write(t *testing.T, c *net.TCPConn, b string) {
	t.Helper()
	if _, err := c.Write([]byte(b)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readFor reads from c until d passes, and returns what came and the
// error that ended the read (a timeout when nothing else did).
func readFor(c *net.TCPConn, d time.Duration) (string, error) {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// synOptions are the options of Linux's own SYN, with the script's
// values.
func synOptions() scripted.Options {
	return scripted.Options{
		MSS: scripted.Uint16(1400), WindowScale: scripted.Uint8(6), SACKPermitted: true,
		TSVal: scripted.Uint32(1000), TSEcr: scripted.Uint32(0),
	}
}
