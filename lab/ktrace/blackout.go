package ktrace

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

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
	fds   []int // perf events, where tracefs is not mounted
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
		if err := s.attach(group, tp, prog); err != nil {
			s.close()
			return nil, fmt.Errorf("sentinel on %s:%s: %w", group, tp, err)
		}
	}
	return s, nil
}

// attach attaches prog to the tracepoint group:name, through tracefs
// where it is mounted, else through a perf event of the tracepoint's id,
// read from a tracefs mounted for the moment in a mount namespace of its
// own (a machine whose init does not mount tracefs).
func (s *sentinels) attach(group, name string, prog *ebpf.Program) error {
	l, err := link.Tracepoint(group, name, prog, nil)
	if err == nil {
		s.links = append(s.links, l)
		return nil
	}
	id, ierr := privateTracepointID(group, name)
	if ierr != nil {
		return fmt.Errorf("%w; %w", err, ierr)
	}
	attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_TRACEPOINT, Config: id, Sample_type: unix.PERF_SAMPLE_RAW, Sample: 1, Wakeup: 1}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, -1, 0, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("perf event of tracepoint %d: %w", id, err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, prog.FD()); err != nil {
		unix.Close(fd)
		return fmt.Errorf("attach to the perf event: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		unix.Close(fd)
		return fmt.Errorf("enable the perf event: %w", err)
	}
	s.fds = append(s.fds, fd)
	return nil
}

// privateTracepointID reads the id of the tracepoint group:name from a
// tracefs that a thread of its own mounts in a mount namespace of its
// own: nothing changes for the rest of the machine, and the thread ends
// with it.
func privateTracepointID(group, name string) (uint64, error) {
	type result struct {
		id  uint64
		err error
	}
	c := make(chan result, 1)
	go func() {
		// Never unlocked: the thread leaves the mount namespace by
		// ending with the goroutine.
		runtime.LockOSThread()
		id, err := func() (uint64, error) {
			if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
				return 0, fmt.Errorf("mount namespace: %w", err)
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return 0, fmt.Errorf("mount namespace: %w", err)
			}
			dir, err := os.MkdirTemp("", "ktrace-tracefs-")
			if err != nil {
				return 0, err
			}
			defer os.Remove(dir)
			if err := unix.Mount("tracefs", dir, "tracefs", 0, ""); err != nil {
				return 0, fmt.Errorf("mount tracefs: %w", err)
			}
			defer unix.Unmount(dir, unix.MNT_DETACH)
			b, err := os.ReadFile(filepath.Join(dir, "events", group, name, "id"))
			if err != nil {
				return 0, err
			}
			return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		}()
		c <- result{id, err}
	}()
	r := <-c
	return r.id, r.err
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
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	for _, p := range s.progs {
		p.Close()
	}
	s.links, s.fds, s.progs = nil, nil, nil
}
