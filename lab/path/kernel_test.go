package path

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"

	"github.com/vishvananda/netlink"
)

func TestChoose(t *testing.T) {
	all := Qdiscs{Netem: true, TBF: true, HTB: true}
	noNetem := Qdiscs{TBF: true, HTB: true}
	tests := []struct {
		path string
		q    Qdiscs
		want Mechanism
	}{
		{"", all, None},
		{"", Qdiscs{}, None},
		{"delay=20ms", all, Netem},
		{"rate=10mbit", all, Netem},
		{"rate=10mbit", noNetem, TBF},
		{"c2s:rate=10mbit,s2c:rate=1mbit", noNetem, TBF},
		{"rate=10mbit", Qdiscs{}, TUNLine},
		{"rate=10mbit,loss=1%", noNetem, TUNLine},
		{"delay=20ms", noNetem, TUNLine},
		{"s2c:duplicate=1%", Qdiscs{HTB: true}, TUNLine},
	}
	for _, tt := range tests {
		p, err := Parse(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := Choose(p, tt.q); got != tt.want {
			t.Errorf("Choose(%q, %+v) = %s, want %s", tt.path, tt.q, got, tt.want)
		}
	}
}

// vethLab joins a client namespace and a server namespace with a veth
// pair, tcplab0 on each side, addressed as the line's devices are.
func vethLab(tb testing.TB) *lab {
	tb.Helper()
	l := &lab{client: testenv.NewNetNS(tb), server: testenv.NewNetNS(tb)}
	err := netns.Enter(l.client, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tcplab0"}, PeerName: "tcplab1"}); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("tcplab1")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetNsFd(peer, int(l.server.Fd())); err != nil {
			return err
		}
		return configure(Endpoint{Name: "tcplab0", Addrs: []netip.Prefix{clientAddr}}, DefaultMTU)
	})
	if err == nil {
		err = netns.Enter(l.server, func() error {
			peer, err := netlink.LinkByName("tcplab1")
			if err != nil {
				return err
			}
			if err := netlink.LinkSetName(peer, "tcplab0"); err != nil {
				return err
			}
			return configure(Endpoint{Name: "tcplab0", Addrs: []netip.Prefix{serverAddr}}, DefaultMTU)
		})
	}
	if err != nil {
		tb.Fatalf("veth between two namespaces: %v", err)
	}
	return l
}

// rootQdisc returns the kind of the root qdisc of tcplab0 in ns.
func rootQdisc(tb testing.TB, ns *os.File) string {
	tb.Helper()
	var kind string
	err := netns.Enter(ns, func() error {
		link, err := netlink.LinkByName("tcplab0")
		if err != nil {
			return err
		}
		qs, err := netlink.QdiscList(link)
		for _, q := range qs {
			if q.Attrs().Parent == netlink.HANDLE_ROOT {
				kind = q.Type()
			}
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return kind
}

// TestProbe: what Probe reports is what the Apply functions find, and
// Probe leaves the interface's qdisc as it was.
func TestProbe(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	l := vethLab(t)
	before := rootQdisc(t, l.client)
	q, err := Probe(l.client, "tcplab0")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel offers %+v; root qdisc %q", q, before)
	if after := rootQdisc(t, l.client); after != before {
		t.Errorf("root qdisc %q after Probe, %q before", after, before)
	}
	for _, tt := range []struct {
		name  string
		has   bool
		apply func() error
	}{
		{"netem", q.Netem, func() error { return ApplyNetem(l.client, "tcplab0", Conditions{Delay: time.Millisecond}) }},
		{"tbf", q.TBF, func() error { return ApplyTBF(l.client, "tcplab0", 10_000_000) }},
	} {
		err := tt.apply()
		switch {
		case tt.has && err != nil:
			t.Errorf("Probe says the kernel has %s, but applying it: %v", tt.name, err)
		case !tt.has && !errors.Is(err, ErrUnsupported):
			t.Errorf("Probe says the kernel has no %s, but applying it: %v; want ErrUnsupported", tt.name, err)
		case tt.has:
			if got := rootQdisc(t, l.client); got != tt.name {
				t.Errorf("root qdisc %q after applying %s", got, tt.name)
			}
			if err := RemoveQdisc(l.client, "tcplab0"); err != nil {
				t.Error(err)
			}
			if got := rootQdisc(t, l.client); got != before {
				t.Errorf("root qdisc %q after RemoveQdisc, want %q", got, before)
			}
		}
	}
}

// TestKernelPath: the mechanism Choose picks for this kernel, when it is a
// qdisc, makes the path's conditions on a veth LAN with real TCP. A path
// that needs the TUN line here is covered by the TestLine tests.
func TestKernelPath(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	tests := []struct {
		path  string
		check func(t *testing.T, l *lab)
	}{
		{"rate=10mbit", func(t *testing.T, l *lab) {
			// The receiver counts TCP payload: 1448 bytes of each
			// 1514-byte Ethernet frame, which is what a qdisc counts.
			// tbf guarantees the ceiling. Below it, one TCP flow halves
			// its window at each drop of tbf's short queue, and leaves the
			// link idle for a while when its peers wait for a CPU: 86% of
			// the rate was measured beside a loaded machine's tests. A
			// rate shaped to half or not at all still fails.
			got, want := bulk(t, l), 10e6*1448/1514
			t.Logf("goodput %.2f Mbit/s, want %.2f, from -25%% to +10%%", got/1e6, want/1e6)
			if got < 0.75*want || got > 1.1*want {
				t.Errorf("goodput %.2f Mbit/s, want %.2f Mbit/s, from -25%% to +10%%", got/1e6, want/1e6)
			}
		}},
		{"delay=20ms", func(t *testing.T, l *lab) {
			ln := l.listenTCP(t, 8000)
			_, took := l.dialTCP(t, 8000)
			if s, err := ln.Accept(); err == nil {
				s.Close()
			}
			t.Logf("connect took %v", took)
			if took < 40*time.Millisecond || took > time.Second {
				t.Errorf("connect took %v, want the RTT 40ms, at most 1s more", took)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			l := vethLab(t)
			q, err := Probe(l.client, "tcplab0")
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			m := Choose(p, q)
			t.Logf("kernel offers %+v: %s", q, m)
			for _, side := range []struct {
				ns *os.File
				c  Conditions
			}{{l.client, p.C2S}, {l.server, p.S2C}} {
				switch m {
				case Netem:
					err = ApplyNetem(side.ns, "tcplab0", side.c)
				case TBF:
					err = ApplyTBF(side.ns, "tcplab0", side.c.Rate)
				default:
					t.Skipf("skipping test; this kernel needs the %s for %q (TestLine* cover it)", m, tt.path)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			tt.check(t, l)
		})
	}
}
