package scenarios

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/report"
)

// TestScenariosIPv6 runs every scenario over ::1 (run -6): each passes,
// and its capture is IPv6.
func TestScenariosIPv6(t *testing.T) {
	testenv.NetNS(t)
	results, err := lab.Run(context.Background(), All(), lab.Config{Out: t.TempDir(), Options: lab.Options{IPv6: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		t.Run(r.Scenario, func(t *testing.T) {
			if !r.Pass {
				t.Fatalf("over IPv6:\n%s", r.Failure())
			}
			f, err := capture.Open(filepath.Join(r.Dir, report.CaptureFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			v4 := 0
			capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
				if p.TCP && !p.Segment.Src.Addr().Is6() {
					v4++
				}
				return nil
			})
			if v4 > 0 {
				t.Errorf("%d segments are not IPv6", v4)
			}
		})
	}
}

// TestServerFamilyMismatch: a server of the user's that listens on the
// other family's loopback is refused with the reason, not a bare
// "connection refused".
func TestServerFamilyMismatch(t *testing.T) {
	testenv.NetNS(t)
	testenv.Tool(t, "python3")
	tests := []struct {
		ipv6    bool
		command string
		want    string
	}{
		{false, "python3 -m http.server 8000 --bind ::1", "listens on port 8000 over IPv6 only: run with -6"},
		{true, "python3 -m http.server 8000 --bind 127.0.0.1", "listens on port 8000 over IPv4 only: run without -6"},
	}
	for _, tt := range tests {
		results, err := lab.Run(context.Background(), []*lab.Scenario{HalfClose()}, lab.Config{
			Out: t.TempDir(), Options: lab.Options{ServerCommand: tt.command, Port: 8000, IPv6: tt.ipv6}})
		if err != nil {
			t.Fatal(err)
		}
		if r := results[0]; r.Pass || !strings.Contains(r.Error, tt.want) || len(r.Mismatches) != 0 {
			t.Errorf("%s (IPv6 %v): pass %v, error %q, %d mismatches; want the reason alone", tt.command, tt.ipv6, r.Pass, r.Error, len(r.Mismatches))
		}
	}
}
