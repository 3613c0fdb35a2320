package pkt

import (
	"net/netip"
	"strings"
	"testing"
)

// TestDefine: a definition is NAME=VALUE, NAME a word that is not a
// number and VALUE not empty.
func TestDefine(t *testing.T) {
	tests := []struct {
		text, name, value string
		ok                bool
	}{
		{"CMSG_LEVEL_IP=SOL_IP", "CMSG_LEVEL_IP", "SOL_IP", true},
		{"X=a=b", "X", "a=b", true},
		{`CC="reno"`, "CC", `"reno"`, true},
		{"NOEQUALS", "", "", false},
		{"=SOL_IP", "", "", false},
		{"X=", "", "", false},
		{"1X=SOL_IP", "", "", false},
		{"A-B=1", "", "", false},
	}
	for _, tt := range tests {
		name, value, ok := define(tt.text)
		if name != tt.name || value != tt.value || ok != tt.ok {
			t.Errorf("define(%q) = %q, %q, %v; want %q, %q, %v", tt.text, name, value, ok, tt.name, tt.value, tt.ok)
		}
	}
}

// TestDefined: the header's --define lines and the command line's after
// them (which win) replace the names of system calls, at any depth, and
// the Fast Open cookies packets name, but TFO_COOKIE, which tcplab
// computes for the run's addresses; the parsed script is left as it was.
func TestDefined(t *testing.T) {
	src := `--define=LEVEL=SOL_SOCKET
--define=OPT=SO_KEEPALIVE
0  socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, LEVEL, OPT, [ONE], 4) = 0
+0 getsockopt(3, SOL_TCP, TCP_NODELAY, [ONE|FLAG], [4]) = 0
+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, CC, 5) = -1 ERR (No such file)
+0 sendmsg(3, {msg_name(...)=..., msg_iov(1)=[{..., ONE}], msg_flags=0}, 0) = 1
+0 < S 0:0(0) win 100 <FO MY_COOKIE,nop,nop>
+0 < S 0:0(0) win 100 <FO TFO_COOKIE,nop,nop>
+0 < icmp unreachable CODE [1:1(0)]
+0 < icmp TYPE [1:1(0)]
+0 close(UNDEFINED) = 0
`
	s, err := Parse("defines.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"OPT=SO_REUSEADDR", "ONE=1", "FLAG=0x4", `CC="reno"`, "ERR=ENOENT", "MY_COOKIE=abcd1234", "TFO_COOKIE=0011223344556677", "CODE=port_unreachable", "TYPE=source_quench"} {
		s.Options = append(s.Options, Option{Name: "define", Value: d})
	}
	before := events(s)
	set, u := settings(s)
	if u != nil {
		t.Fatalf("settings: %v", u.Reason)
	}
	got := events(defined(s, set.Defines))
	want := []string{
		"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
		"+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0",
		"+0 getsockopt(3, SOL_TCP, TCP_NODELAY, [1|4], [4]) = 0",
		`+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, "reno", 5) = -1 ENOENT`,
		"+0 sendmsg(3, {msg_name=..., msg_iov(1)=[{..., 1}], msg_flags=0}, 0) = 1",
		"+0 < S 0:0(0) win 100 <FO abcd1234,nop,nop>",
		"+0 < S 0:0(0) win 100 <FO TFO_COOKIE,nop,nop>",
		"+0 < icmp unreachable port_unreachable [1:1(0)]",
		"+0 < icmp source_quench [1:1(0)]",
		"+0 close(UNDEFINED) = 0",
	}
	for i := range want {
		if i >= len(got) || !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("event %d: got %q, want %q", i, at(got, i), want[i])
		}
	}
	if after := events(s); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("the parsed script changed:\n%s\nwas\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
}

func events(s *Script) []string {
	var out []string
	for _, e := range s.Events {
		out = append(out, Format(e))
	}
	return out
}

func at(xs []string, i int) string {
	if i < len(xs) {
		return xs[i]
	}
	return "(none)"
}

// TestDefineSettings: a definition that is not NAME=VALUE is a wrong
// option, as packetdrill's "bad definition"; a value in backticks is a
// feature tcplab lacks: the script is skipped.
func TestDefineSettings(t *testing.T) {
	tests := []struct {
		value string
		bad   bool
		want  string
	}{
		{"NOEQUALS", true, "--define=NOEQUALS: want NAME=VALUE"},
		{"X=", true, "want NAME=VALUE"},
		{"X=`echo 1`", false, "a definition whose value is a `command` is not supported"},
	}
	for _, tt := range tests {
		_, u := settings(&Script{Options: []Option{{Name: "define", Value: tt.value}}})
		if u == nil || u.Bad != tt.bad || !strings.Contains(u.Reason, tt.want) {
			t.Errorf("--define=%s: %+v, want bad=%v with %q", tt.value, u, tt.bad, tt.want)
		}
	}
	if err := CheckOptions([]Option{{Name: "define", Value: "NOEQUALS"}}); err == nil {
		t.Errorf("CheckOptions took -D NOEQUALS")
	}
}

// TestAddressSettings: packetdrill's address flags, read as packetdrill
// reads them (a remote prefix's length dropped, the netmask's length the
// local prefix's, 16 without it, 48 for IPv6), checked against the
// family once every option is read; wrong values are wrong options.
func TestAddressSettings(t *testing.T) {
	tests := []struct {
		name  string
		opts  []Option
		local string // "" when not given
		bits  int
		rem   string
		want  string // in a wrong option's reason
	}{
		{"kernel selftests' IPv4", []Option{{Name: "ip_version", Value: "ipv4"}, {Name: "local_ip", Value: "192.168.0.1"}, {Name: "gateway_ip", Value: "192.168.0.1"},
			{Name: "netmask_ip", Value: "255.255.0.0"}, {Name: "remote_ip", Value: "192.0.2.1"}}, "192.168.0.1", 16, "192.0.2.1", ""},
		{"kernel selftests' IPv6, the family after the addresses", []Option{{Name: "local_ip", Value: "fd3d:0a0b:17d6::1"}, {Name: "remote_ip", Value: "fd3d:fa7b:d17d::1"},
			{Name: "ip_version", Value: "ipv6"}}, "fd3d:a0b:17d6::1", 48, "fd3d:fa7b:d17d::1", ""},
		{"a remote prefix", []Option{{Name: "remote_ip", Value: "192.0.2.1/24"}}, "", 16, "192.0.2.1", ""},
		{"a netmask", []Option{{Name: "local_ip", Value: "10.1.2.3"}, {Name: "netmask_ip", Value: "255.255.255.0"}}, "10.1.2.3", 24, "", ""},
		{"no address", nil, "", 16, "", ""},
		{"not an address", []Option{{Name: "local_ip", Value: "host"}}, "", 0, "", "--local_ip=host: want an IPv4 or IPv6 address"},
		{"a gap in the netmask", []Option{{Name: "netmask_ip", Value: "255.0.255.0"}}, "", 0, "", "want an IPv4 netmask"},
		{"IPv6 for IPv4", []Option{{Name: "remote_ip", Value: "fd00::2"}}, "", 0, "", "--remote_ip=fd00::2: want an IPv4 address, as --ip_version asks"},
		{"IPv4 for IPv6", []Option{{Name: "ip_version", Value: "ipv6"}, {Name: "local_ip", Value: "10.0.0.1"}}, "", 0, "", "want an IPv6 address"},
		{"the same address twice", []Option{{Name: "local_ip", Value: "10.0.0.1"}, {Name: "remote_ip", Value: "10.0.0.1"}}, "", 0, "", "both 10.0.0.1"},
	}
	for _, tt := range tests {
		set, u := settings(&Script{Options: tt.opts})
		if tt.want != "" {
			if u == nil || !u.Bad || !strings.Contains(u.Reason, tt.want) {
				t.Errorf("%s: %+v, want a wrong option saying %q", tt.name, u, tt.want)
			}
			continue
		}
		if u != nil {
			t.Errorf("%s: %v", tt.name, u.Reason)
			continue
		}
		if got := addrText(set.Local); got != tt.local || set.LocalBits != tt.bits || addrText(set.Remote) != tt.rem {
			t.Errorf("%s: local %s/%d, remote %s; want %s/%d, %s", tt.name, got, set.LocalBits, addrText(set.Remote), tt.local, tt.bits, tt.rem)
		}
	}
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
