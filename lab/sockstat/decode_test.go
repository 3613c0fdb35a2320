package sockstat

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// tcpInfoBytes is a struct tcp_info of n bytes as a kernel whose struct
// has that length sends it: the fields it has set to the values below
// (those of a connection on a 40 ms path after a bulk send), cut at n.
func tcpInfoBytes(n int) []byte {
	b := make([]byte, 280)
	ne := binary.NativeEndian
	b[0] = byte(Established)
	b[1] = byte(CARecovery)
	b[5] = byte(OptTimestamps | OptSACK | OptWScale)
	b[6] = 7 | 9<<4               // snd_wscale 7, rcv_wscale 9
	b[7] = 1                      // delivery_rate_app_limited
	ne.PutUint32(b[8:], 204000)   // rto, us
	ne.PutUint32(b[12:], 40000)   // ato, us
	ne.PutUint32(b[16:], 1448)    // snd_mss
	ne.PutUint32(b[24:], 12)      // unacked
	ne.PutUint32(b[56:], 3)       // last_ack_recv, ms
	ne.PutUint32(b[68:], 40125)   // rtt, us
	ne.PutUint32(b[72:], 1500)    // rttvar, us
	ne.PutUint32(b[76:], 20)      // snd_ssthresh
	ne.PutUint32(b[80:], 24)      // snd_cwnd
	ne.PutUint32(b[100:], 2)      // total_retrans
	ne.PutUint64(b[104:], 125000) // pacing_rate, bytes/s
	ne.PutUint64(b[120:], 1<<20+1)
	ne.PutUint32(b[148:], 40010) // min_rtt, us
	ne.PutUint64(b[168:], 90000) // busy_time, us
	ne.PutUint64(b[200:], 1<<20+2896)
	ne.PutUint32(b[216:], 1)       // dsack_dups
	ne.PutUint32(b[228:], 3145728) // snd_wnd
	ne.PutUint16(b[240:], 1)       // total_rto
	ne.PutUint32(b[244:], 205)     // total_rto_time, ms
	ne.PutUint32(b[248:], 99)      // received_ce (6.10), beyond TCPInfo
	return b[:n]
}

// TestDecodeTCPInfo decodes tcp_info of the lengths kernels have sent:
// the fields a kernel did not have are zero.
func TestDecodeTCPInfo(t *testing.T) {
	for _, c := range []struct {
		n    int
		what string
	}{
		{104, "Linux 2.6 to 3.14: through total_retrans"},
		{120, "3.15: pacing rates"},
		{160, "4.6: notsent_bytes, min_rtt, data_segs"},
		{192, "4.10: busy, rwnd_limited, sndbuf_limited"},
		{224, "4.19: bytes_sent, bytes_retrans, dsack_dups, reord_seen"},
		{232, "5.4: rcv_ooopack, snd_wnd"},
		{248, "6.7: total_rto"},
		{280, "6.18: AccECN counters, which TCPInfo ignores"},
	} {
		got := DecodeTCPInfo(tcpInfoBytes(c.n))
		has := func(off int) bool { return c.n > off }
		want := TCPInfo{
			Len: c.n, State: Established, CAState: CARecovery,
			Options: OptTimestamps | OptSACK | OptWScale, SndWScale: 7, RcvWScale: 9,
			DeliveryRateAppLimited: true,
			RTO:                    204 * time.Millisecond, ATO: 40 * time.Millisecond, SndMSS: 1448, Unacked: 12,
			LastAckRecv: 3 * time.Millisecond, RTT: 40125 * time.Microsecond, RTTVar: 1500 * time.Microsecond,
			SndSsthresh: 20, SndCwnd: 24, TotalRetrans: 2,
		}
		if has(104) {
			want.PacingRate = 125000
		}
		if has(120) {
			want.BytesAcked = 1<<20 + 1
		}
		if has(148) {
			want.MinRTT = 40010 * time.Microsecond
		}
		if has(168) {
			want.BusyTime = 90 * time.Millisecond
		}
		if has(200) {
			want.BytesSent = 1<<20 + 2896
		}
		if has(216) {
			want.DSACKDups = 1
		}
		if has(228) {
			want.SndWnd = 3145728
		}
		if has(240) {
			want.TotalRTO = 1
			want.TotalRTOTime = 205 * time.Millisecond
		}
		if got != want {
			t.Errorf("%d bytes (%s):\n got %+v\nwant %+v", c.n, c.what, got, want)
		}
	}
}

// diagMessage builds the payload of one SOCK_DIAG_BY_FAMILY answer as
// the kernel does: struct inet_diag_msg, then the attributes, each
// padded to 4 bytes.
func diagMessage(family uint8, state State, local, remote netip.AddrPort, rq, wq uint32, attrs map[uint16][]byte) []byte {
	ne := binary.NativeEndian
	b := make([]byte, sizeofDiagMsg)
	b[0], b[1], b[2], b[3] = family, byte(state), byte(TimerOn), 2
	binary.BigEndian.PutUint16(b[4:], local.Port())
	binary.BigEndian.PutUint16(b[6:], remote.Port())
	l, r := local.Addr().AsSlice(), remote.Addr().AsSlice()
	copy(b[8:24], l)
	copy(b[24:40], r)
	ne.PutUint32(b[40:], 0)          // if
	ne.PutUint32(b[44:], 0x89abcdef) // cookie, low half
	ne.PutUint32(b[48:], 0x1234)     // cookie, high half
	ne.PutUint32(b[52:], 180)        // expires, ms
	ne.PutUint32(b[56:], rq)
	ne.PutUint32(b[60:], wq)
	ne.PutUint32(b[64:], 1000)  // uid
	ne.PutUint32(b[68:], 54321) // inode
	for _, typ := range []uint16{attrInfo, attrCong, 8 /* INET_DIAG_SHUTDOWN */} {
		v, ok := attrs[typ]
		if !ok {
			continue
		}
		b = ne.AppendUint16(b, uint16(sizeofNlattr+len(v)))
		b = ne.AppendUint16(b, typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

// TestDecodeSocket decodes hand-built answers: an IPv4 connection whose
// kernel sends the 104-byte tcp_info of Linux 3.x, a dual-stack one, a
// listener, and a TIME_WAIT socket without tcp_info.
func TestDecodeSocket(t *testing.T) {
	c := netip.MustParseAddrPort("192.168.0.2:40000")
	s := netip.MustParseAddrPort("192.168.0.101:8000")
	c6 := netip.MustParseAddrPort("[2001:db8::2]:40000")
	s6 := netip.MustParseAddrPort("[2001:db8::101]:8000")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(c.Addr().As16()), c.Port())
	mappedS := netip.AddrPortFrom(netip.AddrFrom16(s.Addr().As16()), s.Port())
	short := DecodeTCPInfo(tcpInfoBytes(104))
	full := DecodeTCPInfo(tcpInfoBytes(280))
	common := Socket{Timer: TimerOn, TimerRetrans: 2, TimerExpires: 180 * time.Millisecond,
		Cookie: 0x1234_89abcdef, UID: 1000, Inode: 54321}
	with := func(s Socket, f func(*Socket)) Socket { f(&s); return s }
	for _, tc := range []struct {
		name string
		msg  []byte
		want Socket
	}{
		{"ipv4 short tcp_info",
			diagMessage(2, Established, c, s, 10, 20, map[uint16][]byte{attrInfo: tcpInfoBytes(104), attrCong: []byte("cubic\x00")}),
			with(common, func(x *Socket) {
				x.State, x.Local, x.Remote, x.RecvQ, x.SendQ, x.Info, x.Cong = Established, c, s, 10, 20, &short, "cubic"
			})},
		{"ipv6",
			diagMessage(10, Established, c6, s6, 0, 0, map[uint16][]byte{8: {0}, attrInfo: tcpInfoBytes(280), attrCong: []byte("bbr\x00")}),
			with(common, func(x *Socket) {
				x.State, x.Local, x.Remote, x.Info, x.Cong = Established, c6, s6, &full, "bbr"
			})},
		{"dual-stack socket, addresses unmapped",
			diagMessage(10, CloseWait, mapped, mappedS, 5, 0, map[uint16][]byte{attrCong: []byte("new_algo\x00")}),
			with(common, func(x *Socket) {
				x.State, x.Local, x.Remote, x.RecvQ, x.Cong = CloseWait, c, s, 5, "new_algo"
			})},
		{"listener: accept queue and backlog",
			diagMessage(2, Listen, s, netip.AddrPortFrom(netip.IPv4Unspecified(), 0), 5, 4, nil),
			with(common, func(x *Socket) {
				x.State, x.Local, x.Remote, x.AcceptQ, x.Backlog = Listen, s, netip.AddrPortFrom(netip.IPv4Unspecified(), 0), 5, 4
			})},
		{"request socket reported as SYN_RECEIVED",
			diagMessage(2, NewSynRecv, s, c, 0, 0, nil),
			with(common, func(x *Socket) { x.State, x.Local, x.Remote = SynRecv, s, c })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Socket
			var info TCPInfo
			hasInfo, err := decodeSocket(tc.msg, &got, &info)
			if err != nil {
				t.Fatal(err)
			}
			if hasInfo {
				got.Info = &info
			}
			if (got.Info == nil) != (tc.want.Info == nil) || got.Info != nil && *got.Info != *tc.want.Info {
				t.Errorf("info:\n got %+v\nwant %+v", got.Info, tc.want.Info)
			}
			got.Info, tc.want.Info = nil, nil
			if got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestDecodeSocketErrors: truncated answers are errors, not panics.
func TestDecodeSocketErrors(t *testing.T) {
	good := diagMessage(2, Established, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"),
		0, 0, map[uint16][]byte{attrInfo: tcpInfoBytes(232)})
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"half a header", good[:40]},
		{"attribute cut", good[:sizeofDiagMsg+100]},
		{"unknown family", append([]byte{99}, good[1:]...)},
	} {
		var s Socket
		var info TCPInfo
		if _, err := decodeSocket(tc.msg, &s, &info); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
