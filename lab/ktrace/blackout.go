package ktrace

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// A blackout is a moment when the kernel ran none of the BPF programs of
// a tracepoint that fired: while any task on the CPU is inside a BPF
// system call (a map's lookup or update, which another tracer makes when
// it opens, say) the kernel marks BPF busy on that CPU, and a task that
// runs there meanwhile (the softirq that takes a segment in, on top of
// whatever task it interrupts) fires tracepoints whose programs do not
// run. For the BTF tracepoint programs the Tracer reads, nothing counts
// them: soak runs showed, once in hundreds of runs on a busy machine, a
// socket's last changes or a resend missing from the events, while
// ftrace, on the same tracepoint, saw them. A classic tracepoint program
// on the same tracepoint is skipped too, and that the kernel counts (its
// recursion misses): a sentinel, which does nothing but be there, counts
// the blackouts on each tracepoint the Tracer's events come from, on any
// socket, the lab's or not.
type sentinels struct {
	progs []*ebpf.Program
	links []link.Link
}

// tracepointGroups are the tracefs groups of the tracepoints of programs.
var tracepointGroups = map[string]string{
	"inet_sock_set_state":   "sock",
	"kfree_skb":             "skb",
	"tcp_retransmit_skb":    "tcp",
	"tcp_retransmit_synack": "tcp",
	"tcp_cong_state_set":    "tcp",
	"tcp_send_reset":        "tcp",
	"tcp_receive_reset":     "tcp",
}

// openSentinels attaches a sentinel to each of the tracepoints, or says
// why it cannot (no tracefs, say), undoing what it did.
func openSentinels(tracepoints []string) (*sentinels, error) {
	s := &sentinels{}
	insns := asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	for _, tp := range tracepoints {
		group, ok := tracepointGroups[tp]
		if !ok {
			s.close()
			return nil, fmt.Errorf("sentinel: tracepoint %s: no group", tp)
		}
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "ktrace_sentinel", Type: ebpf.TracePoint, Instructions: insns, License: "GPL"})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("sentinel: %w", err)
		}
		s.progs = append(s.progs, prog)
		l, err := link.Tracepoint(group, tp, prog, nil)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("sentinel on %s:%s: %w", group, tp, err)
		}
		s.links = append(s.links, l)
	}
	return s, nil
}

// count returns the blackouts the sentinels have counted.
func (s *sentinels) count() uint64 {
	var n uint64
	for _, p := range s.progs {
		if st, err := p.Stats(); err == nil {
			n += st.RecursionMisses
		}
	}
	return n
}

// close detaches and releases the sentinels.
func (s *sentinels) close() {
	for _, l := range s.links {
		l.Close()
	}
	for _, p := range s.progs {
		p.Close()
	}
	s.links, s.progs = nil, nil
}
