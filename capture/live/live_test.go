package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"github.com/vishvananda/netlink"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
)

var _ capture.Source = (*Capture)(nil)

// liveNetNSEnv marks the re-executed test binary that runs inside a private
// network namespace, where nothing else uses lo.
const liveNetNSEnv = "TCPLAB_CAPTURE_TEST_NETNS"

// inNetNS reports whether the test runs inside its private network
// namespace, with lo up. If not, it re-executes the test binary, running only
// this test, in a new network namespace (and a user namespace when not root),
// reports the child's outcome as this test's, and returns false. When the
// system cannot create the namespace it skips the test, or fails it with
// CI=true, by testenv.SkipOrFail.
//
// This duplicates a little of tcplab/lab/netns, which capture must not
// import (its tests reach it only through testenv); it is a helper rather
// than a TestMain so as not to claim the package's only TestMain.
func inNetNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv(liveNetNSEnv) == "1" {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			t.Fatalf("find lo: %v", err)
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			t.Fatalf("bring lo up: %v", err)
		}
		return true
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), liveNetNSEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	out, err := cmd.CombinedOutput()
	var errno syscall.Errno
	if err != nil && errors.As(err, &errno) {
		switch errno {
		case syscall.EPERM, syscall.EACCES, syscall.EINVAL, syscall.ENOSPC:
			testenv.SkipOrFail(t, fmt.Sprintf("cannot create a network namespace: %v", errno),
				"run as root or enable unprivileged user namespaces")
		}
	}
	t.Logf("in a network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("test in a network namespace: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("test in a network namespace did not pass")
	}
	return false
}

func TestLiveConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{Interface: "lo", Snaplen: 262144, BufferSize: 8 << 20, Timeout: 20 * time.Millisecond}
	if got != want {
		t.Errorf("zero Config with defaults = %+v, want %+v", got, want)
	}
	set := Config{Interface: "eth0", Snaplen: 96, BufferSize: 1 << 20, Filter: "tcp", Timeout: time.Second}
	if got := set.withDefaults(); got != set {
		t.Errorf("set Config with defaults = %+v, want it unchanged", got)
	}
}

func TestLivePermissionHint(t *testing.T) {
	for _, msg := range []string{"Permission Denied", "Error: socket: Operation not permitted"} {
		err := listenError("lo", "activate", errors.New(msg))
		if !strings.Contains(err.Error(), "needs CAP_NET_RAW") || strings.Contains(err.Error(), "\n") {
			t.Errorf("listenError(%q) = %q, want a one-line CAP_NET_RAW hint", msg, err)
		}
	}
	if err := listenError("nope0", "activate", errors.New("No Such Device")); strings.Contains(err.Error(), "CAP_NET_RAW") {
		t.Errorf("listenError(No Such Device) = %q, want no permission hint", err)
	}
}

// segment is what TestLiveCapture keeps of a captured TCP segment.
type liveSeg struct {
	fromServer bool
	flags      capture.Flags
	seq, ack   uint32
	payload    string
}

func (s liveSeg) String() string {
	dir := "C>S"
	if s.fromServer {
		dir = "S>C"
	}
	return fmt.Sprintf("%s %v seq=%d ack=%d len=%d", dir, s.flags, s.seq, s.ack, len(s.payload))
}

func TestLiveCapture(t *testing.T) {
	if !inNetNS(t) {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := layers.TCPPort(ln.Addr().(*net.TCPAddr).Port)

	live, err := Open(Config{Filter: fmt.Sprintf("tcp port %d", port)})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if lt := live.LinkType(); lt != layers.LinkTypeEthernet {
		t.Logf("link type of lo is %v", lt)
	}

	served := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err.Error()
			return
		}
		data, _ := io.ReadAll(c)
		c.Close()
		served <- string(data)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-served; got != "hello" {
		t.Fatalf("server read %q, want hello", got)
	}

	// Read until both FINs and the ACK of the later one.
	var (
		segs           []liveSeg
		finC, finS     = -1, -1 // indexes in segs
		lastAck        bool
		prev           time.Time
		deadline       = time.Now().Add(10 * time.Second)
		sawSYN, sawSA  bool
		sawData, sawRS bool
	)
	for !lastAck {
		data, ci, err := live.ReadPacketData()
		if err == capture.ErrTimeout {
			if time.Now().After(deadline) {
				t.Fatalf("no last ACK after 10s; captured:\n%s", segsString(segs))
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if ci.CaptureLength != len(data) || ci.Length < ci.CaptureLength {
			t.Errorf("CaptureInfo %+v for %d bytes", ci, len(data))
		}
		if ci.Timestamp.Before(prev) {
			t.Errorf("timestamp %v before the previous %v", ci.Timestamp, prev)
		}
		prev = ci.Timestamp
		pkt := gopacket.NewPacket(data, live.LinkType(), gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("frame without TCP passed the filter: %v", pkt)
		}
		s := liveSeg{fromServer: tcp.SrcPort == port, seq: tcp.Seq, ack: tcp.Ack, payload: string(tcp.Payload)}
		for _, f := range []struct {
			set  bool
			flag capture.Flags
		}{{tcp.FIN, capture.FIN}, {tcp.SYN, capture.SYN}, {tcp.RST, capture.RST}, {tcp.PSH, capture.PSH}, {tcp.ACK, capture.ACK}} {
			if f.set {
				s.flags |= f.flag
			}
		}
		segs = append(segs, s)
		switch {
		case s.flags == capture.SYN && !s.fromServer:
			sawSYN = true
		case s.flags == capture.SYN|capture.ACK && s.fromServer:
			sawSA = true
		case s.flags&capture.RST != 0:
			sawRS = true
		}
		if s.payload == "hello" && !s.fromServer {
			sawData = true
		}
		if s.flags&capture.FIN != 0 {
			if s.fromServer {
				finS = len(segs) - 1
			} else {
				finC = len(segs) - 1
			}
			continue
		}
		if finC >= 0 && finS >= 0 && s.flags&(capture.SYN|capture.RST) == 0 {
			later := segs[max(finC, finS)]
			if s.fromServer != later.fromServer && s.ack == later.seq+uint32(len(later.payload))+1 {
				lastAck = true
			}
		}
	}
	t.Logf("captured:\n%s", segsString(segs))
	for what, saw := range map[string]bool{"SYN": sawSYN, "SYN,ACK": sawSA, "data hello": sawData, "client FIN": finC >= 0, "server FIN": finS >= 0} {
		if !saw {
			t.Errorf("no %s captured", what)
		}
	}
	if sawRS {
		t.Errorf("RST captured")
	}
	st, err := live.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v for %d frames read", st, len(segs))
	if st.Dropped != 0 {
		t.Errorf("Stats().Dropped = %d, want 0", st.Dropped)
	}
	if st.Received < len(segs) {
		t.Errorf("Stats().Received = %d, fewer than the %d frames read", st.Received, len(segs))
	}
}

func segsString(segs []liveSeg) string {
	var b strings.Builder
	for _, s := range segs {
		fmt.Fprintf(&b, "  %v\n", s)
	}
	return b.String()
}

func TestLiveTimeoutAndClose(t *testing.T) {
	if !inNetNS(t) {
		return
	}
	live, err := Open(Config{Filter: "tcp port 1", Timeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	data, _, err := live.ReadPacketData()
	if err != capture.ErrTimeout || data != nil {
		t.Fatalf("ReadPacketData on an idle lo = %d bytes, %v; want capture.ErrTimeout", len(data), err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ReadPacketData timed out after %v, want about 10ms", d)
	}
	if _, err := live.Stats(); err != nil {
		t.Errorf("Stats: %v", err)
	}

	// Close ends a reader that loops on capture.ErrTimeout.
	done := make(chan error, 1)
	go func() {
		for {
			_, _, err := live.ReadPacketData()
			if err != capture.ErrTimeout {
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	live.Close()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("ReadPacketData after Close = %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadPacketData still running 5s after Close")
	}
	if _, err := live.Stats(); err == nil {
		t.Error("Stats after Close: nil error")
	}
	live.Close() // harmless
}

func TestLiveOpenErrors(t *testing.T) {
	if !inNetNS(t) {
		return
	}
	if l, err := Open(Config{Interface: "nosuchif0"}); err == nil {
		l.Close()
		t.Error("Open on a missing interface: nil error")
	} else if !strings.Contains(err.Error(), "nosuchif0") {
		t.Errorf("Open on a missing interface: %v, want the interface named", err)
	}
	if l, err := Open(Config{Filter: "tcp port"}); err == nil {
		l.Close()
		t.Error("Open with a bad filter: nil error")
	} else if !strings.Contains(err.Error(), `filter "tcp port"`) {
		t.Errorf("Open with a bad filter: %v, want the filter named", err)
	}
	if errors.Is(capture.ErrTimeout, pcap.NextErrorTimeoutExpired) {
		t.Error("capture.ErrTimeout is pcap's error; callers should not need pcap")
	}
}
