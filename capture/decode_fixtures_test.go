package capture

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
)

var writeEncapFixtures = flag.Bool("encapfixtures", false, "TestEncapFixtures writes the encapsulation fixtures into testdata")

// fixtureSteps is the conversation of the encapsulation fixtures: a
// handshake, data with a lost segment, duplicate acks, a fast
// retransmission, a zero window and its update, then a close.
func fixtureSteps() []step {
	steps, _ := labelSteps()
	return append(steps,
		step{sc, ACK, 1, 301, 0, 509, nil, 0},
		step{cs, FIN | ACK, 301, 1, 0, 502, nil, 0},
		step{sc, FIN | ACK, 1, 302, 0, 509, nil, 0},
		step{cs, ACK, 302, 2, 0, 502, nil, 0},
	)
}

// encapFixture is a capture file of testdata made from built frames.
type encapFixture struct {
	name   string
	link   link
	frames func(t *testing.T) []capturedFrame
}

// convs returns the frames of conversations with fixtureSteps on the link,
// one a second, each with the tunnel stack and endpoints given.
func convs(l link, cs ...conv) func(t *testing.T) []capturedFrame {
	return func(t *testing.T) []capturedFrame {
		for i := range cs {
			cs[i].link, cs[i].steps = l, fixtureSteps()
			cs[i].start = testEpoch.Add(time.Duration(i) * time.Second)
		}
		return merge(t, 0, cs...)
	}
}

// client returns the test client of the family on another port.
func client(v6 bool, port uint16) netip.AddrPort {
	c, _ := endpoints(v6)
	return netip.AddrPortFrom(c.Addr(), port)
}

// encapFixtures are the fixtures of the link types and encapsulations that
// no capture here can make: the kernel of the test machine has no GRE, no
// MPLS, no VLAN, no PPP. Each holds fixtureSteps once per connection.
func encapFixtures() []encapFixture {
	v4, v6 := false, true
	_, s4 := endpoints(v4)
	c6, s6 := endpoints(v6)
	return []encapFixture{
		{"vlan-qinq.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunQinQ, tunVLAN}})},
		{"mpls.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunVLAN, tunMPLS}, client: c6, server: s6})},
		{"pppoe.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunPPPoE}})},
		{"llc-snap.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunLLC}})},
		{"gre.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunGRE}}, conv{encap: encap{tunGRE6}, client: c6, server: s6})},
		{"gre-teb.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunGRETEB, tunVLAN}, client: c6, server: s6})},
		{"erspan.pcap", linkEthernet, convs(linkEthernet,
			conv{encap: encap{tunERSPAN1}, client: client(v4, 40001), server: s4},
			conv{encap: encap{tunERSPAN2}, client: client(v4, 40002), server: s4},
			conv{encap: encap{tunERSPAN3}, client: client(v4, 40003), server: s4})},
		{"vxlan.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunVXLAN}})},
		{"geneve.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunGeneve}, client: c6, server: s6})},
		{"gtpu.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunVLAN, tunMPLS, tunGTPU}})},
		{"ip-in-ip.pcap", linkEthernet, convs(linkEthernet,
			conv{encap: encap{tunIPv4}, client: client(v4, 40001), server: s4},
			conv{encap: encap{tunIPv4}, client: client(v6, 40002), server: s6},
			conv{encap: encap{tunIPv6}, client: client(v6, 40003), server: s6},
			conv{encap: encap{tunIPv6}, client: client(v4, 40004), server: s4})},
		{"nested.pcap", linkEthernet, convs(linkEthernet,
			conv{encap: encap{tunQinQ, tunVLAN, tunMPLS, tunIPv4, tunGRETEB, tunVLAN, tunIPv6, tunVXLAN, tunVLAN}})},
		{"same-tuple.pcap", linkEthernet, sameTupleFrames},
		{"icmp-error.pcap", linkEthernet, icmpErrorFrames},
		{"ppp.pcap", linkPPP, convs(linkPPP, conv{}, conv{client: client(v6, 40001), server: s6})},
		{"ppp-hdlc.pcap", linkPPPHDLC, func(t *testing.T) []capturedFrame {
			// PPP in HDLC-like framing and Cisco HDLC share the link type.
			a := convs(linkPPPHDLC, conv{client: c6, server: s6})(t)
			b := convs(linkCiscoHDLC, conv{}, conv{client: client(v4, 40001), server: s4, encap: encap{tunMPLS}})(t)
			for i := range b {
				b[i].ci.Timestamp = b[i].ci.Timestamp.Add(5 * time.Second)
			}
			return append(a, b...)
		}},
		{"ppp-dir.pcap", linkPPPDir, convs(linkPPPDir, conv{}, conv{client: client(v6, 40001), server: s6})},
		{"fddi.pcap", linkFDDI, convs(linkFDDI, conv{}, conv{client: client(v6, 40001), server: s6})},
		{"nflog.pcap", linkNFLOG, convs(linkNFLOG, conv{}, conv{client: client(v6, 40001), server: s6})},
		{"ipoib.pcap", linkIPoIB, convs(linkIPoIB, conv{}, conv{client: client(v6, 40001), server: s6, encap: encap{tunIPv4}})},
		{"wlan.pcap", linkWLAN, convs(linkWLAN, conv{}, conv{client: client(v6, 40001), server: s6})},
		{"radiotap.pcap", linkRadiotap, convs(linkRadiotap, conv{}, conv{client: client(v6, 40001), server: s6, encap: encap{tunVLAN}})},
		{"ppi.pcap", linkPPI, convs(linkPPI, conv{}, conv{client: client(v6, 40001), server: s6})},
		{"fabricpath.pcap", linkEthernet, convs(linkEthernet,
			conv{encap: encap{tunFabricPath}, client: client(v4, 40001), server: s4},
			conv{encap: encap{tunFabricPath, tunVLAN}, client: client(v6, 40002), server: s6},
			conv{encap: encap{tunVLAN, tunFabricPath}, client: client(v4, 40003), server: s4})},
		{"etag.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunETag}}, conv{encap: encap{tunETag, tunVLAN}, client: client(v6, 40001), server: s6})},
		{"ah.pcap", linkEthernet, convs(linkEthernet,
			conv{ip: ipHeaders{ah: true}, client: client(v4, 40001), server: s4},
			conv{ip: ipHeaders{ah: true, v6Ext: true}, client: client(v6, 40002), server: s6})},
		{"ipcomp.pcap", linkEthernet, convs(linkEthernet,
			conv{ip: ipHeaders{ipcomp: true}, client: client(v4, 40001), server: s4},
			conv{ip: ipHeaders{ipcomp: true, v6Ext: true}, client: client(v6, 40002), server: s6},
			conv{ip: ipHeaders{ipcomp: true, ah: true}, client: client(v4, 40003), server: s4})},
		{"sll-ib.pcap", linkSLLIB, convs(linkSLLIB, conv{}, conv{client: client(v6, 40001), server: s6})},
		{"sll2-ib.pcap", linkSLL2IB, convs(linkSLL2IB, conv{}, conv{client: client(v6, 40001), server: s6})},
		{"chdlc.pcap", linkCHDLC, convs(linkCHDLC, conv{}, conv{client: client(v6, 40001), server: s6},
			conv{client: client(v4, 40002), server: s4, encap: encap{tunMPLS}})},
		{"arcnet.pcap", linkARCNET, convs(linkARCNET, conv{}, conv{client: client(v6, 40001), server: s6})},
		{"aruba-gre.pcap", linkEthernet, convs(linkEthernet, conv{encap: encap{tunAruba}}, conv{encap: encap{tunAruba}, client: c6, server: s6})},
		{"capwap.pcap", linkEthernet, convs(linkEthernet,
			conv{encap: encap{tunCAPWAP}, client: client(v4, 40001), server: s4},
			conv{encap: encap{tunCAPWAP3}, client: client(v6, 40002), server: s6})},
	}
}

// sameTupleFrames is one connection seen twice, in VLAN 10 and inside GRE,
// as a mirror port sees it before and after a router: one stream for
// tshark and tcplab.
func sameTupleFrames(t *testing.T) []capturedFrame {
	a := conv{link: linkEthernet, encap: encap{tunVLAN}, steps: fixtureSteps()}
	b := conv{link: linkEthernet, encap: encap{tunGRE}, steps: fixtureSteps(), start: testEpoch.Add(50 * time.Microsecond)}
	return merge(t, 0, a, b)
}

// icmpErrorFrames is a connection and three ICMP errors quoting TCP
// headers: a port unreachable quoting a SYN of another connection, before
// that connection is seen (tshark gives it a stream number); a
// fragmentation needed quoting a data segment of the connection; an ICMPv6
// packet too big quoting an IPv6 segment. None is a segment.
func icmpErrorFrames(t *testing.T) []capturedFrame {
	c := conv{link: linkEthernet, steps: fixtureSteps()}
	frames := c.frames(t, 0)
	at := func(i int) time.Time { return frames[i].ci.Timestamp.Add(time.Microsecond) }
	other := seg{link: linkRaw, src: client(false, 50000), dst: netip.MustParseAddrPort("10.0.0.3:81"), flags: SYN, seq: 77, win: 64240, opts: synOptions()}.frame(t)
	data := seg{link: linkRaw, src: client4, dst: server4, flags: PSH | ACK, seq: defaultClientISN + 1, ack: defaultServerISN + 1, win: 502, len: 100}.frame(t)
	v6 := seg{link: linkRaw, src: client6, dst: server6, flags: PSH | ACK, seq: 5, ack: 6, win: 502, len: 1300}.frame(t)
	icmp := func(packet []byte, v6 bool, ts time.Time) capturedFrame {
		n := nextIPv4
		if v6 {
			n = nextIPv6
		}
		return captured(serialize(t, append([]gopacket.SerializableLayer{ethernet(n)}, icmpError(t, packet, v6)...)...), ts, 0)
	}
	out := []capturedFrame{icmp(other, false, testEpoch.Add(-time.Millisecond))}
	out = append(out, frames[:4]...)
	out = append(out, icmp(data, false, at(3)))
	out = append(out, frames[4:8]...)
	out = append(out, icmp(v6, true, at(7)))
	return append(out, frames[8:]...)
}

// TestEncapFixtures checks that the encapsulation fixtures in testdata are
// the ones the builders make; -encapfixtures writes them.
func TestEncapFixtures(t *testing.T) { checkBuilt(t, encapFixtures(), "TestEncapFixtures") }

// checkBuilt checks that each fixture in testdata is what its builder
// makes, or with -encapfixtures writes it; test names the test that does,
// for the message.
func checkBuilt(t *testing.T, fixtures []encapFixture, test string) {
	t.Helper()
	for _, f := range fixtures {
		want := pcapBytes(t, f.link.linkType(), f.frames(t))
		path := filepath.Join("testdata", f.name)
		if *writeEncapFixtures {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (make it with go test ./capture -run %s -encapfixtures)", err, test)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the builders make (%d bytes, want %d); re-make it with -encapfixtures", path, len(got), len(want))
		}
	}
}

// TestEncapFixturesSegments walks each encapsulation fixture: every frame
// but the ICMP errors is a segment, between the inner addresses, and every
// connection closes.
func TestEncapFixturesSegments(t *testing.T) {
	for _, f := range encapFixtures() {
		t.Run(f.name, func(t *testing.T) {
			frames := f.frames(t)
			got, a := walkFrames(t, f.link.linkType(), frames)
			icmps := 0
			if f.name == "icmp-error.pcap" {
				icmps = 3
			}
			if len(got) != len(frames)-icmps {
				t.Errorf("%d segments in %d frames, want %d", len(got), len(frames), len(frames)-icmps)
			}
			inner := []netip.Addr{client4.Addr(), server4.Addr(), client6.Addr(), server6.Addr()}
			for _, g := range got {
				if !slices.Contains(inner, g.seg.Src.Addr()) || !slices.Contains(inner, g.seg.Dst.Addr()) {
					t.Errorf("frame %d: %v > %v, want inner addresses", g.seg.Frame, g.seg.Src, g.seg.Dst)
				}
			}
			for _, c := range a.Conns() {
				if c.ClientState != TimeWait || c.ServerState != Closed {
					t.Errorf("%s: want TIME_WAIT/CLOSED", Summary(&c))
				}
			}
		})
	}
}
