package lab

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestLeaveOutScripted: a run of every scenario leaves out those with a
// scripted side, saying which and why, only when there is a reason.
func TestLeaveOutScripted(t *testing.T) {
	list := []*Scenario{{Name: "a"}, {Name: "s", Topology: Scripted}, {Name: "l", Topology: LAN}, {Name: "t", Topology: ScriptedServer}}
	names := func(l []*Scenario) []string {
		var out []string
		for _, sc := range l {
			out = append(out, sc.Name)
		}
		return out
	}
	for _, tt := range []struct {
		err  error
		want []string
		said []string
	}{
		{nil, []string{"a", "s", "l", "t"}, nil},
		{errors.New("no TUN here"), []string{"a", "l"}, []string{"s ", "t "}},
	} {
		var w bytes.Buffer
		got := names(leaveOut(list, tt.err, &w))
		if !slices.Equal(got, tt.want) {
			t.Errorf("with %v: ran %q, want %q", tt.err, got, tt.want)
		}
		lines := strings.Split(strings.TrimSpace(w.String()), "\n")
		if len(tt.said) == 0 && w.Len() > 0 || len(tt.said) > 0 && len(lines) != len(tt.said) {
			t.Errorf("with %v: said %q", tt.err, w.String())
		}
		for i, s := range tt.said {
			if i < len(lines) && (!strings.HasPrefix(lines[i], s) || !strings.HasSuffix(lines[i], "left out: no TUN here")) {
				t.Errorf("line %q: want the scenario %q left out, and why", lines[i], s)
			}
		}
	}
}

// TestScriptedReason: what a scripted peer cannot do is said; nothing
// when all is well, with or without root (a veth pair stands in for the
// TUN device a user may not make).
func TestScriptedReason(t *testing.T) {
	for _, tt := range []struct {
		opt       Options
		noSandbox bool
		want      string
	}{
		{Options{}, false, ""},
		{Options{IPv6: true}, false, "IPv4 only (-6)"},
		{Options{Path: "delay=20ms"}, false, "no -path"},
		{Options{}, true, "(-no-sandbox)"},
	} {
		err := scriptedReason(tt.opt, tt.noSandbox)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v, no-sandbox %v: %v, want none", tt.opt, tt.noSandbox, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v, no-sandbox %v: %v, want %q", tt.opt, tt.noSandbox, err, tt.want)
		}
	}
}
