package scenarios

import (
	"context"
	"path/filepath"
	"sort"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
)

// TestBulkCapturesEverything sends 1 GiB at full speed and checks the
// capture is complete: no kernel drop, the client's segments cover every
// byte of the request without a gap, and the server's acknowledgements
// reach its last byte.
func TestBulkCapturesEverything(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	results, err := lab.Run(context.Background(), []*lab.Scenario{Bulk()}, lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if !r.Pass {
		t.Fatalf("bulk failed:\n%s", r.Failure())
	}
	if r.Drops != 0 {
		t.Fatalf("%d packets dropped by the kernel", r.Drops)
	}
	total := uint32(len(bulkHead()) + BulkBytes)
	f, err := capture.Open(filepath.Join(out, "bulk", "capture.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Two CPUs transmit on loopback, so the capture may hold a segment
	// after one that follows it (Wireshark then flags lost-segment and
	// out-of-order): coverage is checked on the sorted byte ranges.
	var ranges [][2]uint32
	var maxAck uint32
	_, err = capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		s, a := &p.Segment, &p.Annotation
		switch {
		case !p.TCP:
		case s.Problem == capture.HeaderCut:
			t.Errorf("frame %d: TCP header cut", s.Frame)
		case a.Dir == capture.ClientToServer && s.Len > 0:
			ranges = append(ranges, [2]uint32{a.RelSeq, a.RelSeq + uint32(s.Len)})
		case a.Dir == capture.ServerToClient && s.Flags.Has(capture.ACK) && a.RelAck > maxAck && a.RelAck <= 1+total:
			maxAck = a.RelAck
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i][0] < ranges[j][0] })
	next := uint32(1)
	for _, r := range ranges {
		if r[0] > next {
			t.Fatalf("bytes %d to %d of the request are not in the capture", next, r[0])
		}
		next = max(next, r[1])
	}
	sent := next - 1
	if sent != total {
		t.Errorf("the capture holds %d bytes of the client's data, the client sent %d", sent, total)
	}
	if maxAck != 1+total {
		t.Errorf("the server acknowledged up to byte %d, want %d", maxAck-1, total)
	}
}
