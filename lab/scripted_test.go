package lab

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestLeaveOutScripted: a run of every scenario leaves out those with a
// scripted side, saying why, only when no TUN device can be made.
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
		{errors.New("open /dev/net/tun: permission denied"), []string{"a", "l"}, []string{"s ", "t "}},
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
			if i < len(lines) && (!strings.HasPrefix(lines[i], s) || !strings.Contains(lines[i], "needs root") || !strings.Contains(lines[i], "permission denied")) {
				t.Errorf("line %q: want the scenario %q, that it needs root, and why", lines[i], s)
			}
		}
	}
}
