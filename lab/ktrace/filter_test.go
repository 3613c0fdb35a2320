package ktrace

import (
	"slices"
	"testing"
	"time"
)

// TestFilter: a Tracer reports the connections of the namespaces it was
// given and of no other, the caller's own included.
func TestFilter(t *testing.T) {
	a, b, host := newSpace(t), newSpace(t), space{}
	for _, c := range []struct {
		name   string
		traced []space
	}{
		{"a only", []space{a}},
		{"a and b", []space{a, b}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var inodes []uint64
			for _, s := range c.traced {
				inodes = append(inodes, s.inode)
			}
			tr := openTracer(t, inodes...)
			// One connection in each namespace, a's last: once its
			// events are in, the others' would be too.
			var conns []pair
			for _, s := range []space{host, b, a} {
				p := connect(t, s)
				p.client.Close()
				p.server.Close()
				conns = append(conns, p)
			}
			evs := collect(t, tr, 5*time.Second, closedBoth(conns[2]))
			evs = settle(tr, 50*time.Millisecond, evs)
			for i, s := range []space{host, b, a} {
				want := slices.Contains(c.traced, s)
				got := len(changes(evs, conns[i].clientCookie)) > 0
				if got != want {
					t.Errorf("connection %d (namespace %d): reported %v, want %v", i, s.inode, got, want)
				}
			}
			for _, e := range evs {
				if !slices.Contains(inodes, e.NetNS) {
					t.Errorf("event %s from namespace %d, not one of %d", e, e.NetNS, inodes)
				}
			}
		})
	}
}
