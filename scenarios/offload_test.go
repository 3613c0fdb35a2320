package scenarios

import (
	"context"
	"net/netip"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/impair"
)

// offloadLostSYN is Offload with the first SYN of its second connection
// dropped by the server's kernel (nftables, after the capture saw it), as
// a device being reconfigured can lose it: the client resends it after
// its 1 s timer.
func offloadLostSYN() *lab.Scenario {
	sc := Offload()
	sc.Name = "offload-lost-syn"
	sc.NeedsNamespace = true
	sc.Setup = func(ctx context.Context, env *lab.Env) (func(), error) {
		server, err := netip.ParseAddrPort(env.Addr)
		if err != nil {
			return nil, err
		}
		in, err := impair.Install(impair.Rule{Port: server.Port(), Kind: impair.SYN, Nth: []int{2}})
		if err != nil {
			return nil, err
		}
		return func() { in.Remove() }, nil
	}
	return sc
}

// TestOffloadResentSYN: offload passes a run whose second connection's
// SYN was lost and resent, as TCP recovers from it; the plain handshake
// fails that run, and offload's own steps fail it when the resent SYN is
// no copy of the first.
func TestOffloadResentSYN(t *testing.T) {
	segs := runFault(t, offloadLostSYN())
	resent := -1
	for i, p := range segs {
		if p.Annotation.Stream == 1 && p.Segment.Flags == capture.SYN && p.Annotation.Labels.Has(capture.Retransmission) {
			resent = i
		}
	}
	if resent < 0 {
		t.Fatal("no resent SYN on connection 2: the rule dropped nothing")
	}
	plain := func(stream int) []expect.Step {
		var steps []expect.Step
		for _, st := range expect.Handshake() {
			steps = append(steps, st.On(stream))
		}
		return steps
	}
	tests := []struct {
		name  string
		steps []expect.Step
		edit  func([]capture.Packet)
		pass  bool
	}{
		{"offload's steps", offloadSteps(lab.Options{}), nil, true},
		{"the plain handshake", offloadStepsWith(plain), nil, false},
		{"a resent SYN that is no copy of the first", offloadSteps(lab.Options{}), func(p []capture.Packet) { p[resent].Annotation.RelSeq = 7 }, false},
		{"a resent SYN not labelled a retransmission", offloadSteps(lab.Options{}), func(p []capture.Packet) { p[resent].Annotation.Labels = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts := append([]capture.Packet(nil), segs...)
			if tt.edit != nil {
				tt.edit(pkts)
			}
			v := expect.Match("offload", tt.steps, pkts, expect.Options{})
			if v.Pass != tt.pass {
				t.Errorf("pass %v, want %v: %v", v.Pass, tt.pass, v.Mismatches)
			}
		})
	}
}
