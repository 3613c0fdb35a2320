package scenarios

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/peer"
)

// faultsOut keeps the artifacts of the fault scenarios for a look, in
// place of a temporary directory: go test -run Loss -faults.out /tmp/out
var faultsOut = flag.String("faults.out", "", "`dir`ectory for the artifacts of TestLoss and TestSynRetry (default a temporary one)")

// runFault runs one impairment scenario live in its namespace, fails the
// test unless it passed, and returns the segments of its capture.
func runFault(t *testing.T, sc *lab.Scenario) []capture.Packet {
	t.Helper()
	testenv.NetNS(t)
	out := *faultsOut
	if out == "" {
		out = t.TempDir()
	}
	results, err := lab.Run(context.Background(), []*lab.Scenario{sc}, lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	dir := filepath.Join(out, sc.Name)
	if !r.Pass {
		walk, _ := os.ReadFile(filepath.Join(dir, "walkthrough.md"))
		t.Fatalf("scenario failed:\n%s\n%s", r.Failure(), walk)
	}
	f, err := capture.Open(filepath.Join(dir, "capture.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var segs []capture.Packet
	if _, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		if p.TCP {
			q := *p
			q.Data = nil // valid only during the callback
			segs = append(segs, q)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return segs
}

// TestLoss checks what the loss scenario promises, on its capture: the lost
// piece sent twice, the second time labelled as Wireshark would; duplicate
// ACKs with SACK blocks; the whole request and the FIN acknowledged; the
// lost response retransmitted after the server's timer.
func TestLoss(t *testing.T) {
	segs := runFault(t, Loss())
	total := 0
	for _, p := range lossPieces() {
		total += len(p)
	}
	lost := uint32(1 + (lossPieceN-1)*lossPiece)
	var (
		piece, resp []capture.Packet
		dupSACK     int
		lastAck     uint32
	)
	for _, p := range segs {
		a, s := &p.Annotation, &p.Segment
		switch {
		case a.Dir == capture.ClientToServer && a.RelSeq == lost && s.Len == lossPiece:
			piece = append(piece, p)
		case a.Dir == capture.ServerToClient && s.Len == len(peer.Response):
			resp = append(resp, p)
		case a.Dir == capture.ServerToClient && a.Labels.Has(capture.DupACK) && s.Options.NSACK > 0:
			dupSACK++
		}
		if a.Dir == capture.ServerToClient && s.Flags.Has(capture.ACK) && int32(a.RelAck-lastAck) > 0 {
			lastAck = a.RelAck
		}
	}
	if dupSACK < 1 {
		t.Error("no duplicate ACK with SACK blocks")
	}
	if want := uint32(total + 2); lastAck != want {
		t.Errorf("the server acknowledged up to %d, want %d (the whole request and the FIN)", lastAck, want)
	}
	if len(piece) != 2 {
		t.Fatalf("piece %d sent %d times, want 2", lossPieceN, len(piece))
	}
	if l := piece[0].Annotation.Labels; l != 0 {
		t.Errorf("piece %d first sent with labels [%s], want none", lossPieceN, l)
	}
	// Which label the quick retransmission gets depends on timing; see
	// lossSteps.
	again := piece[1].Annotation.Labels
	if !again.Has(capture.Retransmission) && !again.Has(capture.OutOfOrder) {
		t.Errorf("piece %d sent again with labels [%s], want retransmission or out-of-order", lossPieceN, again)
	}
	t.Logf("piece %d retransmitted %v after the original, after %d duplicate ACKs: [%s]",
		lossPieceN, piece[1].Segment.Time.Sub(piece[0].Segment.Time), dupSACK, again)
	if len(resp) != 2 {
		t.Fatalf("%d response segments, want 2 (the lost one and its retransmission)", len(resp))
	}
	if l := resp[1].Annotation.Labels; !l.Has(capture.Retransmission) {
		t.Errorf("the second response segment is labelled [%s], want retransmission", l)
	}
	gap := resp[1].Segment.Time.Sub(resp[0].Segment.Time)
	if gap < 150*time.Millisecond || gap > 2*time.Second {
		t.Errorf("the response was retransmitted after %v, want the server's RTO or tail loss probe (about 200 ms)", gap)
	}
	t.Logf("response retransmitted after %v", gap)
}

// TestSynRetry checks the syn-retry capture: two SYNs with the same
// sequence number about a second apart, the second labelled a
// retransmission, then a completed handshake.
func TestSynRetry(t *testing.T) {
	segs := runFault(t, SynRetry())
	var syns []capture.Packet
	established := false
	for _, p := range segs {
		if p.Segment.Flags == capture.SYN {
			syns = append(syns, p)
		}
		if p.Segment.Flags == synAck && len(syns) == 2 {
			established = true
		}
	}
	if len(syns) != 2 {
		t.Fatalf("%d SYNs, want 2", len(syns))
	}
	if syns[0].Segment.Seq != syns[1].Segment.Seq {
		t.Errorf("SYN seq %d then %d, want the same", syns[0].Segment.Seq, syns[1].Segment.Seq)
	}
	gap := syns[1].Segment.Time.Sub(syns[0].Segment.Time)
	if gap < 900*time.Millisecond || gap > 1500*time.Millisecond {
		t.Errorf("the SYN was retransmitted after %v, want about 1 s (Linux's initial RTO)", gap)
	}
	t.Logf("SYN retransmitted after %v", gap)
	if l := syns[0].Annotation.Labels; l.Has(capture.Retransmission) {
		t.Errorf("the first SYN is labelled [%s]", l)
	}
	if l := syns[1].Annotation.Labels; !l.Has(capture.Retransmission) {
		t.Errorf("the second SYN is labelled [%s], want retransmission", l)
	}
	if !established {
		t.Error("no SYN/ACK after the second SYN")
	}
}
