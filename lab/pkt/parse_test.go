package pkt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseEvents(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // each event, Formatted
	}{
		{"socket", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", []string{"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3"}},
		{"relative", "+0.1 close(3) = 0", []string{"+0.1 close(3) = 0"}},
		{"any time", "* > . 1:1(0) ack 1", []string{"* > . 1:1(0) ack 1"}},
		{"range", "0.1~0.2 > F. 1:1(0) ack 1", []string{"0.1~0.2 > F. 1:1(0) ack 1"}},
		{"relative range", "+0~+0.5 > R 1:1(0)", []string{"+0~+0.5 > R 1:1(0)"}},
		{"blocking", "0...0.250 accept(3, ..., ...) = 4", []string{"0...0.25 accept(3, ..., ...) = 4"}},
		{"fraction without zero", ".5 close(3) = 0", []string{"0.5 close(3) = 0"}},
		{"syn with options", "0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>",
			[]string{"0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>"}},
		{"synack", "+0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>",
			[]string{"+0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>"}},
		{"timestamps and eol", "+0 < . 1:1(0) ack 1 win 257 <nop,nop,TS val 200 ecr 100,eol>",
			[]string{"+0 < . 1:1(0) ack 1 win 257 <nop,nop,TS val 200 ecr 100,eol>"}},
		{"sack blocks", "+0 < . 1:1(0) ack 1 win 257 <sack 1001:2001 3001:4001,nop,nop>",
			[]string{"+0 < . 1:1(0) ack 1 win 257 <sack 1001:2001 3001:4001,nop,nop>"}},
		{"any options", "+0 > . 1:1(0) ack 1001 <...>", []string{"+0 > . 1:1(0) ack 1001 <...>"}},
		{"no options", "+0 > . 1:1(0) ack 1001 <>", []string{"+0 > . 1:1(0) ack 1001 <>"}},
		{"fast open", "0 < S 0:10(10) win 1000 <mss 1460,FO abcd1234,nop,nop>",
			[]string{"0 < S 0:10(10) win 1000 <mss 1460,FO abcd1234,nop,nop>"}},
		{"fast open, experimental", "0 < S 0:10(10) win 1000 <mss 1460,FOEXP abcd1234,nop,nop>",
			[]string{"0 < S 0:10(10) win 1000 <mss 1460,FOEXP abcd1234,nop,nop>"}},
		{"experimental option", "0 > S 0:0(0) <exp 0xf989 0x1234>", []string{"0 > S 0:0(0) <exp 0xf989 0x1234>"}},
		{"data", "+.1 < P. 1:1001(1000) ack 1 win 257", []string{"+0.1 < P. 1:1001(1000) ack 1 win 257"}},
		{"urgent", "+0 < P.U 1:2(1) ack 1 urg 1 win 257", []string{"+0 < P.U 1:2(1) ack 1 win 257 urg 1"}},
		{"ecn", "0 < [ect0] SEW 0:0(0) win 100", []string{"0 < [ect0] SEW 0:0(0) win 100"}},
		{"large seq", "0 < . 4294967295:4294967295(0) ack 1", []string{"0 < . 4294967295:4294967295(0) ack 1"}},
		{"udp is kept", "0 < udp (1000)", []string{"0 < udp"}},
		{"icmp", "+.01 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]", []string{"+0.01 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]"}},
		{"icmp, quoted first", "0 < [1:1441(1440)] icmp packet_too_big mtu 1280", []string{"0 < icmp packet_too_big mtu 1280 [1:1441(1440)]"}},
		{"icmp quoting udp", "0 < icmp unreachable port_unreachable [udp (100)]", []string{"0 < icmp unreachable port_unreachable [udp (100)]"}},
		{"icmp numbered, id, comment", "0 > icmp type_3 code_4 id 7 // x\n+0 close(3) = 0", []string{"0 > icmp type_3 code_4 id 7", "+0 close(3) = 0"}},
		{"errno", "+0 connect(4, ..., ...) = -1 EINPROGRESS (Operation now in progress)",
			[]string{"+0 connect(4, ..., ...) = -1 EINPROGRESS (Operation now in progress)"}},
		{"errno without text", "+0 read(4, ..., 10) = -1 EAGAIN", []string{"+0 read(4, ..., 10) = -1 EAGAIN"}},
		{"option array", "+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0",
			[]string{"+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0"}},
		{"struct", "+0 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0",
			[]string{"+0 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0"}},
		{"flags", "+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0", []string{"+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0"}},
		{"calls and strings", `0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}, 16) = 0`,
			[]string{`0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}, 16) = 0`}},
		{"sendmsg", "+0 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 1000}], msg_flags=0}, 0) = 1000",
			[]string{"+0 sendmsg(4, {msg_name=..., msg_iov(1)=[{..., 1000}], msg_flags=0}, 0) = 1000"}},
		{"poll", "+0 poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1",
			[]string{"+0 poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1"}},
		{"hex", "+0 setsockopt(3, SOL_IP, IP_TOS, [0x10], 4) = 0", []string{"+0 setsockopt(3, SOL_IP, IP_TOS, [16], 4) = 0"}},
		{"tcp info", "+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, tcpi_unacked=1}, [104]) = 0",
			[]string{"+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, tcpi_unacked=1}, [104]) = 0"}},
		{"shell", "0 `sysctl -q net.ipv4.tcp_timestamps=0`", []string{"0 `sysctl -q net.ipv4.tcp_timestamps=0`"}},
		{"python", "+0 %{\nassert tcpi_rto == 200000, tcpi_rto\n}%", []string{"+0 %{assert tcpi_rto == 200000, tcpi_rto}%"}},
		{"comments and lines", "// a comment\n0 close(3) = 0 // why\n/* a\nblock */\n+1 close(4)\n = 0",
			[]string{"0 close(3) = 0", "+1 close(4) = 0"}},
		{"multi-line struct", "+0 setsockopt(4, SOL_SOCKET, SO_LINGER,\n\t{onoff=1,\n\t linger=0}, 8) = 0",
			[]string{"+0 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0"}},
		{"packet then event on the next line", "0 < . 1:1(0) ack 1\n0.1 > . 1:1(0) ack 1",
			[]string{"0 < . 1:1(0) ack 1", "0.1 > . 1:1(0) ack 1"}},
		{"result -1 with a text alone", "+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, \"\", 0) = -1 (Invalid Argument)",
			[]string{`+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, "", 0) = -1 (Invalid Argument)`}},
		{"no flags at all", "+.01 < - 1:1001(1000) win 20000", []string{"+0.01 < - 1:1001(1000) win 20000"}},
		{"accecn flag", "0 < [ect0] SEWA 0:0(0) win 32792", []string{"0 < [ect0] SEWA 0:0(0) win 32792"}},
		{"ecn codepoints", "0 < [ce] EAP. 1:1001(1000) ack 1\n+0 > [ect01] W. 1:1(0) ack 1001\n+0 > [noecn] . 1:1(0) ack 1",
			[]string{"0 < [ce] P.EA 1:1001(1000) ack 1", "+0 > [ect01] .W 1:1(0) ack 1001", "+0 > [noecn] . 1:1(0) ack 1"}},
		{"accecn option of order 1", "+.002 > SW. 0:0(0) ack 1 <mss 1460,ECN e1b 1 ceb 0 e0b 1,nop,nop,nop,sackOK,nop,wscale 8>",
			[]string{"+0.002 > S.W 0:0(0) ack 1 <mss 1460,ECN e1b 1 ceb 0 e0b 1,nop,nop,nop,sackOK,nop,wscale 8>"}},
		{"accecn option of order 0, two counters", "0 < . 1:1(0) ack 1 <ECN e0b 16777215 ceb 0,nop>", []string{"0 < . 1:1(0) ack 1 <ECN e0b 16777215 ceb 0,nop>"}},
		{"accecn option without counters", "0 < . 1:1(0) ack 1 <ECN>", []string{"0 < . 1:1(0) ack 1 <ECN>"}},
		{"blocking span with blanks", "+.002 ... 0.004 connect(4, ..., ...) = 0", []string{"+0.002...0.004 connect(4, ..., ...) = 0"}},
		{"AccECN's ACE as a digit", "0 > [ect0] .5 1:1005(1004) ack 1\n0 < S.7 0:0(0) ack 1 win 1\n0 > .0 1:1(0) ack 1", []string{"0 > [ect0] .EA 1:1005(1004) ack 1", "0 < S.EWA 0:0(0) ack 1 win 1", "0 > . 1:1(0) ack 1"}},
		{"range with blanks", "+.02 ~ +1.1 > S 0:0(0) <mss 1460>", []string{"+0.02~+1.1 > S 0:0(0) <mss 1460>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("t.pkt", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range s.Events {
				got = append(got, Format(e))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Parse(%q):\ngot  %q\nwant %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	s, err := Parse("t.pkt", []byte("--tolerance_usecs=10000\n--ip_version=ipv4\n\n0.100...0.250 read(4, ..., 1000) = 1000\n+0.01~+0.02 > P. 1:1001(1000) ack 1 win 502"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Options) != 2 || s.Options[0] != (Option{Line: 1, Name: "tolerance_usecs", Value: "10000"}) || s.Options[1].Value != "ipv4" {
		t.Errorf("options = %+v", s.Options)
	}
	rd := s.Events[0].(*Syscall)
	if rd.Line != 4 || rd.Time != (Time{Kind: Absolute, At: 100 * time.Millisecond, Span: Blocking, EndKind: Absolute, End: 250 * time.Millisecond}) {
		t.Errorf("read: line %d time %+v", rd.Line, rd.Time)
	}
	if rd.Result != Int(1000) || rd.Args[1] != (Ellipsis{}) {
		t.Errorf("read: %+v", rd)
	}
	pk := s.Events[1].(*Packet)
	if pk.Line != 5 || pk.Dir != Outbound || pk.Seq != 1 || pk.End != 1001 || pk.Len != 1000 || *pk.Ack != 1 || *pk.Win != 502 || pk.Options != nil {
		t.Errorf("packet: %+v", pk)
	}
	if pk.Time != (Time{Kind: Relative, At: 10 * time.Millisecond, Span: Range, EndKind: Relative, End: 20 * time.Millisecond}) {
		t.Errorf("packet time %+v", pk.Time)
	}
}

// TestParseUntimedCommands: a backtick command without a time before
// the first event is the script's Init, one after the last its Cleanup,
// as packetdrill's scripts write them (a multi-line command sourcing
// their defaults first, their sysctls restored last).
func TestParseUntimedCommands(t *testing.T) {
	src := "// header\n--tolerance_usecs=10000\n`./defaults.sh\nsysctl -q net.ipv4.tcp_ecn=3\n`\n0 close(3) = 0\n`/tmp/restore.sh`\n"
	s, err := Parse("t.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if s.Init == nil || s.Init.Line != 3 || s.Init.Command != "./defaults.sh\nsysctl -q net.ipv4.tcp_ecn=3" {
		t.Errorf("Init = %+v", s.Init)
	}
	if s.Cleanup == nil || s.Cleanup.Line != 7 || s.Cleanup.Command != "/tmp/restore.sh" {
		t.Errorf("Cleanup = %+v", s.Cleanup)
	}
	if len(s.Events) != 1 || len(s.Options) != 1 {
		t.Errorf("events %d, options %d; want 1 and 1", len(s.Events), len(s.Options))
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"no time", "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", "t.pkt:1: want a time"},
		{"no result", "0 close(3)\n+0 close(4) = 0", "t.pkt:2: want \"=\""},
		{"bad flag", "0 < SX 0:0(0) win 100", "t.pkt:1: unknown flag 'X'"},
		{"ACE over a flag", "0 > .E5 1:1(0) ack 1", "t.pkt:1: ACE 5 sets E, which the flags \".E\" already have"},
		{"ACE of 8", "0 > .8 1:1(0) ack 1", "t.pkt:1: unknown flag '8'"},
		{"no flags", "0 < 0:0(0) win 100", "t.pkt:1: want the packet's flags"},
		{"length disagrees", "0 close(3) = 0\n0 < . 1:1001(100) ack 1", "t.pkt:2: sequence range 1:1001 is 1000 bytes but its length says 100"},
		{"window too big", "0 < . 1:1(0) ack 1 win 70000", "t.pkt:1: the window 70000 is out of range"},
		{"unclosed options", "0 < S 0:0(0) win 100 <mss 1000\n+0 close(3) = 0", "t.pkt:2: want \">\""},
		{"unknown option", "0 < S 0:0(0) win 100 <,>", "t.pkt:1: want a TCP option"},
		{"sack without blocks", "0 < . 1:1(0) ack 1 <sack>", "t.pkt:1: sack without blocks"},
		{"TS without ecr", "0 < . 1:1(0) ack 1 <TS val 1>", "t.pkt:1: want \"ecr\""},
		{"unclosed shell", "0 `echo hi\n", "t.pkt:1: shell command ` never closed"},
		{"unclosed python", "0 %{ print(1)\n", "t.pkt:1: python block %{ never closed"},
		{"unclosed comment", "0 close(3) = 0\n/* oops", "t.pkt:2: comment /* never closed"},
		{"late option", "0 close(3) = 0\n--mtu=1000", "t.pkt:2: option \"--mtu=1000\" after the first event"},
		{"span backwards", "0.2...0.1 read(3, ..., 1) = 1", "t.pkt:1: time span 0.2...0.1 ends before it starts"},
		{"relative span backwards", "+0.2...0.1 read(3, ..., 1) = 1", "t.pkt:1: time span +0.2...0.1 ends before it starts"},
		{"span from any", "*~1 close(3) = 0", "t.pkt:1: a time span cannot start at *"},
		{"unknown event", "0 ? hello", "t.pkt:1: want a packet"},
		{"two untimed commands first", "`a`\n`b`\n0 close(3) = 0", "t.pkt:2: a second untimed command before the first event"},
		{"event after the cleanup", "0 close(3) = 0\n`a`\n+0 close(4) = 0", "t.pkt:3: \"+0 close(4) = 0\" after the script's cleanup command (line 2)"},
		{"bad ecn", "0 < [ect2] S 0:0(0)", "t.pkt:1: unknown ECN codepoint [ect2]"},
		{"accecn counters out of order", "0 < . 1:1(0) ack 1 <ECN e0b 1 e1b 1>", "t.pkt:1: option ECN: want the counter ceb"},
		{"accecn counter unknown", "0 < . 1:1(0) ack 1 <ECN x 1>", "t.pkt:1: option ECN: want the counter e0b"},
		{"accecn four counters", "0 < . 1:1(0) ack 1 <ECN e1b 1 ceb 0 e0b 1 e1b 1>", "t.pkt:1: option ECN has three counters at most"},
		{"accecn counter too large", "0 < . 1:1(0) ack 1 <ECN e1b 16777216>", "t.pkt:1: the counter e1b 16777216 is out of range"},
		{"unclosed string", "0 open(\"x) = 3", "t.pkt:1: string never closed"},
		{"bad argument", "0 close(#) = 0", "t.pkt:1: want an argument"},
		{"bad option line", "--=1\n", "t.pkt:1: want an option such as"},
		{"icmp quoted length disagrees", "0 < icmp unreachable [1:1461(100)]", "t.pkt:1: quoted sequence range 1:1461 is 1460 bytes but its length says 100"},
		{"icmp without type", "0 < icmp 5", "t.pkt:1: want the ICMP message's type"},
		{"icmp junk", "0 < icmp unreachable frag_needed mtu 1200 ack 1", "t.pkt:1: want the ICMP message's code, mtu N"},
		{"icmp code after mtu", "0 < icmp unreachable mtu 1200 frag_needed", "t.pkt:1: want the ICMP message's code, mtu N"},
		{"quoted without icmp", "0 < [1:2(1)] S 0:0(0)", "t.pkt:1: a quoted segment [...] is an ICMP message's: want icmp"},
		{"two quoted", "0 < [1:2(1)] icmp unreachable [1:2(1)]", "t.pkt:1: an ICMP message quotes one segment"},
		{"icmp mtu too big", "0 < icmp unreachable mtu 4294967296", "t.pkt:1: the MTU 4294967296 is out of range"},
		{"icmp quoted udp unclosed", "0 < icmp unreachable [udp (100)", "t.pkt:1: want \"]\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.pkt", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want %q", tt.src, tt.want)
			}
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want %q", tt.src, err, tt.want)
			}
		})
	}
}

// TestParseTestdata parses every script in testdata and checks that
// writing each event back and parsing it again gives the same line.
func TestParseTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.pkt")
	more, _ := filepath.Glob("testdata/*/*.pkt")
	files = append(files, more...)
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Events) == 0 {
				t.Fatal("no events")
			}
			for _, e := range s.Events {
				line := Format(e)
				again, err := Parse("again", []byte(line))
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if got := Format(again.Events[0]); got != line {
					t.Errorf("round trip: %q became %q", line, got)
				}
			}
		})
	}
}

// FuzzParse checks that no input panics the parser.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.pkt")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse("fuzz.pkt", b)
		if err != nil {
			return
		}
		for _, e := range s.Events {
			_ = Format(e)
		}
		// What Run would play, Go writes, without panicking.
		_, _ = Go(s, 0)
	})
}
