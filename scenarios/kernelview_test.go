package scenarios

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
)

// TestKernelView runs rtt, rto and backlog live and checks what the
// kernel said of their sockets, as each records it in its metrics: slow
// start grows the server's window from its initial 10 or 11 segments
// several times over; each retransmission timeout doubles the RTO exactly
// (the kernel shifts it), from at least Linux's 200 ms; the listener never
// queues more than backlog+1.
func TestKernelView(t *testing.T) {
	testenv.NetNS(t)
	results, err := lab.Run(context.Background(), []*lab.Scenario{RTT(), RTO(), Backlog()}, lab.Config{Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]func(t *testing.T, m map[string]float64){
		"rtt": func(t *testing.T, m map[string]float64) {
			var names []string
			for k := range m {
				if strings.HasPrefix(k, "cwnd_rtt_") {
					names = append(names, k)
				}
			}
			sort.Strings(names)
			if len(names) < 3 {
				t.Fatalf("%d cwnd samples, want one per round trip: %v", len(names), m)
			}
			var cwnds []string
			first, most := m[names[0]], 0.0
			for _, k := range names {
				cwnds = append(cwnds, fmt.Sprint(m[k]))
				most = max(most, m[k])
			}
			t.Logf("cwnd per round trip: %s", strings.Join(cwnds, " "))
			if first < 10 || first > 11 {
				t.Errorf("cwnd %v before the transfer, want Linux's initial window (10, 11 after the first response)", first)
			}
			// HyStart may leave slow start early on a busy machine; even
			// so the window grows well past its start.
			if most < 4*first {
				t.Errorf("cwnd grew to %v from %v, want at least 4 times", most, first)
			}
		},
		"rto": func(t *testing.T, m map[string]float64) {
			rto, b1, b2 := m["rto_ms"], m["rto_ms_backoff_1"], m["rto_ms_backoff_2"]
			t.Logf("srtt %v ms, rttvar %v ms, rto %v ms, after one timeout %v ms, after two %v ms", m["srtt_ms"], m["rttvar_ms"], rto, b1, b2)
			if rto < 200+m["srtt_ms"]*0.9 {
				t.Errorf("rto %v ms, want srtt (%v ms) + at least 200 ms", rto, m["srtt_ms"])
			}
			if b1 != 2*rto || b2 != 4*rto {
				t.Errorf("rto %v ms, then %v and %v ms: want it doubled at each timeout", rto, b1, b2)
			}
		},
		"backlog": func(t *testing.T, m map[string]float64) {
			if q := m["accept_queue_max"]; q != backlogLen+1 {
				t.Errorf("the accept queue held at most %v connections, want backlog+1 = %d", q, backlogLen+1)
			}
		},
	}
	for _, r := range results {
		t.Run(r.Scenario, func(t *testing.T) {
			if !r.Pass {
				t.Fatalf("scenario failed:\n%s", r.Failure())
			}
			checks[r.Scenario](t, r.Metrics)
		})
	}
}
