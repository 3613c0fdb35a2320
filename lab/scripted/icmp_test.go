package scripted_test

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/lab/scripted"
)

// sum16 is the folded one's complement sum of b's 16-bit words: 0xffff
// over a header or message whose checksum is right.
func sum16(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// An ICMP message is laid out as the kernel reads it (RFC 792, RFC 4443,
// RFC 1191): the peer's IP header to the kernel, the type, code and MTU,
// a right checksum (ICMPv6's over its pseudo header), and the quoted
// segment from the kernel to the peer with its ports and sequence
// number, its IP length counting Len bytes of payload, as packetdrill
// quotes.
func TestICMPFrame(t *testing.T) {
	v4 := [2]netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:8080"), netip.MustParseAddrPort("192.168.0.1:40000")}
	v6 := [2]netip.AddrPort{netip.MustParseAddrPort("[fd3d::2]:8080"), netip.MustParseAddrPort("[fd3d::1]:40000")}
	for _, tc := range []struct {
		name  string
		ends  [2]netip.AddrPort
		m     scripted.ICMP
		ipLen int
	}{
		{"v4 frag needed", v4, scripted.ICMP{Type: 3, Code: 4, MTU: 1200, Seq: 1, Len: 1460}, 20},
		{"v4 no payload", v4, scripted.ICMP{Type: 3, Code: 1}, 20},
		{"v6 packet too big", v6, scripted.ICMP{Type: 2, MTU: 1280, Seq: 1, Len: 1440}, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, kernel := tc.ends[0], tc.ends[1]
			const isn = 0xfffffff0
			b, err := scripted.ICMPFrame(peer, kernel, isn+tc.m.Seq, tc.m, 7, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.ipLen + 8 + tc.ipLen + 8 + tc.m.Len
			if len(b) != want {
				t.Fatalf("%d bytes, want %d", len(b), want)
			}
			outer, msg := b[:tc.ipLen], b[tc.ipLen:]
			quoted, l4 := msg[8:8+tc.ipLen], msg[8+tc.ipLen:]
			var pseudo []byte
			if tc.ipLen == 20 {
				if outer[9] != 1 || sum16(outer) != 0xffff || int(binary.BigEndian.Uint16(outer[2:])) != len(b) {
					t.Errorf("outer IPv4 header %x: want protocol 1, total length %d, a right checksum", outer, len(b))
				}
				if quoted[9] != 6 || int(binary.BigEndian.Uint16(quoted[2:])) != 20+20+tc.m.Len || sum16(quoted) != 0xffff {
					t.Errorf("quoted IPv4 header %x: want TCP, total length %d, a right checksum", quoted, 40+tc.m.Len)
				}
				if got := uint32(binary.BigEndian.Uint16(msg[6:])); got != tc.m.MTU {
					t.Errorf("MTU %d, want %d", got, tc.m.MTU)
				}
				if !equalAddr(outer[12:16], peer) || !equalAddr(outer[16:20], kernel) || !equalAddr(quoted[12:16], kernel) || !equalAddr(quoted[16:20], peer) {
					t.Errorf("addresses: outer %x, quoted %x: want peer to kernel, quoting kernel to peer", outer[12:20], quoted[12:20])
				}
			} else {
				if outer[6] != 58 || int(binary.BigEndian.Uint16(outer[4:])) != len(msg) {
					t.Errorf("outer IPv6 header %x: want next header 58, payload %d", outer, len(msg))
				}
				if quoted[6] != 6 || int(binary.BigEndian.Uint16(quoted[4:])) != 20+tc.m.Len {
					t.Errorf("quoted IPv6 header %x: want TCP, payload %d", quoted, 20+tc.m.Len)
				}
				if got := binary.BigEndian.Uint32(msg[4:]); got != tc.m.MTU {
					t.Errorf("MTU %d, want %d", got, tc.m.MTU)
				}
				if !equalAddr(outer[8:24], peer) || !equalAddr(outer[24:40], kernel) || !equalAddr(quoted[8:24], kernel) || !equalAddr(quoted[24:40], peer) {
					t.Errorf("addresses: outer %x, quoted %x: want peer to kernel, quoting kernel to peer", outer[8:40], quoted[8:40])
				}
				pseudo = append(append(append([]byte{}, outer[8:40]...), binary.BigEndian.AppendUint32(nil, uint32(len(msg)))...), 0, 0, 0, 58)
			}
			if msg[0] != tc.m.Type || msg[1] != tc.m.Code {
				t.Errorf("type %d code %d, want %d %d", msg[0], msg[1], tc.m.Type, tc.m.Code)
			}
			if sum16(append(pseudo, msg...)) != 0xffff {
				t.Errorf("ICMP checksum %#04x is wrong", binary.BigEndian.Uint16(msg[2:]))
			}
			if binary.BigEndian.Uint16(l4) != kernel.Port() || binary.BigEndian.Uint16(l4[2:]) != peer.Port() || binary.BigEndian.Uint32(l4[4:]) != isn+tc.m.Seq {
				t.Errorf("quoted TCP %x: want ports %d > %d, seq %#x", l4[:8], kernel.Port(), peer.Port(), isn+tc.m.Seq)
			}
			if len(l4) != 8+tc.m.Len {
				t.Errorf("%d bytes quoted after the IP header, want 8 and %d of payload", len(l4), tc.m.Len)
			}
		})
	}
	for _, tc := range []struct {
		name       string
		peer, kern netip.AddrPort
		m          scripted.ICMP
		want       string
	}{
		{"two families", v4[0], v6[1], scripted.ICMP{Type: 3}, "two families"},
		{"v4 MTU over 16 bits", v4[0], v4[1], scripted.ICMP{Type: 3, Code: 4, MTU: 70000}, "16 bits"},
		{"negative length", v4[0], v4[1], scripted.ICMP{Type: 3, Len: -1}, "quoted length"},
		{"too long", v6[0], v6[1], scripted.ICMP{Type: 2, Len: 65500}, "quoted length"},
	} {
		if _, err := scripted.ICMPFrame(tc.peer, tc.kern, 1, tc.m, 0, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one that says %q", tc.name, err, tc.want)
		}
	}
}

func equalAddr(b []byte, a netip.AddrPort) bool { return string(b) == string(a.Addr().AsSlice()) }

// RFC 1191 and RFC 9293 3.7.2: a Fragmentation Needed that quotes a
// segment the kernel has not seen acknowledged lowers the path MTU, and
// the kernel sends the segment again at once in pieces that fit (MSS
// 1200 - 40); one that quotes a sequence number outside what is in
// flight is ignored (RFC 5927 4.1), and the segment goes again whole,
// only when its retransmission timer fires.
func TestICMPFragNeeded(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	for _, veth := range []bool{false, true} {
		t.Run(map[bool]string{false: "tun", true: "veth"}[veth], func(t *testing.T) { fragNeeded(t, veth) })
	}
}

// fragNeeded is TestICMPFragNeeded's script, on a peer behind a TUN
// device or a veth pair.
func fragNeeded(t *testing.T, veth bool) {
	// One peer: each case's connection has a port of its own. The path
	// MTU the kernel learns outlasts a connection (it is the route's):
	// the message it must ignore comes first.
	p := startWith(t, scripted.Config{Veth: veth})
	for _, tc := range []struct {
		name   string
		seq    uint32
		resend []int
		after  time.Duration // the earliest the resend may come
	}{
		{"not in flight", 5000, []int{1460}, 150 * time.Millisecond},
		{"in flight", 1, []int{1160, 300}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, c := handshake(t, p, scripted.Options{MSS: scripted.Uint16(1460)}, scripted.DefaultWindow)
			write(t, c, strings.Repeat("x", 1460))
			conn.Expect(t, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Len: scripted.Int(1460)}, time.Second)
			sent, err := conn.TrySendICMP(scripted.ICMP{Type: scripted.ICMPv4Unreachable, Code: scripted.ICMPv4FragNeeded, MTU: 1200, Seq: tc.seq, Len: 1460})
			if err != nil {
				t.Fatal(err)
			}
			seq := uint32(1)
			var first scripted.Segment
			for i, n := range tc.resend {
				got := conn.Expect(t, scripted.TCP{Seq: scripted.Uint32(seq), Len: scripted.Int(n)}, time.Second)
				if i == 0 {
					first = got
				}
				seq += uint32(n)
			}
			if tc.after > 0 {
				if gap := first.At.Sub(sent); gap < tc.after {
					t.Errorf("resent %v after the ICMP message, want its retransmission timer (200 ms or more)", gap)
				}
			}
			conn.Send(t, scripted.TCP{Flags: scripted.ACK})
			// Closed with a RST, the kernel's socket frees its ports
			// for the next peer's first connection.
			c.SetLinger(0)
		})
	}
}
