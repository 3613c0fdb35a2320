package ktrace

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/impair"
)

// TestDropRetransmit: a data segment that nftables drops shows as a Drop
// for NETFILTER_DROP with its sequence number, then as a Retransmit of
// that sequence number, whose cause follows from what else was lost.
func TestDropRetransmit(t *testing.T) {
	for _, c := range []struct {
		name   string
		ip     net.IP
		writes int   // data segments the client sends, 10 bytes each
		drop   []int // which of the data segments to drop, counted from 1
		cause  RetransCause
	}{
		// The last segment lost and nothing after it: the loss probe.
		{"tail", lo4, 1, []int{1}, CauseTailLossProbe},
		{"tail IPv6", lo6, 1, []int{1}, CauseTailLossProbe},
		// The probe lost too: the retransmission timer.
		{"probe lost", lo4, 1, []int{1, 2}, CauseRTO},
		// Segments after the lost one are SACKed: fast recovery.
		{"middle", lo4, 5, []int{1}, CauseFastRetransmit},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSpace(t)
			tr := openTracer(t, s.inode)
			p := connectOn(t, s, c.ip)
			var rules *impair.Installed
			s.do(t, func() (err error) {
				rules, err = impair.Install(impair.DropNth(p.serverAddr.Port(), c.drop...))
				return err
			})
			t.Cleanup(func() { s.do(t, rules.Remove) })
			for range c.writes {
				if _, err := p.client.Write([]byte("0123456789")); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, 10*c.writes)
			p.server.SetReadDeadline(time.Now().Add(10 * time.Second))
			for n := 0; n < len(buf); {
				m, err := p.server.Read(buf[n:])
				if err != nil {
					t.Fatalf("server read: %v", err)
				}
				n += m
			}
			isDrop := func(e Event) bool { return e.Kind == Drop && e.Reason == "NETFILTER_DROP" }
			isRetrans := func(e Event) bool { return e.Kind == Retransmit && e.Cookie == p.clientCookie }
			count := func(evs []Event, f func(Event) bool) int {
				n := 0
				for _, e := range evs {
					if f(e) {
						n++
					}
				}
				return n
			}
			// Each drop is of the segment or of its retransmission, and
			// the server read it all: as many retransmissions as drops.
			evs := collect(t, tr, 5*time.Second, func(evs []Event) bool {
				return count(evs, isRetrans) == len(c.drop)
			})
			evs = settle(tr, 50*time.Millisecond, evs)
			if n := count(evs, isDrop); n != len(c.drop) {
				t.Errorf("%d drops for NETFILTER_DROP, want %d\nall events:\n%s", n, len(c.drop), dump(evs))
			}
			first := evs[slices.IndexFunc(evs, isDrop)]
			if first.Src != p.clientAddr || first.Dst != p.serverAddr || first.Len != 10 || !first.Flags.Has(capture.ACK) {
				t.Errorf("first drop %s: want 10 bytes %s -> %s", first, p.clientAddr, p.serverAddr)
			}
			// The last retransmission is the one that got through.
			var last Event
			for _, e := range evs {
				if isRetrans(e) {
					last = e
				}
			}
			if last.Seq != first.Seq || last.End != first.Seq+10 {
				t.Errorf("retransmission %s: want seq %d-%d, the dropped segment's", last, first.Seq, first.Seq+10)
			}
			if last.Cause != c.cause {
				t.Errorf("retransmission %s: cause %s, want %s\nall events:\n%s", last, last.Cause, c.cause, dump(evs))
			}
		})
	}
}

// dropFlags installs in the namespace a rule that drops every TCP segment
// on its way in whose flags, masked with mask, are want; it returns the
// function that removes it.
func dropFlags(t *testing.T, s space, mask, want capture.Flags) func() {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(int(s.file.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	table := conn.AddTable(&nftables.Table{Name: "ktrace_test", Family: nftables.TableFamilyINet})
	accept := nftables.ChainPolicyAccept
	chain := conn.AddChain(&nftables.Chain{Name: "input", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{byte(mask)}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(want)}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := conn.Flush(); err != nil {
		t.Fatalf("nftables: %v", err)
	}
	removed := false
	remove := func() {
		if removed {
			return
		}
		removed = true
		conn.DelTable(table)
		if err := conn.Flush(); err != nil {
			t.Errorf("nftables: remove table: %v", err)
		}
	}
	t.Cleanup(remove)
	return remove
}

// TestStatesSimultaneousClose: when both ends shut down before either's
// FIN arrives (nftables drops FINs until both are sent), each goes
// FIN_WAIT_1 -> CLOSING when the other's FIN comes again, and to the
// timewait socket on the ACK of its own.
func TestStatesSimultaneousClose(t *testing.T) {
	s := newSpace(t)
	tr := openTracer(t, s.inode)
	p := connect(t, s)
	remove := dropFlags(t, s, capture.FIN, capture.FIN)
	if err := p.client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := p.server.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// Both FINs dropped: both ends are in FIN_WAIT_1.
	finDropped := func(evs []Event, from net.Addr) bool {
		return slices.ContainsFunc(evs, func(e Event) bool {
			return e.Kind == Drop && e.Flags.Has(capture.FIN) && e.Src == from.(*net.TCPAddr).AddrPort()
		})
	}
	evs := collect(t, tr, 5*time.Second, func(evs []Event) bool {
		return finDropped(evs, p.client.LocalAddr()) && finDropped(evs, p.server.LocalAddr())
	})
	remove()
	for _, c := range []*net.TCPConn{p.client, p.server} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read data, want EOF")
		}
		c.Close()
	}
	done := closedBoth(p)
	evs = append(evs, collect(t, tr, 5*time.Second, func(more []Event) bool { return done(append(evs, more...)) })...)
	want := []string{"ESTABLISHED>FIN_WAIT_1", "FIN_WAIT_1>CLOSING", "CLOSING>CLOSED"}
	for name, ck := range map[string]uint64{"client": p.clientCookie, "server": p.serverCookie} {
		got := changes(evs, ck)
		if len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
			t.Errorf("%s's state changes end %q, want %q\nall events:\n%s", name, got, want, dump(evs))
		}
	}
}

// TestRetransmitSYNACK: a listener whose SYN-ACK is lost sends it again,
// with the same sequence number, from the request socket's tuple.
func TestRetransmitSYNACK(t *testing.T) {
	s := newSpace(t)
	tr := openTracer(t, s.inode)
	remove := dropFlags(t, s, capture.SYN|capture.ACK, capture.SYN|capture.ACK)
	var ln *net.TCPListener
	s.do(t, func() (err error) {
		ln, err = net.ListenTCP("tcp", &net.TCPAddr{IP: lo4})
		return err
	})
	defer ln.Close()
	// A non-blocking connect, so that the socket is made in the
	// namespace and the SYN goes out before do returns.
	s.do(t, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		t.Cleanup(func() { unix.Close(fd) })
		err = unix.Connect(fd, &unix.SockaddrInet4{Port: ln.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}})
		if err != unix.EINPROGRESS {
			return fmt.Errorf("connect: %v, want EINPROGRESS", err)
		}
		return nil
	})
	isDrop := func(e Event) bool { return e.Kind == Drop && e.Flags == capture.SYN|capture.ACK }
	evs := collect(t, tr, 5*time.Second, func(evs []Event) bool { return slices.ContainsFunc(evs, isDrop) })
	remove()
	drop := evs[slices.IndexFunc(evs, isDrop)]
	isRetrans := func(e Event) bool { return e.Kind == RetransmitSYNACK }
	evs = collect(t, tr, 5*time.Second, func(evs []Event) bool { return slices.ContainsFunc(evs, isRetrans) })
	re := evs[slices.IndexFunc(evs, isRetrans)]
	// The client's SYN comes again, or the SYN-ACK did: it connects.
	collect(t, tr, 5*time.Second, func(more []Event) bool {
		return slices.ContainsFunc(append(evs, more...), func(e Event) bool {
			return e.Kind == StateChange && e.OldState == capture.SynSent && e.NewState == capture.Established
		})
	})
	if re.Src != drop.Src || re.Dst != drop.Dst || re.Seq != drop.Seq || re.Cause != CauseSYNACK || re.Flags != capture.SYN|capture.ACK {
		t.Errorf("SYN-ACK sent again: %s; want the dropped one, %s", re, drop)
	}
}

// TestDropByEstablishedSocket: a packet that an established socket drops
// (here for want of buffer: the server shrinks its receive buffer below
// the window it offered) is the namespace's, though TCP has cleared its
// device by then: the tracepoint names the receiving socket (Linux 6.12
// on), and the drop is traced with its reason.
func TestDropByEstablishedSocket(t *testing.T) {
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("skipping test; no kernel BTF: %v", err)
	}
	if n, ok := tracepointArgs(kernel, "kfree_skb"); !ok || n < 4 {
		t.Skipf("skipping test; this kernel's kfree_skb tracepoint names no receiving socket (%d arguments)", n)
	}
	s := newSpace(t)
	tr := openTracer(t, s.inode)
	p := connect(t, s)
	raw, err := p.server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) }); err != nil || serr != nil {
		t.Fatalf("SO_RCVBUF: %v %v", err, serr)
	}
	go func() {
		p.client.SetWriteDeadline(time.Now().Add(3 * time.Second))
		p.client.Write(make([]byte, 128<<10))
	}()
	isDrop := func(e Event) bool { return e.Kind == Drop && e.Dst == p.serverAddr && e.Src == p.clientAddr }
	evs := collect(t, tr, 3*time.Second, func(evs []Event) bool { return slices.IndexFunc(evs, isDrop) >= 0 })
	i := slices.IndexFunc(evs, isDrop)
	if i < 0 {
		t.Fatalf("no drop of the client's data at the server\nall events:\n%s", dump(evs))
	}
	if e := evs[i]; e.Reason != "PROTO_MEM" || e.Len == 0 {
		t.Errorf("first drop %s: want data dropped for PROTO_MEM", e)
	}
}
