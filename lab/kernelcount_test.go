package lab

import (
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/ktrace"
	"github.com/tcplab/tcplab/lab/netns"
)

// TestSNMPValue reads a counter from a kernel's /proc/net/snmp
// (testdata/snmp.txt, Linux 6.18, its RetransSegs and InErrs made
// nonzero to tell the columns apart), and refuses text without it.
func TestSNMPValue(t *testing.T) {
	b, err := os.ReadFile("testdata/snmp.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, group, field string
		text               []byte
		want               uint64
		fail               bool
	}{
		{name: "RetransSegs", group: "Tcp", field: "RetransSegs", text: b, want: 61},
		{name: "first field", group: "Tcp", field: "RtoAlgorithm", text: b, want: 1},
		{name: "other group", group: "Udp", field: "InDatagrams", text: b, want: 5801},
		{name: "no such field", group: "Tcp", field: "Nope", text: b, fail: true},
		{name: "names without values", group: "Tcp", field: "RetransSegs", text: []byte("Tcp: RetransSegs\n"), fail: true},
		{name: "foreign text", group: "Tcp", field: "RetransSegs", text: []byte("<html>\n"), fail: true},
		{name: "not a number", group: "Tcp", field: "RetransSegs", text: []byte("Tcp: RetransSegs\nTcp: x\n"), fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := snmpValue(tc.text, tc.group, tc.field)
			if (err != nil) != tc.fail || got != tc.want {
				t.Errorf("snmpValue = %d, %v; want %d, failing %v", got, err, tc.want, tc.fail)
			}
		})
	}
}

// TestRetransSegs reads a fresh namespace's count, which is 0.
func TestRetransSegs(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "a namespace needs root", "run as root")
	}
	testenv.NetNS(t)
	n, err := retransSegs(testenv.NewNetNS(t))
	if err != nil || n != 0 {
		t.Errorf("retransSegs of a new namespace = %d, %v; want 0", n, err)
	}
}

// TestSilentCountedResends: the segments the kernel counted as sent
// again that no resend event tells of; an event tells of as many
// segments as its range can hold at the receiver's MSS less 40 bytes.
func TestSilentCountedResends(t *testing.T) {
	c, s := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:8000")
	syn := func(src, dst netip.AddrPort, mss uint16) capture.Packet {
		return capture.Packet{TCP: true, Segment: capture.Segment{Src: src, Dst: dst, Flags: capture.SYN, Options: capture.Options{MSS: mss}}}
	}
	handshake := []capture.Packet{syn(c, s, 1460), syn(s, c, 1460)}
	resend := func(from, to netip.AddrPort, n uint32) ktrace.Event {
		return ktrace.Event{Kind: ktrace.Retransmit, Src: from, Dst: to, HaveSeq: true, Seq: 1000, End: 1000 + n}
	}
	failed := resend(c, s, 100)
	failed.Err = syscall.EBUSY // the original still queued: not counted
	refused := resend(c, s, 100)
	refused.Err = syscall.ENOBUFS // counted, then refused
	for _, tc := range []struct {
		name    string
		counted uint64
		events  []ktrace.Event
		pkts    []capture.Packet
		want    uint64
	}{
		{name: "nothing", want: 0},
		{name: "one told", counted: 1, events: []ktrace.Event{resend(c, s, 100)}, pkts: handshake, want: 0},
		{name: "one untold", counted: 1, pkts: handshake, want: 1},
		{name: "two counted, one told", counted: 2, events: []ktrace.Event{resend(s, c, 100)}, pkts: handshake, want: 1},
		{name: "three MSS in one event", counted: 3, events: []ktrace.Event{resend(c, s, 3*1420)}, pkts: handshake, want: 0},
		{name: "three MSS, counted four", counted: 4, events: []ktrace.Event{resend(c, s, 3*1420)}, pkts: handshake, want: 1},
		{name: "a SYN-ACK", counted: 1, events: []ktrace.Event{{Kind: ktrace.RetransmitSYNACK, Src: s, Dst: c}}, pkts: handshake, want: 0},
		{name: "an attempt that sent nothing", counted: 1, events: []ktrace.Event{failed}, pkts: handshake, want: 1},
		{name: "a transmit the device refused", counted: 1, events: []ktrace.Event{refused}, pkts: handshake, want: 0},
		{name: "no MSS seen: a byte each", counted: 50, events: []ktrace.Event{resend(c, s, 100)}, want: 0},
		{name: "more told than counted", counted: 0, events: []ktrace.Event{resend(c, s, 100)}, pkts: handshake, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := silentCountedResends(tc.counted, tc.events, tc.pkts); got != tc.want {
				t.Errorf("silentCountedResends = %d; want %d", got, tc.want)
			}
		})
	}
}

// TestUnfinishedSockets: a socket whose last change leaves it open, and
// which the kernel no longer has, lacks the changes that closed it.
func TestUnfinishedSockets(t *testing.T) {
	whole := kvEvents() // both sockets closed
	cut := slices.DeleteFunc(kvEvents(), func(e ktrace.Event) bool {
		// The client's last two changes, as a blackout loses them.
		return e.Cookie == 7 && (e.NewState == capture.FinWait2 || e.NewState == capture.Closed)
	})
	for _, tc := range []struct {
		name   string
		events []ktrace.Event
		live   map[uint64]bool
		want   int
	}{
		{name: "all closed", events: whole, live: map[uint64]bool{}, want: 0},
		{name: "the client's end missing", events: cut, live: map[uint64]bool{}, want: 1},
		{name: "the client still open", events: cut, live: map[uint64]bool{7: true}, want: 0},
		{name: "another socket open", events: cut, live: map[uint64]bool{8: true}, want: 1},
		{name: "no events", live: map[uint64]bool{}, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unfinishedSockets(tc.events, tc.live); got != tc.want {
				t.Errorf("unfinishedSockets = %d; want %d", got, tc.want)
			}
		})
	}
}

// TestLiveSockets: a namespace's listening socket is alive, by the cookie
// the kernel gives it, until closed.
func TestLiveSockets(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "a namespace needs root", "run as root")
	}
	testenv.NetNS(t)
	ns := testenv.NewNetNS(t)
	// A plain TCP socket: Go's listeners may be MPTCP, whose cookie is
	// not their TCP subflow's.
	var fd int
	err := netns.Enter(ns, func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		return unix.Listen(fd, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		t.Fatal(err)
	}
	live, err := liveSockets(ns)
	if err != nil || !live[cookie] || len(live) != 1 {
		t.Errorf("live sockets %v, %v; want only %d", live, err, cookie)
	}
	unix.Close(fd)
	if live, err := liveSockets(ns); err != nil || len(live) != 0 {
		t.Errorf("after close: live sockets %v, %v; want none", live, err)
	}
}
