package expect

import (
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
)

// TestJudgeKernel: what a step requires of the kernel is judged on the
// segments that matched it, and fails where their events lack it (or,
// for NoDrop, hold it).
func TestJudgeKernel(t *testing.T) {
	drop := func(reason string) KernelEvent { return KernelEvent{Kind: KernelDrop, Reason: reason} }
	resent := func(c Cause) KernelEvent { return KernelEvent{Kind: KernelRetransmit, AtSender: true, Cause: c} }
	pkts := numbered([]capture.Packet{seg(toServer, PA, 1, 1, 10), seg(toServer, PA, 1, 1, 10, capture.Retransmission), seg(toClient, A, 1, 11, 0)})
	tests := []struct {
		name   string
		checks [3][]KernelCheck // of each step
		events map[int][]KernelEvent
		want   string // the failing check's got, "" for a pass
		frame  int
	}{
		{"dropped", [3][]KernelCheck{{Dropped("NETFILTER_DROP")}}, map[int][]KernelEvent{0: {drop("NETFILTER_DROP")}}, "", 0},
		{"dropped, one of two reasons", [3][]KernelCheck{{Dropped("TCP_ZEROWINDOW", "NO_SOCKET")}}, map[int][]KernelEvent{0: {drop("NO_SOCKET")}}, "", 0},
		{"dropped, any reason", [3][]KernelCheck{{Dropped()}}, map[int][]KernelEvent{0: {drop("NO_SOCKET")}}, "", 0},
		{"dropped for another reason", [3][]KernelCheck{{Dropped("NETFILTER_DROP")}}, map[int][]KernelEvent{0: {drop("NO_SOCKET")}}, "drop (NO_SOCKET)", 1},
		{"not dropped", [3][]KernelCheck{{Dropped("NETFILTER_DROP")}}, nil, "nothing", 1},
		{"dropped at the sender is no drop of it", [3][]KernelCheck{{Dropped()}}, map[int][]KernelEvent{0: {{Kind: KernelDrop, AtSender: true}}}, "drop", 1},
		{"no drop", [3][]KernelCheck{nil, nil, {NoDrop()}}, map[int][]KernelEvent{0: {drop("NETFILTER_DROP")}}, "", 0},
		{"no drop, but dropped", [3][]KernelCheck{nil, nil, {NoDrop()}}, map[int][]KernelEvent{2: {drop("TCP_ZEROWINDOW")}}, "drop (TCP_ZEROWINDOW)", 3},
		{"resent fast", [3][]KernelCheck{nil, {Resent(FastRetransmit)}}, map[int][]KernelEvent{1: {resent(FastRetransmit)}}, "", 0},
		{"resent by either timer", [3][]KernelCheck{nil, {Resent(TailLossProbe, RTO)}}, map[int][]KernelEvent{1: {resent(RTO)}}, "", 0},
		{"resent by the wrong cause", [3][]KernelCheck{nil, {Resent(FastRetransmit)}}, map[int][]KernelEvent{1: {resent(RTO)}}, "retransmission (RTO)", 2},
		{"resent, any cause", [3][]KernelCheck{nil, {Resent()}}, map[int][]KernelEvent{1: {resent(TailLossProbe)}}, "", 0},
		{"not resent", [3][]KernelCheck{nil, {Resent()}}, nil, "nothing", 2},
		{"entered", [3][]KernelCheck{nil, nil, {Entered(capture.Established)}}, map[int][]KernelEvent{2: {{Kind: KernelStateChange, To: capture.Established}}}, "", 0},
		{"entered another", [3][]KernelCheck{nil, nil, {Entered(capture.Established)}}, map[int][]KernelEvent{2: {{Kind: KernelStateChange, To: capture.CloseWait}}}, "state change to CLOSE_WAIT", 3},
		{"reset for", [3][]KernelCheck{{ResetFor("NOT_SPECIFIED")}}, map[int][]KernelEvent{0: {{Kind: KernelResetSent, AtSender: true, Reason: "NOT_SPECIFIED"}}}, "", 0},
		{"reset for another", [3][]KernelCheck{{ResetFor("NOT_SPECIFIED")}}, map[int][]KernelEvent{0: {{Kind: KernelResetSent, AtSender: true, Reason: "TCP_CLOSE"}}}, "RST sent (TCP_CLOSE)", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := []Step{C2S(PA).SeqNum(1), C2S(PA).SeqNum(1).With(capture.Retransmission), S2C(A)}
			for i, c := range tt.checks {
				if len(c) > 0 {
					steps[i] = steps[i].Kernel(c...)
				}
			}
			v := Match("k", steps, pkts, Options{})
			if !v.Pass || v.KernelUnjudged != NoKernelAccount {
				t.Fatalf("match: pass %v, unjudged %q: %v", v.Pass, v.KernelUnjudged, v.Mismatches)
			}
			v.JudgeKernel("k", pkts, tt.events)
			if v.KernelUnjudged != Judged {
				t.Errorf("unjudged after JudgeKernel: %q", v.KernelUnjudged)
			}
			if tt.want == "" {
				if !v.Pass {
					t.Fatalf("failed: %v", v.Mismatches)
				}
				return
			}
			if v.Pass || len(v.Mismatches) != 1 {
				t.Fatalf("pass %v, mismatches %v; want one", v.Pass, v.Mismatches)
			}
			m := v.Mismatches[0]
			if m.Field() != FieldKernel || m.Diffs[0].Got != tt.want || m.Frame != tt.frame || m.Step != StepNum(tt.frame) {
				t.Errorf("mismatch %+v; want got %q at frame and step %d", m, tt.want, tt.frame)
			}
			if !strings.Contains(m.Error(), "field kernel: expected ") {
				t.Errorf("report: %s", m.Error())
			}
		})
	}
}

// TestKernelUnjudged: steps without kernel checks leave nothing
// unjudged; SkipKernel says why checks went unjudged; a failed match is
// not judged on the kernel.
func TestKernelUnjudged(t *testing.T) {
	pkts := numbered([]capture.Packet{seg(toServer, PA, 1, 1, 10)})
	v := Match("k", []Step{C2S(PA)}, pkts, Options{})
	v.SkipKernel(KernelSampled)
	if v.KernelUnjudged != Judged {
		t.Errorf("no checks, yet unjudged: %q", v.KernelUnjudged)
	}
	steps := []Step{Either(C2S(PA), C2S(A)).Kernel(NoDrop())}
	if got := steps[0].KernelChecks(); len(got) != 1 || got[0].String() != "no drop" {
		t.Errorf("KernelChecks of a choice: %v", got)
	}
	v = Match("k", steps, pkts, Options{})
	v.SkipKernel(KernelSampled)
	if v.KernelUnjudged != KernelSampled || !v.Pass {
		t.Errorf("skipped: %q, pass %v", v.KernelUnjudged, v.Pass)
	}
	v = Match("k", []Step{S2C(A).Kernel(NoDrop())}, pkts, Options{})
	v.JudgeKernel("k", pkts, map[int][]KernelEvent{0: {{Kind: KernelDrop}}})
	if v.Pass || len(v.Mismatches) != 1 || v.Mismatches[0].Field() == FieldKernel || v.KernelUnjudged != StepsFailed {
		t.Errorf("a failed match judged on the kernel: %v, %q", v.Mismatches, v.KernelUnjudged)
	}
	if s := C2S(PA).Kernel(Dropped("NETFILTER_DROP")).String(); !strings.Contains(s, "kernel[a drop (NETFILTER_DROP)]") {
		t.Errorf("String: %s", s)
	}
	// Kernel on a choice copies its alternatives: the original keeps none.
	orig := Either(C2S(PA), C2S(A))
	_ = orig.Kernel(NoDrop())
	if len(orig.KernelChecks()) != 0 {
		t.Errorf("Kernel changed the step it refined")
	}
}

// TestKernelCheckStringIn: a requirement in words, in English and in
// Chinese; the kernel's names stay.
func TestKernelCheckStringIn(t *testing.T) {
	tests := []struct {
		c      KernelCheck
		en, zh string
	}{
		{Dropped("NETFILTER_DROP"), "a drop (NETFILTER_DROP)", "丢包 (NETFILTER_DROP)"},
		{NoDrop(), "no drop", "没有丢包"},
		{Dropped("A", "B"), "a drop (A or B)", "丢包 (A 或 B)"},
		{Resent(TailLossProbe, RTO), "a retransmission (tail loss probe or RTO)", "重传 (尾部丢失探测 或 RTO)"},
		{Resent(), "a retransmission", "重传"},
		{Entered(capture.TimeWait), "a state change to TIME_WAIT", "状态变化, 变为 TIME_WAIT"},
		{ResetFor("NOT_SPECIFIED"), "a RST sent (NOT_SPECIFIED)", "发送RST (NOT_SPECIFIED)"},
	}
	for _, tt := range tests {
		if got := tt.c.StringIn(English); got != tt.en || tt.c.String() != tt.en {
			t.Errorf("English: %q, want %q", got, tt.en)
		}
		if got := tt.c.StringIn(Chinese); got != tt.zh {
			t.Errorf("Chinese: %q, want %q", got, tt.zh)
		}
	}
}

// TestUnjudgedTexts: every reason is told in both languages.
func TestUnjudgedTexts(t *testing.T) {
	for u := NoKernelAccount; u < numUnjudged; u++ {
		en, zh := u.StringIn(English), u.StringIn(Chinese)
		if en == "" || zh == "" || en == zh || u.String() != en {
			t.Errorf("reason %d: %q, %q", u, en, zh)
		}
	}
}
