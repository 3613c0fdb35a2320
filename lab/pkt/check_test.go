package pkt

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/lab/scripted"
	"golang.org/x/sys/unix"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, src string
		line      int    // 0: supported
		reason    string // part of the reason
	}{
		{"common calls", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n0...1 accept(3, ..., ...) = 4", 0, ""},
		{"packets", "0 < S 0:0(0) win 1 <mss 1,sackOK,TS val 1 ecr 0,nop,wscale 7,eol>\n0~1 > S. 0:0(0) ack 1 <...>\n* > . 1:1(0) ack 1", 0, ""},
		{"noecn", "0 < [noecn] S 0:0(0) win 1", 0, ""},
		{"known options", "--tolerance_usecs=10000\n--tolerance_percent=5\n--mtu=1400\n--ip_version=ipv4\n0 close(3) = 0", 0, ""},
		{"unknown option", "--foo=1\n0 close(3) = 0", 1, "--foo=1: not supported"},
		{"bad tolerance", "--tolerance_usecs=x\n0 close(3) = 0", 1, "want a number of microseconds"},
		{"unknown ip version", "--ip_version=ipv7\n0 close(3) = 0", 1, "want ipv4, ipv4-mapped-ipv6 or ipv6"},
		{"udp", "0 close(3) = 0\n0 < udp (10)", 2, "udp packets are not scripted"},
		{"ecn", "0 < [ce] . 1:1(0) ack 1\n0 > [ect01] . 1:1(0) ack 1", 0, ""},
		{"accecn", "0 < [ect0] SEWA 0:0(0) win 1 <ECN e0b 1 ceb 0 e1b 1>\n0 > [ect0] SWA. 0:0(0) ack 1 <ECN e1b 1 ceb 0 e0b 1>", 0, ""},
		{"inbound ect01", "0 < [ect01] . 1:1(0) ack 1", 1, "[ect01] names two codepoints"},
		{"blocking packet", "0...1 > . 1:1(0) ack 1", 1, "a packet cannot block"},
		{"inbound range", "0~1 < . 1:1(0) ack 1", 1, "range (~) is for outbound"},
		{"fast open cookie by an unknown name", "0 < S 0:0(0) win 1 <FO MY_COOKIE>", 1, "TCP option FO MY_COOKIE: the script sends a cookie written in hex"},
		{"experimental", "0 < S 0:0(0) win 1 <exp 1234>", 1, "TCP option exp 1234"},
		{"unknown call", "0 sendmmsg(3, ..., 1, 0) = 1", 1, "system call sendmmsg"},
		{"call range", "0~1 close(3) = 0", 1, "not a range"},
		{"tcp info", "0 getsockopt(3, SOL_TCP, TCP_INFO, {tcpi_state=1}, [4]) = 0", 0, ""},
		{"bind address", "0 bind(3, {sa_family=AF_INET}, 16) = 0", 1, "bind to an address"},
		{"python", "0 %{ print(1) }%", 0, ""},
		{"too few arguments", "0 close() = 0", 1, "close takes 1 arguments, not 0"},
		{"too many arguments", "0 listen(3, 1, 2) = 0", 1, "listen takes 2 arguments, not 3"},
		{"fcntl with a value", "0 fcntl(3, F_SETFL, O_NONBLOCK) = 0", 0, ""},
		{"icmp", "0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]\n0 < icmp packet_too_big mtu 1280 [1:1441(1440)]\n0 < icmp type_11 code_0", 0, ""},
		{"icmp from the kernel", "0 > icmp unreachable port_unreachable [1:1(0)]", 1, "the kernel's ICMP messages are not checked yet"},
		{"icmp quoting udp", "0 < icmp unreachable port_unreachable [udp (10)]", 1, "quoting udp is not scripted"},
		{"icmp echo id", "0 < icmp echo_request id 3", 1, "echo id"},
		{"icmp ecn", "0 < [ce] icmp unreachable", 1, "ECN field [ce]"},
		{"icmp range", "0~1 < icmp unreachable", 1, "sent at one time"},
		{"icmp unknown type", "0 < icmp unreachble", 1, "ICMP has no type \"unreachble\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("t.pkt", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			u := check(s)
			switch {
			case tt.line == 0 && u != nil:
				t.Errorf("check = line %d: %s, want supported", u.Line, u.Reason)
			case tt.line != 0 && u == nil:
				t.Errorf("check = supported, want line %d: %s", tt.line, tt.reason)
			case tt.line != 0 && (u.Line != tt.line || !strings.Contains(u.Reason, tt.reason)):
				t.Errorf("check = line %d: %s, want line %d: %s", u.Line, u.Reason, tt.line, tt.reason)
			}
		})
	}
}

func TestTolerance(t *testing.T) {
	tests := []struct {
		name, src string
		floor     time.Duration
		want      time.Duration
		why       string
	}{
		{"default under the floor", "0 close(3) = 0", 0, scripted.DefaultAbs, "tcplab's floor, wider than packetdrill's default --tolerance_usecs (4ms)"},
		{"no floor", "0 close(3) = 0", -1, 4 * time.Millisecond, "packetdrill's default --tolerance_usecs"},
		{"script's above the floor", "--tolerance_usecs=50000\n0 close(3) = 0", 0, 50 * time.Millisecond, "the script's --tolerance_usecs"},
		{"script's under a given floor", "--tolerance_usecs=1000\n0 close(3) = 0", 2 * time.Millisecond, 2 * time.Millisecond, "tcplab's floor, wider than the script's --tolerance_usecs (1ms)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("t.pkt", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			set, u := settings(s)
			if u != nil {
				t.Fatal(u.Reason)
			}
			got, why := tolerance(s, set, tt.floor)
			if got != tt.want || why != tt.why {
				t.Errorf("tolerance = %v (%s), want %v (%s)", got, why, tt.want, tt.why)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	parse := func(line string) *Packet {
		s, err := Parse("t.pkt", []byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return s.Events[0].(*Packet)
	}
	tests := []struct {
		line, want string
	}{
		{"0 > . 1:1(0) ack 1", "ACK seq=1 ack=1 len=0 <absent mss,wscale,sackOK,TS,sack,FO>"},
		{"0 > . 1:1(0) ack 1 <...>", "ACK seq=1 ack=1 len=0"},
		{"0 > S. 0:0(0) ack 1 win 100 <mss 1460,nop,nop,sackOK,nop,wscale 7>", "SYN,ACK seq=0 ack=1 win=100 len=0 <mss 1460,sackOK,wscale 7,absent TS,sack,FO>"},
		{"0 > . 1:1(0) ack 1 <nop,nop,TS val 1 ecr 2>", "ACK seq=1 ack=1 len=0 <present TS,absent mss,wscale,sackOK,sack,FO>"},
		{"0 > S. 0:0(0) ack 1 win 100 <mss 1460,FO abcd,nop,nop>", "SYN,ACK seq=0 ack=1 win=100 len=0 <mss 1460,FO abcd,absent wscale,sackOK,TS,sack>"},
		{"0 > . 1:1(0) ack 1 <nop,nop,sack 1001:2001>", "ACK seq=1 ack=1 len=0 <sack 1001:2001,absent mss,wscale,sackOK,TS,FO>"},
		{"0 > [ect01] WA. 1:1(0) ack 1 <ECN e1b 1 ceb 1000 e0b 1,nop>", "[ect01] CWR,ACK,AE seq=1 ack=1 len=0 <ECN e1b 1 ceb 1000 e0b 1,absent mss,wscale,sackOK,TS,sack,FO>"},
		{"0 > [noecn] . 1:1(0) ack 1 <...>", "[noecn] ACK seq=1 ack=1 len=0"},
		// An ack without the ACK flag is not checked.
		{"0 > R 2:2(0) ack 7 <...>", "RST seq=2 len=0"},
	}
	for _, tt := range tests {
		if got := expectTemplate(parse(tt.line)).String(); got != tt.want {
			t.Errorf("expect %q:\ngot  %s\nwant %s", tt.line, got, tt.want)
		}
	}
	send := []struct {
		line, want string
	}{
		{"0 < S 0:0(0) win 100 <mss 1000,sackOK,TS val 7 ecr 0,nop,wscale 7>", "SYN seq=0 win=100 len=0 <mss 1000,sackOK,TS val 7 ecr 0,wscale 7>"},
		// After the SYN the TS ecr echoes the kernel's clock, not the line's.
		{"0 < . 1:1001(1000) ack 1 <nop,nop,TS val 8 ecr 5>", "ACK seq=1 ack=1 len=1000 <TS val 8 ecr *>"},
		{"0 < . 1:1(0) ack 1 win 257 <sack 1001:2001>", "ACK seq=1 ack=1 win=257 len=0 <sack 1001:2001>"},
		{"0 < [ce] EA. 1:1(0) ack 1 win 257 <ECN e0b 1 ceb 0 e1b 1,nop>", "[ce] ECE,ACK,AE seq=1 ack=1 win=257 len=0 <ECN e0b 1 ceb 0 e1b 1>"},
		// An ack without the ACK flag is sent all the same.
		{"0 < R 1:1(0) ack 1461 win 0", "RST seq=1 ack=1461 win=0 len=0"},
		// [noecn] sends what no bracket does: Not-ECT.
		{"0 < [noecn] . 1:1(0) ack 1 win 257", "ACK seq=1 ack=1 win=257 len=0"},
	}
	for _, tt := range send {
		if got := sendTemplate(parse(tt.line), nil).String(); got != tt.want {
			t.Errorf("send %q:\ngot  %s\nwant %s", tt.line, got, tt.want)
		}
	}
}

// TestFastOpenSent: an inbound Fast Open option is sent as kind 34 (FO)
// or, FOEXP, as kind 254 with the magic 0xF989, with its cookie in hex,
// by name (the cookie given) or none (a request).
func TestFastOpenSent(t *testing.T) {
	named := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	tests := []struct {
		line     string
		fastOpen string // hex of Options.FastOpen; "nil" when not sent as kind 34
		raw      string // hex of the raw option's kind and data, if any
	}{
		{"0 < S 0:0(0) win 100 <FO abcd,nop,nop>", "abcd", ""},
		{"0 < S 0:0(0) win 100 <FO,nop,nop>", "", ""},
		{"0 < S 0:0(0) win 100 <FO TFO_COOKIE,nop,nop>", "0102030405060708", ""},
		{"0 < S 0:0(0) win 100 <FOEXP abcd,nop,nop>", "nil", "fef989abcd"},
		{"0 < S 0:0(0) win 100 <FOEXP>", "nil", "fef989"},
		{"0 < S 0:0(0) win 100 <FOEXP TFO_COOKIE>", "nil", "fef9890102030405060708"},
		{"0 < S 0:0(0) win 100 <mss 1000>", "nil", ""},
	}
	for _, tt := range tests {
		s, err := Parse("t.pkt", []byte(tt.line))
		if err != nil {
			t.Fatal(err)
		}
		seg := sendTemplate(s.Events[0].(*Packet), named)
		fo := "nil"
		if seg.Options.FastOpen != nil {
			fo = hex.EncodeToString(seg.Options.FastOpen)
		}
		raw := ""
		for _, r := range seg.Options.Raw {
			raw += hex.EncodeToString(append([]byte{r.Kind}, r.Data...))
		}
		if fo != tt.fastOpen || raw != tt.raw {
			t.Errorf("%q: FastOpen %s, raw %q; want %s, %q", tt.line, fo, raw, tt.fastOpen, tt.raw)
		}
	}
}

// TestSpanEnd: a relative event's span ends counting from the event
// before, as its start does (packetdrill's times); an absolute one's
// absolute end is itself, and a relative end after an absolute start
// counts from the start.
func TestSpanEnd(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		line string
		st   time.Duration // the event's script time
		want time.Duration
	}{
		{"+.1...0.2 read(4, ..., 1) = 1", 500 * ms, 600 * ms},
		{"+0...0.1 read(4, ..., 1) = 1", 400 * ms, 500 * ms},
		{"+.01...+.011 connect(3, ..., ...) = 0", 10 * ms, 11 * ms},
		{"1...1.5 read(4, ..., 1) = 1", 1000 * ms, 1500 * ms},
		{"1...+.5 read(4, ..., 1) = 1", 1000 * ms, 1500 * ms},
		{"+0~+.04 > . 1:1(0) ack 1", 300 * ms, 340 * ms},
		{"+.02~+.04 > . 1:1(0) ack 1", 320 * ms, 340 * ms},
	}
	for _, tt := range tests {
		s, err := Parse("t.pkt", []byte(tt.line))
		if err != nil {
			t.Fatal(err)
		}
		_, tm := s.Events[0].Pos()
		if got := spanEnd(tm, tt.st); got != tt.want {
			t.Errorf("%q at %v: ends at %v, want %v", tt.line, tt.st, got, tt.want)
		}
	}
}

// TestRenumberShadows: a descriptor renumbered onto a script number
// still in use takes it, as packetdrill finds the newest first; the old
// one stays among those closed at the end. An unknown one is refused.
func TestRenumberShadows(t *testing.T) {
	f := &fdTable{byScript: map[int]int{}}
	f.add(10) // script 3
	f.add(11) // script 4
	f.add(12) // script 5, to become 4
	if !f.renumber(5, 4) {
		t.Fatal("renumber(5, 4) refused a number in use")
	}
	if got := f.real(4); got != 12 {
		t.Errorf("script 4 is real %d, want 12", got)
	}
	if got := f.real(5); got != -1 {
		t.Errorf("script 5 is still real %d", got)
	}
	all := map[int]bool{}
	for _, r := range f.all() {
		all[r] = true
	}
	if !all[10] || !all[11] || !all[12] || len(all) != 3 {
		t.Errorf("all() = %v, want 10, 11 and 12", f.all())
	}
	if f.renumber(9, 3) {
		t.Error("renumber of an unknown descriptor succeeded")
	}
}

// TestAsOf: a block's tcpi_last_* values read late are taken back to its
// time, never below zero; the other values are left as read.
func TestAsOf(t *testing.T) {
	vars := map[string]uint64{"tcpi_last_data_recv": 1060, "tcpi_last_ack_recv": 20, "tcpi_rtt": 5000}
	asOf(vars, 50*time.Millisecond+700*time.Microsecond)
	want := map[string]uint64{"tcpi_last_data_recv": 1010, "tcpi_last_ack_recv": 0, "tcpi_rtt": 5000}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %d, want %d", k, vars[k], v)
		}
	}
	asOf(vars, -time.Millisecond)
	if vars["tcpi_last_data_recv"] != 1010 {
		t.Errorf("early read changed tcpi_last_data_recv to %d", vars["tcpi_last_data_recv"])
	}
}

// TestICMPOf: an ICMP line's names become the numbers of its family's
// protocol, as packetdrill's tables give them; what packetdrill refuses
// is refused with the reason.
func TestICMPOf(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	tests := []struct {
		name      string
		m         ICMPMessage
		v6        bool
		typ, code uint8
		mtu       uint32
		err       string
	}{
		{"frag needed", ICMPMessage{Type: "unreachable", Code: "frag_needed", MTU: u32(1200), Quoted: "tcp", Seq: 1, End: 1461, Len: 1460}, false, 3, 4, 1200, ""},
		{"port unreachable", ICMPMessage{Type: "unreachable", Code: "port_unreachable"}, false, 3, 3, 0, ""},
		{"v6 port unreachable", ICMPMessage{Type: "unreachable", Code: "port_unreachable"}, true, 1, 4, 0, ""},
		{"packet too big", ICMPMessage{Type: "packet_too_big", MTU: u32(1280)}, true, 2, 0, 1280, ""},
		{"v6 MTU over 16 bits", ICMPMessage{Type: "packet_too_big", MTU: u32(70000)}, true, 2, 0, 70000, ""},
		{"numbered", ICMPMessage{Type: "type_11", Code: "code_1"}, false, 11, 1, 0, ""},
		{"no code", ICMPMessage{Type: "time_exceeded"}, false, 11, 0, 0, ""},
		{"v6 time exceeded", ICMPMessage{Type: "time_exceeded", Code: "exceeded_frag_time"}, true, 3, 1, 0, ""},
		{"v4 has no packet too big", ICMPMessage{Type: "packet_too_big"}, false, 0, 0, 0, `ICMP has no type "packet_too_big"`},
		{"unknown code", ICMPMessage{Type: "unreachable", Code: "frag_neded"}, false, 0, 0, 0, `has no code "frag_neded"`},
		{"code of a type without names", ICMPMessage{Type: "source_quench", Code: "x"}, false, 0, 0, 0, "has no named codes"},
		{"number out of range", ICMPMessage{Type: "type_256"}, false, 0, 0, 0, `no type "type_256"`},
		{"v4 MTU on another code", ICMPMessage{Type: "unreachable", Code: "port_unreachable", MTU: u32(1200)}, false, 0, 0, 0, "Fragmentation Needed's"},
		{"v4 MTU over 16 bits", ICMPMessage{Type: "unreachable", Code: "frag_needed", MTU: u32(70000)}, false, 0, 0, 0, "16 bits"},
		{"v6 MTU on another type", ICMPMessage{Type: "unreachable", MTU: u32(1280)}, true, 0, 0, 0, "Packet Too Big's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := icmpOf(&tt.m, tt.v6)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("icmpOf = %+v, %v; want an error that says %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tt.typ || got.Code != tt.code || got.MTU != tt.mtu || got.Seq != tt.m.Seq || got.Len != tt.m.Len {
				t.Errorf("icmpOf = %+v, want type %d code %d mtu %d seq %d len %d", got, tt.typ, tt.code, tt.mtu, tt.m.Seq, tt.m.Len)
			}
		})
	}
}

// TestDecodeCCInfo: a TCP_CC_INFO answer is read as each struct of
// packetdrill's that its size covers: BBR's 20 bytes also as DCTCP's and
// Vegas's 16, those 16 not as BBR's, and none (cubic, reno) as nothing.
func TestDecodeCCInfo(t *testing.T) {
	le := func(words ...uint32) []byte {
		b := make([]byte, 0, 4*len(words))
		for _, w := range words {
			b = binary.NativeEndian.AppendUint32(b, w)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want map[string]uint64
		none []string
	}{
		{"bbr", le(7, 2, 300, 739, 512), map[string]uint64{
			"bbr_bw_lo": 7, "bbr_bw_hi": 2, "bbr_bw": 2<<32 | 7, "bbr_min_rtt": 300,
			"bbr_pacing_gain": 739, "bbr_cwnd_gain": 512, "tcpv_enabled": 7, "tcp_minrtt": 739,
		}, nil},
		{"vegas", le(1, 5, 120, 100), map[string]uint64{
			"tcpv_enabled": 1, "tcpv_rttcnt": 5, "tcp_rtt": 120, "tcp_minrtt": 100, "dctcp_alpha": 5,
		}, []string{"bbr_bw", "bbr_min_rtt"}},
		{"cubic", nil, map[string]uint64{}, []string{"bbr_bw", "tcpv_enabled", "dctcp_enabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]uint64{}
			decodeCCInfo(tt.b, vars)
			for k, v := range tt.want {
				if got, ok := vars[k]; !ok || got != v {
					t.Errorf("%s = %d (set %v), want %d", k, got, ok, v)
				}
			}
			for _, k := range tt.none {
				if _, ok := vars[k]; ok {
					t.Errorf("%s is set from %d bytes", k, len(tt.b))
				}
			}
		})
	}
}

// TestDecodeTCPInfo: the bit fields unix.TCPInfo leaves as padding are
// read from the raw bytes, low bits first: the seventh byte holds both
// window scales, the eighth the app-limited bit and Fast Open's failure.
func TestDecodeTCPInfo(t *testing.T) {
	ti := unix.TCPInfo{State: 1, Snd_mss: 1448}
	raw := make([]byte, 104)
	raw[6] = 10<<4 | 7
	raw[7] = 2<<1 | 1
	vars := decodeTCPInfo(&ti, raw)
	want := map[string]uint64{
		"tcpi_state": 1, "tcpi_snd_mss": 1448, "tcpi_snd_wscale": 7, "tcpi_rcv_wscale": 10,
		"tcpi_delivery_rate_app_limited": 1, "tcpi_fastopen_client_fail": 2,
	}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %d, want %d", k, vars[k], v)
		}
	}
}
