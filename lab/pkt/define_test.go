package pkt

import (
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
+0 close(UNDEFINED) = 0
`
	s, err := Parse("defines.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"OPT=SO_REUSEADDR", "ONE=1", "FLAG=0x4", `CC="reno"`, "ERR=ENOENT", "MY_COOKIE=abcd1234", "TFO_COOKIE=0011223344556677"} {
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
