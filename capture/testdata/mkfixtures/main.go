// Command mkfixtures re-makes the capture fixtures in capture/testdata.
//
// Every fixture is a real capture: the generator re-executes itself inside a
// fresh network namespace (unshare --net, or unshare -rn when not root), brings
// up lo (MTU 1500, one MSS per skb so segments look like Ethernet ones), starts
// tcpdump on it, runs a client and a server written here against the kernel's
// TCP on 127.0.0.1 or ::1, waits until the connection is closed and quiet, and
// stops tcpdump with SIGINT. The retrans fixture drops chosen data segments
// with nftables on the receiver's input hook. The "variants" run is captured
// by several tcpdumps at once (Ethernet, nanosecond, snaplen 40, LINUX_SLL,
// LINUX_SLL2); the RAW, NULL, big-endian and pcapng copies and the broken files
// for error tests are then derived from the captures ("derived"). The
// encapsulated captures (VXLAN between two namespaces, NFLOG) are described
// in encap.go.
//
// Run it from the module root (needs root, or unprivileged user namespaces):
//
//	go run ./capture/testdata/mkfixtures            # all fixtures
//	go run ./capture/testdata/mkfixtures retrans    # only some of them
//
// It needs ip, unshare, taskset, tcpdump, nft and editcap in PATH.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	childEnv = "MKFIXTURES_CHILD" // fixture to run, set in the re-executed child
	outEnv   = "MKFIXTURES_OUT"   // absolute output directory, for the child

	serverPort = 8080
	closedPort = 8081
	clientPort = 40000

	// settle is longer than Linux's largest delayed-ACK timeout (200ms), so a
	// pause of settle between two steps lets every pending ACK go out first and
	// the same segments appear each time the fixture is made.
	settle = 250 * time.Millisecond
	// quiet is how long the namespace stays idle before tcpdump is stopped.
	quiet = 300 * time.Millisecond
)

// tap is one tcpdump run during a fixture.
type tap struct {
	file   string   // output file name in the output directory
	args   []string // interface, snaplen, link type, precision
	filter string   // capture filter: "tcp" when empty, none when "-"
}

// fixture is one capture made in its own network namespace.
type fixture struct {
	name     string
	taps     []tap
	setup    func() error // before tcpdump starts (nft rules)
	run      func() error // the peers
	teardown func()       // after tcpdump stopped
}

func lo(file string, extra ...string) tap {
	return tap{file: file, args: append([]string{"-i", "lo"}, extra...)}
}

var fixtures = []fixture{
	{name: "handshake", taps: []tap{lo("handshake.pcap")}, run: runHandshake},
	{name: "http-keepalive", taps: []tap{lo("http-keepalive.pcap")}, run: func() error { return runHTTP("tcp4", 2) }},
	{name: "keepalive", taps: []tap{lo("keepalive.pcap")}, run: runKeepalive},
	{name: "zero-window", taps: []tap{lo("zero-window.pcap", "-s", "128")}, run: runZeroWindow},
	{name: "half-close", taps: []tap{lo("half-close.pcap")}, run: runHalfClose},
	{name: "rst", taps: []tap{lo("rst.pcap")}, run: runRST},
	{name: "retrans", taps: []tap{lo("retrans.pcap", "-s", "128")}, setup: setupRetrans, run: runRetrans},
	{name: "ipv6", taps: []tap{lo("ipv6.pcap")}, run: func() error { return runHTTP("tcp6", 1) }},
	{name: "variants", taps: []tap{
		lo("smalldata.pcap"),
		lo("nano.pcap", "--time-stamp-precision=nano"),
		lo("snaplen-cut.pcap", "-s", "40"),
		{file: "sll.pcap", args: []string{"-i", "any", "-y", "LINUX_SLL"}},
		{file: "sll2.pcap", args: []string{"-i", "any", "-y", "LINUX_SLL2"}},
	}, run: runSmallData},
}

func main() {
	if name := os.Getenv(childEnv); name != "" {
		if err := child(name, os.Getenv(outEnv)); err != nil {
			fmt.Fprintf(os.Stderr, "mkfixtures: %s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	out := flag.String("out", "capture/testdata", "output directory")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: mkfixtures [-out dir] [fixture ...]\nfixtures:")
		for _, f := range fixtures {
			fmt.Fprintf(os.Stderr, " %s", f.name)
		}
		fmt.Fprintf(os.Stderr, " derived\n")
	}
	flag.Parse()
	if err := parent(*out, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "mkfixtures: %v\n", err)
		os.Exit(1)
	}
}

// parent runs each selected fixture in a new network namespace, then derives
// the converted and broken files.
func parent(out string, names []string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return fmt.Errorf("output directory %s does not exist (run from the module root)", abs)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	all := len(names) == 0
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for _, f := range fixtures {
		if !all && !want[f.name] {
			continue
		}
		delete(want, f.name)
		fmt.Printf("== %s\n", f.name)
		// All peers on one CPU: loopback packets are queued per CPU, so a
		// sender that moves between CPUs reorders its own segments.
		args := []string{"--net", "--", "taskset", "-c", "0", exe}
		if os.Geteuid() != 0 {
			args[0] = "-rn"
		}
		cmd := exec.Command("unshare", args...)
		cmd.Env = append(os.Environ(), childEnv+"="+f.name, outEnv+"="+abs)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("fixture %s: %v", f.name, err)
		}
	}
	if all || want["derived"] {
		delete(want, "derived")
		fmt.Println("== derived")
		if err := derive(abs); err != nil {
			return fmt.Errorf("derived fixtures: %v", err)
		}
	}
	for n := range want {
		return fmt.Errorf("unknown fixture %q", n)
	}
	return nil
}

// child runs inside the namespace: lo up, tcpdumps started, peers run,
// tcpdumps stopped.
func child(name, out string) error {
	var f *fixture
	for i := range fixtures {
		if fixtures[i].name == name {
			f = &fixtures[i]
		}
	}
	if f == nil {
		return fmt.Errorf("unknown fixture")
	}
	// MTU 1500 and one MSS per skb: segments like on Ethernet instead of
	// 64 KiB loopback super-packets.
	if err := sh("ip", "link", "set", "lo", "up", "mtu", "1500", "gso_max_size", "1500", "gso_max_segs", "1"); err != nil {
		return err
	}
	if f.setup != nil {
		if err := f.setup(); err != nil {
			return err
		}
	}
	var dumps []*tcpdump
	stopAll := func() error {
		var first error
		for _, d := range dumps {
			if err := d.stop(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, t := range f.taps {
		d, err := startTcpdump(filepath.Join(out, t.file), t.args, t.filter)
		if err != nil {
			stopAll()
			return err
		}
		dumps = append(dumps, d)
	}
	// tcpdump says "listening on" once the socket is bound and filtered;
	// give it a moment more anyway.
	time.Sleep(100 * time.Millisecond)
	runErr := f.run()
	time.Sleep(quiet)
	stopErr := stopAll()
	if f.teardown != nil {
		f.teardown()
	}
	if runErr != nil {
		return runErr
	}
	return stopErr
}

func sh(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, buf.String())
	}
	return nil
}

// shIn runs a command with the given standard input.
func shIn(stdin string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, buf.String())
	}
	return nil
}

type tcpdump struct {
	file   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr []string
	done   chan struct{} // stderr closed
}

func startTcpdump(file string, args []string, filter string) (*tcpdump, error) {
	full := []string{"-U", "--immediate-mode", "-n", "-Z", "root", "-w", file}
	full = append(full, args...)
	switch filter {
	case "":
		full = append(full, "tcp")
	case "-":
	default:
		full = append(full, strings.Fields(filter)...)
	}
	d := &tcpdump{file: file, cmd: exec.Command("tcpdump", full...), done: make(chan struct{})}
	pipe, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	listening := make(chan struct{})
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(pipe)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.stderr = append(d.stderr, line)
			d.mu.Unlock()
			if !seen && strings.Contains(line, "listening on") {
				seen = true
				close(listening)
			}
		}
	}()
	select {
	case <-listening:
		fmt.Printf("   tcpdump %s\n", strings.Join(full, " "))
		return d, nil
	case <-d.done:
	case <-time.After(5 * time.Second):
	}
	d.cmd.Process.Kill()
	d.cmd.Wait()
	return nil, fmt.Errorf("tcpdump did not start: %s", strings.Join(d.lines(), "; "))
}

func (d *tcpdump) lines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.stderr...)
}

func (d *tcpdump) stop() error {
	d.cmd.Process.Signal(syscall.SIGINT)
	<-d.done
	err := d.cmd.Wait()
	var captured, dropped string
	for _, l := range d.lines() {
		if strings.HasSuffix(l, "packets captured") {
			captured = strings.Fields(l)[0]
		}
		if strings.HasSuffix(l, "packets dropped by kernel") {
			dropped = strings.Fields(l)[0]
		}
	}
	fmt.Printf("   %s: %s packets captured, %s dropped by kernel\n", filepath.Base(d.file), captured, dropped)
	if err != nil {
		return fmt.Errorf("tcpdump %s: %v: %s", d.file, err, strings.Join(d.lines(), "; "))
	}
	if dropped != "0" {
		return fmt.Errorf("tcpdump %s dropped packets: %s", d.file, strings.Join(d.lines(), "; "))
	}
	return nil
}

// ---- peers ----------------------------------------------------------------

// sockopt returns a Control function that sets integer socket options
// (level, option, value triples) before bind/listen/connect.
func sockopt(opts ...int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		return setopts(c, opts...)
	}
}

func setopts(c syscall.RawConn, opts ...int) error {
	var err error
	cerr := c.Control(func(fd uintptr) {
		for i := 0; i+2 < len(opts) && err == nil; i += 3 {
			err = syscall.SetsockoptInt(int(fd), opts[i], opts[i+1], opts[i+2])
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

func hostport(network string, port int) string {
	if network == "tcp6" {
		return net.JoinHostPort("::1", strconv.Itoa(port))
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// listen listens on the server port. Go's default keep-alive is off so that
// only the fixtures that ask for keep-alive probes get them.
func listen(network string, opts ...int) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	if len(opts) > 0 {
		lc.Control = sockopt(opts...)
	}
	return lc.Listen(context.Background(), network, hostport(network, serverPort))
}

// dial connects from a fixed client port to port.
func dial(network string, lport, port int, opts ...int) (*net.TCPConn, error) {
	laddr, err := net.ResolveTCPAddr(network, hostport(network, lport))
	if err != nil {
		return nil, err
	}
	d := net.Dialer{LocalAddr: laddr, KeepAlive: -1, Timeout: 5 * time.Second}
	if len(opts) > 0 {
		d.Control = sockopt(opts...)
	}
	c, err := d.Dial(network, hostport(network, port))
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// serve accepts one connection, runs fn on it in a goroutine and returns a
// channel that yields fn's error. The listener is closed after the accept.
func serve(ln net.Listener, fn func(*net.TCPConn) error) <-chan error {
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			errc <- err
			return
		}
		tc := c.(*net.TCPConn)
		err = fn(tc)
		tc.Close()
		errc <- err
	}()
	return errc
}

// wait waits for the server goroutine, with a timeout.
func wait(errc <-chan error) error {
	select {
	case err := <-errc:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("server timed out")
	}
}

// drainClose reads to EOF, pauses so the ACK of the peer's FIN goes out on
// its own, then closes.
func drainClose(c *net.TCPConn) error {
	if _, err := io.Copy(io.Discard, c); err != nil {
		return err
	}
	time.Sleep(settle)
	return c.Close()
}

func runHandshake() error {
	ln, err := listen("tcp4")
	if err != nil {
		return err
	}
	errc := serve(ln, drainClose)
	c, err := dial("tcp4", clientPort, serverPort)
	if err != nil {
		return err
	}
	time.Sleep(settle)
	c.Close()
	return wait(errc)
}

const httpResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"X-Frame-Options: SAMEORIGIN\r\n" +
	"Content-Length: 5\r\n" +
	"\r\n" +
	"great"

func httpRequest(host string) string {
	return "GET /blog/ HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Connection: keep-alive\r\n" +
		"Cache-Control: max-age=0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) tcplab-fixtures/1.0\r\n" +
		"Accept-Language: en-US,en;q=0.9\r\n" +
		"Cookie: sessionid=3f2a9c1e; csrftoken=tcplab\r\n" +
		"\r\n"
}

// readHead reads an HTTP header block up to the blank line; io.EOF if the
// peer closed before sending anything.
func readHead(r *bufio.Reader) (map[string]string, error) {
	h := map[string]string{}
	first := true
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if first && err == io.EOF && line == "" {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("reading header: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return h, nil
		}
		if k, v, ok := strings.Cut(line, ":"); ok && !first {
			h[strings.ToLower(k)] = strings.TrimSpace(v)
		}
		first = false
	}
}

// readResponse reads one response with a Content-Length body.
func readResponse(r *bufio.Reader) (string, error) {
	h, err := readHead(r)
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(h["content-length"])
	if err != nil {
		return "", fmt.Errorf("bad content-length: %v", err)
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return string(body), err
}

// httpServer answers requests on c until the client closes.
func httpServer(c *net.TCPConn) error {
	r := bufio.NewReader(c)
	for {
		_, err := readHead(r)
		if err == io.EOF {
			time.Sleep(settle)
			return c.Close()
		}
		if err != nil {
			return err
		}
		if _, err := io.WriteString(c, httpResponse); err != nil {
			return err
		}
	}
}

// runHTTP makes n request/response exchanges on one kept-alive connection;
// then the client closes, then the server.
func runHTTP(network string, n int) error {
	ln, err := listen(network)
	if err != nil {
		return err
	}
	errc := serve(ln, httpServer)
	c, err := dial(network, clientPort, serverPort)
	if err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		time.Sleep(settle)
		if _, err := io.WriteString(c, httpRequest(hostport(network, serverPort))); err != nil {
			return err
		}
		body, err := readResponse(r)
		if err != nil {
			return err
		}
		if body != "great" {
			return fmt.Errorf("body %q", body)
		}
	}
	time.Sleep(settle)
	c.Close()
	return wait(errc)
}

// runKeepalive: the server turns on keep-alive probes after 1s idle, every
// 1s, and takes 2.6s to answer, so two probes and their ACKs come first.
func runKeepalive() error {
	ln, err := listen("tcp4")
	if err != nil {
		return err
	}
	errc := serve(ln, func(c *net.TCPConn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		if err := setopts(rc,
			syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1,
			syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 1,
			syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 1,
			syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 5,
		); err != nil {
			return err
		}
		r := bufio.NewReader(c)
		if _, err := readHead(r); err != nil {
			return err
		}
		time.Sleep(2600 * time.Millisecond)
		if _, err := io.WriteString(c, httpResponse); err != nil {
			return err
		}
		return drainClose(c)
	})
	c, err := dial("tcp4", clientPort, serverPort)
	if err != nil {
		return err
	}
	time.Sleep(settle)
	if _, err := io.WriteString(c, httpRequest(hostport("tcp4", serverPort))); err != nil {
		return err
	}
	if _, err := readResponse(bufio.NewReader(c)); err != nil {
		return err
	}
	time.Sleep(settle)
	c.Close()
	return wait(errc)
}

// runZeroWindow: a receiver with a tiny receive buffer does not read for
// 1.5s while the sender pushes 256 KiB: the window fills, goes to zero, the
// sender probes it, then the receiver reads everything and the window opens.
func runZeroWindow() error {
	ln, err := listen("tcp4", syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
	if err != nil {
		return err
	}
	const total = 256 << 10
	errc := serve(ln, func(c *net.TCPConn) error {
		time.Sleep(1500 * time.Millisecond)
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return err
		}
		if n != total {
			return fmt.Errorf("received %d bytes, want %d", n, total)
		}
		time.Sleep(settle)
		return c.Close()
	})
	c, err := dial("tcp4", clientPort, serverPort, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
	if err != nil {
		return err
	}
	time.Sleep(settle)
	if _, err := c.Write(bytes.Repeat([]byte("z"), total)); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		return err
	}
	time.Sleep(settle)
	c.Close()
	return wait(errc)
}

// runHalfClose: the client sends its request and shuts down its sending
// side; the server reads to EOF, answers and closes.
func runHalfClose() error {
	ln, err := listen("tcp4")
	if err != nil {
		return err
	}
	errc := serve(ln, func(c *net.TCPConn) error {
		req, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		time.Sleep(settle)
		if _, err := fmt.Fprintf(c, "got %d bytes, bye\n", len(req)); err != nil {
			return err
		}
		return c.Close()
	})
	c, err := dial("tcp4", clientPort, serverPort)
	if err != nil {
		return err
	}
	time.Sleep(settle)
	if _, err := io.WriteString(c, "QUERY all-records\n"); err != nil {
		return err
	}
	time.Sleep(settle)
	if err := c.CloseWrite(); err != nil {
		return err
	}
	if _, err := io.ReadAll(c); err != nil {
		return err
	}
	time.Sleep(settle)
	c.Close()
	return wait(errc)
}

// runRST: a SYN to a closed port is answered by RST/ACK; then a connection
// whose server closes with SO_LINGER {on, 0}, which sends RST instead of FIN.
func runRST() error {
	if c, err := dial("tcp4", clientPort, closedPort); err == nil {
		c.Close()
		return errors.New("connect to closed port succeeded")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("connect to closed port: %v", err)
	}
	time.Sleep(settle)
	ln, err := listen("tcp4")
	if err != nil {
		return err
	}
	errc := serve(ln, func(c *net.TCPConn) error {
		r := bufio.NewReader(c)
		if _, err := readHead(r); err != nil {
			return err
		}
		if _, err := io.WriteString(c, httpResponse); err != nil {
			return err
		}
		time.Sleep(settle)
		if err := c.SetLinger(0); err != nil {
			return err
		}
		return c.Close()
	})
	c, err := dial("tcp4", clientPort+1, serverPort)
	if err != nil {
		return err
	}
	time.Sleep(settle)
	if _, err := io.WriteString(c, httpRequest(hostport("tcp4", serverPort))); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	if _, err := readResponse(r); err != nil {
		return err
	}
	if _, err := r.ReadByte(); !errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("after linger-0 close: got %v, want ECONNRESET", err)
	}
	c.Close()
	return wait(errc)
}

// Retrans: chain "in" drops every 100th data segment towards the server
// (numgen counts data segments only), which gives duplicate ACKs and
// retransmissions; chain "rto" is filled for a moment to drop all data, so
// the sender's tail-loss probe and first RTO retransmission are lost as well
// and a later RTO retransmission gets through.
//
// Two connections: the first one uses SACK, the second one does not
// (net.ipv4.tcp_sack=0 before it connects). On a loopback RTT of a few
// microseconds Linux's RACK loss detection often retransmits on the first
// SACK, so with SACK Wireshark sees some fast retransmissions and some
// retransmissions it calls out of order; without SACK the sender counts the
// classic three duplicate ACKs and every loss gives a fast retransmission.
func setupRetrans() error {
	return shIn(fmt.Sprintf(`table inet t {
	chain rto { type filter hook input priority -10; policy accept; }
	chain in {
		type filter hook input priority 0; policy accept;
		tcp dport %d ip length > 200 numgen inc mod 100 == 50 counter drop
	}
}
`, serverPort), "nft", "-f", "-")
}

func runRetrans() error {
	if err := retransConn(clientPort, true); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/tcp_sack", []byte("0\n"), 0); err != nil {
		return err
	}
	if err := retransConn(clientPort+1, false); err != nil {
		return err
	}
	var buf bytes.Buffer
	cmd := exec.Command("nft", "list", "chain", "inet", "t", "in")
	cmd.Stdout = &buf
	cmd.Run()
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "counter") {
			fmt.Printf("   nft: %s\n", strings.TrimSpace(l))
		}
	}
	return nil
}

// retransConn sends two bulk phases of 512 KiB from lport to the server;
// with rto, 16 KiB in between are sent while all data is dropped.
func retransConn(lport int, rto bool) error {
	// A fixed receive buffer turns off autotuning, so the advertised window
	// stops growing early and duplicate ACKs carry the same window.
	ln, err := listen("tcp4", syscall.SOL_SOCKET, syscall.SO_RCVBUF, 512<<10)
	if err != nil {
		return err
	}
	const (
		bulk = 512 << 10 // each of the two bulk phases
		tail = 16 << 10  // written while everything is dropped
	)
	var got atomic.Int64
	errc := serve(ln, func(c *net.TCPConn) error {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			got.Add(int64(n))
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		time.Sleep(settle)
		return c.Close()
	})
	c, err := dial("tcp4", lport, serverPort)
	if err != nil {
		return err
	}
	// until waits for the receiver to have read want bytes, then settles.
	until := func(want int64) error {
		deadline := time.Now().Add(20 * time.Second)
		for got.Load() < want {
			if time.Now().After(deadline) {
				return fmt.Errorf("receiver has %d bytes, want %d", got.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(settle)
		return nil
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), bulk/16)
	time.Sleep(settle)
	if _, err := c.Write(data); err != nil {
		return err
	}
	if err := until(bulk); err != nil {
		return err
	}
	sent := int64(bulk)
	if rto {
		if err := sh("nft", "add", "rule", "inet", "t", "rto", "tcp", "dport", strconv.Itoa(serverPort), "ip", "length", ">", "200", "counter", "drop"); err != nil {
			return err
		}
		if _, err := c.Write(data[:tail]); err != nil {
			return err
		}
		time.Sleep(350 * time.Millisecond) // TLP (~10ms) and first RTO (~200ms) are dropped
		if err := sh("nft", "flush", "chain", "inet", "t", "rto"); err != nil {
			return err
		}
		sent += tail
		if err := until(sent); err != nil {
			return err
		}
	}
	if _, err := c.Write(data); err != nil {
		return err
	}
	if err := until(sent + bulk); err != nil {
		return err
	}
	c.Close()
	return wait(errc)
}

// runSmallData: handshake, one small exchange, client closes, server closes.
func runSmallData() error {
	ln, err := listen("tcp4")
	if err != nil {
		return err
	}
	errc := serve(ln, func(c *net.TCPConn) error {
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if _, err := io.WriteString(c, "pong "+line); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		time.Sleep(settle)
		return c.Close()
	})
	c, err := dial("tcp4", clientPort, serverPort)
	if err != nil {
		return err
	}
	time.Sleep(settle)
	if _, err := io.WriteString(c, "ping tcplab\n"); err != nil {
		return err
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		return err
	}
	time.Sleep(settle)
	c.Close()
	return wait(errc)
}

// ---- derived files ----------------------------------------------------------

// pcapFile is a classic pcap file read into memory.
type pcapFile struct {
	order    byteOrder
	magic    uint32
	snaplen  uint32
	linktype uint32
	recs     []pcapRec
}

type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

type pcapRec struct {
	sec, frac, orig uint32
	data            []byte
}

func readPcap(path string) (*pcapFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("%s: short file", path)
	}
	p := &pcapFile{}
	switch {
	case binary.LittleEndian.Uint32(b) == 0xa1b2c3d4 || binary.LittleEndian.Uint32(b) == 0xa1b23c4d:
		p.order = binary.LittleEndian
	case binary.BigEndian.Uint32(b) == 0xa1b2c3d4 || binary.BigEndian.Uint32(b) == 0xa1b23c4d:
		p.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("%s: not a pcap file", path)
	}
	p.magic = p.order.Uint32(b)
	p.snaplen = p.order.Uint32(b[16:])
	p.linktype = p.order.Uint32(b[20:])
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			return nil, fmt.Errorf("%s: truncated record header", path)
		}
		h := b[off : off+16]
		n := int(p.order.Uint32(h[8:]))
		if off+16+n > len(b) {
			return nil, fmt.Errorf("%s: truncated record", path)
		}
		p.recs = append(p.recs, pcapRec{
			sec: p.order.Uint32(h), frac: p.order.Uint32(h[4:]), orig: p.order.Uint32(h[12:]),
			data: b[off+16 : off+16+n],
		})
		off += 16 + n
	}
	return p, nil
}

func (p *pcapFile) bytes() []byte {
	var b []byte
	o := p.order
	b = o.AppendUint32(b, p.magic)
	b = o.AppendUint16(b, 2)
	b = o.AppendUint16(b, 4)
	b = o.AppendUint32(b, 0) // thiszone
	b = o.AppendUint32(b, 0) // sigfigs
	b = o.AppendUint32(b, p.snaplen)
	b = o.AppendUint32(b, p.linktype)
	for _, r := range p.recs {
		b = o.AppendUint32(b, r.sec)
		b = o.AppendUint32(b, r.frac)
		b = o.AppendUint32(b, uint32(len(r.data)))
		b = o.AppendUint32(b, r.orig)
		b = append(b, r.data...)
	}
	return b
}

// relink replaces each frame's 14-byte Ethernet header with prefix.
func (p *pcapFile) relink(linktype uint32, prefix []byte) (*pcapFile, error) {
	q := *p
	q.linktype = linktype
	q.recs = nil
	for _, r := range p.recs {
		if len(r.data) < 14 || binary.BigEndian.Uint16(r.data[12:]) != 0x0800 {
			return nil, errors.New("not an Ethernet/IPv4 frame")
		}
		d := append(append([]byte(nil), prefix...), r.data[14:]...)
		q.recs = append(q.recs, pcapRec{sec: r.sec, frac: r.frac, orig: r.orig - 14 + uint32(len(prefix)), data: d})
	}
	return &q, nil
}

const (
	linktypeNull  = 0   // BSD loopback: 4-byte address family in the writer's byte order
	linktypeRaw   = 101 // raw IP, no link header
	linktypeUser0 = 147 // DLT_USER0, which tcplab does not decode
)

// derive makes the converted variants of smalldata.pcap and handshake.pcap
// and the broken files for error tests.
func derive(out string) error {
	path := func(name string) string { return filepath.Join(out, name) }
	write := func(name string, b []byte) error {
		fmt.Printf("   %s (%d bytes)\n", name, len(b))
		return os.WriteFile(path(name), b, 0o644)
	}

	small, err := readPcap(path("smalldata.pcap"))
	if err != nil {
		return err
	}
	raw, err := small.relink(linktypeRaw, nil)
	if err != nil {
		return err
	}
	if err := write("raw.pcap", raw.bytes()); err != nil {
		return err
	}
	// AF_INET is 2 everywhere; the file is little-endian, so is the family.
	null, err := small.relink(linktypeNull, binary.LittleEndian.AppendUint32(nil, syscall.AF_INET))
	if err != nil {
		return err
	}
	if err := write("null.pcap", null.bytes()); err != nil {
		return err
	}
	big := *small
	big.order = binary.BigEndian
	if err := write("bigendian.pcap", big.bytes()); err != nil {
		return err
	}

	hs, err := os.ReadFile(path("handshake.pcap"))
	if err != nil {
		return err
	}
	if err := sh("editcap", "-F", "pcapng", path("handshake.pcap"), path("handshake.pcapng")); err != nil {
		return err
	}
	fmt.Println("   handshake.pcapng (editcap -F pcapng)")

	if err := write("empty.pcap", nil); err != nil {
		return err
	}
	if err := write("notcapture.pcap", []byte("This is not a capture file.\nIt is plain text that happens to end in .pcap.\n")); err != nil {
		return err
	}
	if err := write("truncated-header.pcap", hs[:10]); err != nil {
		return err
	}
	hp, err := readPcap(path("handshake.pcap"))
	if err != nil {
		return err
	}
	if len(hp.recs) < 3 {
		return errors.New("handshake.pcap has fewer than 3 records")
	}
	cut := 24 + 16 + len(hp.recs[0].data) + 16 + len(hp.recs[1].data) + 16 + len(hp.recs[2].data)/2
	if err := write("truncated-record.pcap", hs[:cut]); err != nil {
		return err
	}
	user := *hp
	user.linktype = linktypeUser0
	user.recs = hp.recs[:1]
	return write("unsupported-linktype.pcap", user.bytes())
}
