package lab

import (
	"strings"
	"testing"
	"time"
)

// TestListensAlone: a listener that stands unannounced for graceAlone is
// reported with what to call; one that comes and goes, or none, is not.
func TestListensAlone(t *testing.T) {
	t0 := time.Unix(0, 0)
	tests := []struct {
		name   string
		seen   []bool // listening at t0, t0+250ms, ...
		report bool
	}{
		{"nothing listens", []bool{false, false, false, false, false, false}, false},
		{"listens for a second", []bool{true, true, true, true, true}, true},
		{"listens for less", []bool{true, true, true, true}, false},
		{"comes and goes", []bool{true, true, false, true, true, true}, false},
	}
	for _, tt := range tests {
		l := newListensAlone("127.0.0.1:8000")
		var err error
		for i, seen := range tt.seen {
			err = l.check(t0.Add(time.Duration(i)*graceAlone/4), func(port int) bool {
				if port != 8000 {
					t.Errorf("%s: looked at port %d, want 8000", tt.name, port)
				}
				return seen
			})
			if err != nil {
				break
			}
		}
		if (err != nil) != tt.report {
			t.Errorf("%s: error %v, want one: %v", tt.name, err, tt.report)
		}
		if err != nil && !strings.Contains(err.Error(), "env.Listen(ctx, nil)") {
			t.Errorf("%s: %v does not say what to call", tt.name, err)
		}
	}
}
