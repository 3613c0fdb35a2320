package capture

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// fragSegment is the data segment the fragment tests cut up: 32 bytes of
// TCP header and 200 of payload, 232 bytes behind the IP header.
func fragSegment(src, dst netip.AddrPort) seg {
	return seg{link: linkRaw, src: src, dst: dst, flags: PSH | ACK, seq: 1, ack: 2, win: 3, len: 200,
		opts: []layers.TCPOption{optNOP(), optNOP(), optTS(1, 2)}}
}

// Cuts of the 232 bytes behind the IP header of fragSegment.
var (
	cutA    = fragCut{off: 0, n: 64}
	cutB    = fragCut{off: 64, n: 64}
	cutC    = fragCut{off: 128, n: -1}
	cutBC   = fragCut{off: 64, n: -1}
	cutAAck = fragCut{off: 0, n: 64, flipFrom: 8, flipTo: 12}   // the ack number inverted
	cutAck  = fragCut{off: 8, n: 56, flipFrom: 8, flipTo: 12}   // from the ack number on, the ack inverted
	cutPay  = fragCut{off: 64, n: 64, flipFrom: 64, flipTo: 72} // payload bytes inverted
)

// TestDecodeFragments cuts a TCP segment into IP fragments, sends them in
// various orders over Ethernet, IPv4 and IPv6, and checks that only the
// fragment that completes the datagram yields a segment: the one the
// whole packet gives, flagged FragmentOverlap when fragments disagree.
func TestDecodeFragments(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cuts     []fragCut
		complete bool // the last fragment completes the datagram
		overlap  bool
	}{
		{"in-order", []fragCut{cutA, cutB, cutC}, true, false},
		{"reverse", []fragCut{cutC, cutB, cutA}, true, false},
		{"first-last-middle", []fragCut{cutA, cutC, cutB}, true, false},
		{"two-fragments", []fragCut{cutBC, cutA}, true, false},
		{"duplicate", []fragCut{cutA, cutA, cutBC}, true, false},
		{"duplicate-of-the-last", []fragCut{cutC, cutA, cutC, cutB}, true, false},
		{"overlap-first-wins", []fragCut{cutA, cutAAck, cutBC}, true, true},
		{"overlap-lower-offset-wins", []fragCut{cutAck, cutA, cutBC}, true, true},
		{"overlap-in-payload", []fragCut{cutA, cutB, cutPay, cutC}, true, true},
		{"missing-middle", []fragCut{cutA, cutC}, false, false},
		{"missing-first", []fragCut{cutB, cutC}, false, false},
	} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v6=%v", tc.name, v6), func(t *testing.T) {
				src, dst := endpoints(v6)
				packet := fragSegment(src, dst).frame(t)
				var want Segment
				if !mustDecoder(t, linkEthernet).Decode(onEthernet(t, packet), &want) {
					t.Fatal("the whole packet decodes to no segment")
				}
				if tc.overlap {
					want.Problem = FragmentOverlap
				}
				d := mustDecoder(t, linkEthernet)
				frags := fragmentPacket(t, packet, 0x4242, tc.cuts...)
				for i, f := range frags {
					var got Segment
					ok := d.Decode(onEthernet(t, f), &got)
					last := i == len(frags)-1
					if ok != (last && tc.complete) {
						t.Fatalf("fragment %d of %d: Decode = %v", i+1, len(frags), ok)
					}
					if ok {
						if diff := segmentDiff(got, want); diff != "" {
							t.Errorf("reassembled segment differs:%s", diff)
						}
					}
				}
			})
		}
	}
}

// TestDecodeFragmentsInTunnels reassembles fragments of the packet inside
// a tunnel, and a tunnel packet fragmented itself: the segment is the
// inner one either way.
func TestDecodeFragmentsInTunnels(t *testing.T) {
	for _, outer6 := range []bool{false, true} {
		for _, inner6 := range []bool{false, true} {
			src, dst := endpoints(inner6)
			packet := fragSegment(src, dst).frame(t)
			proto := layers.IPProtocolIPv4
			if inner6 {
				proto = layers.IPProtocolIPv6
			}
			wrap := func(p []byte) []byte {
				ip, _, _ := outerIP(outer6, false, proto)
				return serialize(t, ip, gopacket.Payload(p))
			}
			var want Segment
			if !mustDecoder(t, linkEthernet).Decode(onEthernet(t, wrap(packet)), &want) {
				t.Fatal("the whole packet decodes to no segment")
			}
			t.Run(fmt.Sprintf("inner-fragments/outer6=%v/inner6=%v", outer6, inner6), func(t *testing.T) {
				d := mustDecoder(t, linkEthernet)
				frags := fragmentPacket(t, packet, 7, cutC, cutA, cutB)
				for i, f := range frags {
					var got Segment
					if ok := d.Decode(onEthernet(t, wrap(f)), &got); ok != (i == 2) {
						t.Fatalf("fragment %d: Decode = %v", i+1, ok)
					} else if ok && got != want {
						t.Errorf("got %+v, want %+v", got, want)
					}
				}
			})
			t.Run(fmt.Sprintf("outer-fragments/outer6=%v/inner6=%v", outer6, inner6), func(t *testing.T) {
				d := mustDecoder(t, linkEthernet)
				// The outer payload is the inner packet: 20 or 40 bytes more.
				frags := fragmentPacket(t, wrap(packet), 9, fragCut{off: 0, n: 48}, fragCut{off: 48, n: -1})
				for i, f := range frags {
					var got Segment
					if ok := d.Decode(onEthernet(t, f), &got); ok != (i == 1) {
						t.Fatalf("fragment %d: Decode = %v", i+1, ok)
					} else if ok && got != want {
						t.Errorf("got %+v, want %+v", got, want)
					}
				}
			})
		}
	}
}

// TestDecodeFragmentsBothLevels fragments the inner packet and then each
// tunnel packet carrying a fragment: the frame that completes the last
// outer datagram completes the inner one too.
func TestDecodeFragmentsBothLevels(t *testing.T) {
	packet := fragSegment(client4, server4).frame(t)
	var want Segment
	mustDecoder(t, linkRaw).Decode(packet, &want)
	d := mustDecoder(t, linkRaw)
	var frames [][]byte
	for i, inner := range fragmentPacket(t, packet, 1, cutA, cutBC) {
		ip, _, _ := outerIP(false, false, layers.IPProtocolIPv4)
		tunnel := serialize(t, ip, gopacket.Payload(inner))
		frames = append(frames, fragmentPacket(t, tunnel, uint32(100+i), fragCut{off: 0, n: 40}, fragCut{off: 40, n: -1})...)
	}
	for i, f := range frames {
		var got Segment
		if ok := d.Decode(f, &got); ok != (i == len(frames)-1) {
			t.Fatalf("frame %d: Decode = %v", i+1, ok)
		} else if ok && got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}

// TestDecodeFragmentKeys checks what tells datagrams apart: the VLAN ID
// counts for private IPv4 addresses only, as in Wireshark, and the
// identification always.
func TestDecodeFragmentKeys(t *testing.T) {
	public := [2]netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:40000"), netip.MustParseAddrPort("198.51.100.20:80")}
	for _, tc := range []struct {
		name       string
		src, dst   netip.AddrPort
		vlans      [2]uint16
		ids        [2]uint32
		reassemble bool
	}{
		{"private-same-vlan", client4, server4, [2]uint16{10, 10}, [2]uint32{1, 1}, true},
		{"private-two-vlans", client4, server4, [2]uint16{10, 20}, [2]uint32{1, 1}, false},
		{"public-two-vlans", public[0], public[1], [2]uint16{10, 20}, [2]uint32{1, 1}, true},
		{"ipv6-two-vlans", client6, server6, [2]uint16{10, 20}, [2]uint32{1, 1}, true},
		{"two-ids", client4, server4, [2]uint16{10, 10}, [2]uint32{1, 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			packet := fragSegment(tc.src, tc.dst).frame(t)
			d := mustDecoder(t, linkEthernet)
			for i, cut := range []fragCut{cutA, cutBC} {
				f := fragmentPacket(t, packet, tc.ids[i], cut)[0]
				n := nextIPv4
				if tc.src.Addr().Is6() {
					n = nextIPv6
				}
				frame := serialize(t, ethernet(nextVLAN), &layers.Dot1Q{VLANIdentifier: tc.vlans[i], Type: n.etherType()}, gopacket.Payload(f))
				var s Segment
				if ok := d.Decode(frame, &s); ok != (i == 1 && tc.reassemble) {
					t.Fatalf("fragment %d: Decode = %v", i+1, ok)
				}
			}
		})
	}
}

// TestDecodeFragmentCut checks fragments the snap length cut: like
// Wireshark, tcplab does not reassemble them; a first IPv4 fragment is
// decoded as it stands, with the length its header gives, and nothing else
// is.
func TestDecodeFragmentCut(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		src, dst := endpoints(v6)
		packet := fragSegment(src, dst).frame(t)
		frags := fragmentPacket(t, packet, 3, cutA, cutBC)
		d := mustDecoder(t, linkEthernet)
		first := onEthernet(t, frags[0])
		var s Segment
		ok := d.DecodeFrame(first[:len(first)-10], gopacket.CaptureInfo{Timestamp: testEpoch, CaptureLength: len(first) - 10, Length: len(first)}, &s)
		if ok != !v6 || ok && (s.Len != 64-32 || s.Seq != 1 || s.Problem != NoProblem) {
			t.Errorf("v6=%v: cut first fragment: Decode = %v, %+v", v6, ok, s)
		}
		if d.Decode(onEthernet(t, frags[1]), &s) {
			t.Errorf("v6=%v: the cut first fragment was held: the last one completes a datagram", v6)
		}
	}
}

// TestWalkFragments checks Walk's counts and the frame a reassembled
// segment belongs to, and that capture time times fragments out.
func TestWalkFragments(t *testing.T) {
	for _, tc := range []struct {
		name string
		gap  time.Duration
		want Counts
	}{
		{"in-time", 29 * time.Second, Counts{Frames: 3, TCP: 1, Skipped: 2, Fragments: 2}},
		{"timed-out", 31 * time.Second, Counts{Frames: 3, Skipped: 3, Fragments: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			packet := fragSegment(client4, server4).frame(t)
			var frames []capturedFrame
			at := testEpoch
			for _, f := range fragmentPacket(t, packet, 5, cutA, cutB, cutC) {
				frames = append(frames, captured(onEthernet(t, f), at, 0))
				at = at.Add(tc.gap / 2)
			}
			var tcp []int
			n, err := Walk(&frameSource{lt: layers.LinkTypeEthernet, frames: frames}, NewAnnotator(), func(p *Packet) error {
				if p.TCP {
					tcp = append(tcp, p.Segment.Frame)
				}
				return nil
			})
			if err != nil || n != tc.want {
				t.Fatalf("Walk = %+v, %v; want %+v", n, err, tc.want)
			}
			if tc.want.TCP == 1 && (len(tcp) != 1 || tcp[0] != 3) {
				t.Errorf("segments in frames %v, want [3]", tcp)
			}
		})
	}
}

// TestDecodeFragmentsAllocs checks that reassembling datagram after
// datagram allocates nothing once the decoder is warm.
func TestDecodeFragmentsAllocs(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		src, dst := endpoints(v6)
		var frames [][]byte
		for _, f := range fragmentPacket(t, fragSegment(src, dst).frame(t), 11, cutC, cutA, cutB) {
			frames = append(frames, onEthernet(t, f))
		}
		d := mustDecoder(t, linkEthernet)
		var s Segment
		one := func() {
			for i, f := range frames {
				if d.Decode(f, &s) != (i == 2) {
					t.Fatalf("fragment %d", i+1)
				}
			}
		}
		one()
		if a := testing.AllocsPerRun(100, one); a != 0 {
			t.Errorf("v6=%v: a datagram of three fragments allocates %.1f times, want 0", v6, a)
		}
	}
}
