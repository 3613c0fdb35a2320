package lab

import (
	"errors"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/ktrace"
	"github.com/tcplab/tcplab/lab/report"
)

// kvSteps are kvConn's segments as steps, the retransmission of frame 5
// requiring resent, the server's ACK of it requiring ack.
func kvSteps(resent, ack expect.KernelCheck) []expect.Step {
	const syn, akc, fin, psh = capture.SYN, capture.ACK, capture.FIN, capture.PSH
	return []expect.Step{
		expect.C2S(syn), expect.S2C(syn | akc), expect.C2S(akc),
		expect.C2S(psh | akc), expect.C2S(psh | akc).Kernel(resent), expect.S2C(akc).Kernel(ack),
		expect.C2S(fin | akc), expect.S2C(akc), expect.S2C(fin | akc), expect.C2S(akc).Kernel(expect.Entered(capture.Closed)),
	}
}

// TestJudgeSteps: the runner gives the judge the kernel's events of a
// traced run, each at the segment's sender or receiver, with their
// causes; a run that sampled, lost events, or saw no kernel leaves the
// steps' kernel checks unjudged and says why, and so does a run whose
// events disagree with the steps when the kernel skipped its programs.
func TestJudgeSteps(t *testing.T) {
	pkts := kvConn()
	traced := func() *kernelAccount { return joinKernel(kvEvents(), pkts, kvServer) }
	dropped := func() *kernelAccount {
		return joinKernel(append(kvEvents(), ktrace.Event{Time: kvAt(221), Kind: ktrace.Drop, Src: kvServer, Dst: kvClient,
			HaveSeq: true, Flags: capture.ACK, Seq: 501, Ack: 111, Reason: "TCP_ZEROWINDOW"}), pkts, kvServer)
	}
	tests := []struct {
		name      string
		account   *kernelAccount
		resent    expect.KernelCheck
		ack       expect.KernelCheck
		pass      bool
		unjudged  expect.Unjudged
		failFrame int
	}{
		{"RTO", traced(), expect.Resent(expect.RTO), expect.NoDrop(), true, expect.Judged, 0},
		{"not fast", traced(), expect.Resent(expect.FastRetransmit), expect.NoDrop(), false, expect.Judged, 5},
		{"a drop at the receiver", dropped(), expect.Resent(expect.RTO), expect.Dropped("TCP_ZEROWINDOW"), true, expect.Judged, 0},
		{"no drop, but one", dropped(), expect.Resent(expect.RTO), expect.NoDrop(), false, expect.Judged, 6},
		{"not resent by the receiver", traced(), expect.Resent(expect.RTO), expect.Resent(), false, expect.Judged, 6},
		{"sampled", &kernelAccount{source: report.KernelSampled, untraced: errors.New("no root")}, expect.Resent(expect.FastRetransmit), expect.NoDrop(), true, expect.KernelSampled, 0},
		{"lost", func() *kernelAccount { a := traced(); a.lost = 3; return a }(), expect.Resent(expect.FastRetransmit), expect.NoDrop(), true, expect.KernelEventsLost, 0},
		// During a blackout, events that disagree with the steps leave
		// them unjudged; events that agree are judged.
		{"blackout, disagreeing", func() *kernelAccount { a := traced(); a.blackouts = 2; return a }(), expect.Resent(expect.FastRetransmit), expect.NoDrop(), true, expect.KernelBlackout, 0},
		{"blackout, agreeing", func() *kernelAccount { a := traced(); a.blackouts = 2; return a }(), expect.Resent(expect.RTO), expect.NoDrop(), true, expect.Judged, 0},
		{"none", nil, expect.Resent(expect.FastRetransmit), expect.NoDrop(), true, expect.KernelNotObserved, 0},
		{"none, with why", &kernelAccount{untraced: errors.New("bulk")}, expect.Resent(expect.FastRetransmit), expect.NoDrop(), true, expect.KernelNotObserved, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := expect.Match("kv", kvSteps(tt.resent, tt.ack), pkts, expect.Options{})
			if !v.Pass {
				t.Fatalf("match: %v", v.Mismatches)
			}
			tt.account.judgeSteps("kv", &v, pkts)
			if v.Pass != tt.pass || v.KernelUnjudged != tt.unjudged {
				t.Fatalf("pass %v, unjudged %q; want %v, %q: %v", v.Pass, v.KernelUnjudged, tt.pass, tt.unjudged, v.Mismatches)
			}
			if !tt.pass && (len(v.Mismatches) != 1 || v.Mismatches[0].Frame != tt.failFrame || v.Mismatches[0].Field() != expect.FieldKernel) {
				t.Errorf("mismatches %+v; want one of the kernel at frame %d", v.Mismatches, tt.failFrame)
			}
		})
	}
}

// TestExpectEvents: each kind and cause of the account reaches the judge
// under its own name.
func TestExpectEvents(t *testing.T) {
	pkts := kvConn()
	evs := map[int][]report.KernelEvent{
		4: {
			{Side: report.SideClient, Kind: report.KernelRetransmit, Cause: report.CauseTailLossProbe},
			{Side: report.SideServer, Kind: report.KernelDrop, Reason: "TCP_OFOMERGE"},
			{Side: report.SideClient, Kind: report.KernelResetSent, Reason: "NOT_SPECIFIED"},
			{Side: report.SideServer, Kind: report.KernelResetReceived},
			{Side: report.SideServer, Kind: report.KernelState, To: capture.CloseWait},
		},
		1: {{Side: report.SideServer, Kind: report.KernelRetransmitSYNACK, Cause: report.CauseSYNACK}},
		0: {{Kind: 0}},
	}
	got := expectEvents(pkts, evs)
	want := map[int][]expect.KernelEvent{
		4: {
			{Kind: expect.KernelRetransmit, AtSender: true, Cause: expect.TailLossProbe},
			{Kind: expect.KernelDrop, Reason: "TCP_OFOMERGE"},
			{Kind: expect.KernelResetSent, AtSender: true, Reason: "NOT_SPECIFIED"},
			{Kind: expect.KernelResetReceived},
			{Kind: expect.KernelStateChange, To: capture.CloseWait},
		},
		1: {{Kind: expect.KernelRetransmit, AtSender: true, Cause: expect.SYNACKTimeout}},
	}
	if len(got) != len(want) {
		t.Fatalf("events at %d packets, want %d: %+v", len(got), len(want), got)
	}
	for j, w := range want {
		if len(got[j]) != len(w) {
			t.Fatalf("packet %d: %+v, want %+v", j, got[j], w)
		}
		for k := range w {
			if got[j][k] != w[k] {
				t.Errorf("packet %d event %d: %+v, want %+v", j, k, got[j][k], w[k])
			}
		}
	}
	for c := report.CauseUnknown; c <= report.CauseSYNACK; c++ {
		if got := expectCause(c).String(); got != c.String() {
			t.Errorf("cause %s reaches the judge as %s", c, got)
		}
	}
}
