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
// recursion misses): a sentinel, which does nothing but be there, on
// each tracepoint the Tracer's events come from, counts the blackouts
// there, on any socket, the lab's or not.
type sentinels struct {
	prog  *ebpf.Program // one, on every tracepoint: its misses are theirs
	links []link.Link
	fds   []int // perf events, where tracefs is not mounted
}

// tracepoint is a tracepoint by its tracefs group and name.
type tracepoint struct{ group, name string }

// openSentinels attaches a sentinel to each of the tracepoints, or says
// why it cannot, undoing what it did.
func openSentinels(tracepoints []tracepoint) (*sentinels, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "ktrace_sentinel", Type: ebpf.TracePoint,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, License: "GPL"})
	if err != nil {
		return nil, fmt.Errorf("sentinel: %w", err)
	}
	s := &sentinels{prog: prog}
	// Where tracefs is not mounted, link.Tracepoint cannot find the
	// tracepoints: their ids are read at once, from a tracefs of the
	// moment.
	var ids map[tracepoint]uint64
	for _, tp := range tracepoints {
		l, err := link.Tracepoint(tp.group, tp.name, prog, nil)
		if err == nil {
			s.links = append(s.links, l)
			continue
		}
		if ids == nil {
			var ierr error
			if ids, ierr = privateTracepointIDs(tracepoints); ierr != nil {
				s.close()
				return nil, fmt.Errorf("sentinel on %s:%s: %w; %w", tp.group, tp.name, err, ierr)
			}
		}
		if err := s.attachPerf(ids[tp]); err != nil {
			s.close()
			return nil, fmt.Errorf("sentinel on %s:%s: %w", tp.group, tp.name, err)
		}
	}
	return s, nil
}

// attachPerf attaches the sentinel to a perf event of the tracepoint
// whose id is id.
func (s *sentinels) attachPerf(id uint64) error {
	attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_TRACEPOINT, Config: id, Sample_type: unix.PERF_SAMPLE_RAW, Sample: 1, Wakeup: 1}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, -1, 0, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("perf event of tracepoint %d: %w", id, err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, s.prog.FD()); err != nil {
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

// privateTracepointIDs reads the ids of the tracepoints from a tracefs
// that a thread of its own mounts in a mount namespace of its own:
// nothing changes for the rest of the machine, and the thread ends with
// it.
func privateTracepointIDs(tracepoints []tracepoint) (map[tracepoint]uint64, error) {
	type result struct {
		ids map[tracepoint]uint64
		err error
	}
	c := make(chan result, 1)
	go func() {
		// Never unlocked: the thread leaves the mount namespace by
		// ending with the goroutine.
		runtime.LockOSThread()
		ids, err := func() (map[tracepoint]uint64, error) {
			if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
				return nil, fmt.Errorf("mount namespace: %w", err)
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return nil, fmt.Errorf("mount namespace: %w", err)
			}
			dir, err := os.MkdirTemp("", "ktrace-tracefs-")
			if err != nil {
				return nil, err
			}
			defer os.Remove(dir)
			if err := unix.Mount("tracefs", dir, "tracefs", 0, ""); err != nil {
				return nil, fmt.Errorf("mount tracefs: %w", err)
			}
			defer unix.Unmount(dir, unix.MNT_DETACH)
			ids := map[tracepoint]uint64{}
			for _, tp := range tracepoints {
				b, err := os.ReadFile(filepath.Join(dir, "events", tp.group, tp.name, "id"))
				if err != nil {
					return nil, err
				}
				if ids[tp], err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil {
					return nil, fmt.Errorf("id of %s:%s: %w", tp.group, tp.name, err)
				}
			}
			return ids, nil
		}()
		c <- result{ids, err}
	}()
	r := <-c
	return r.ids, r.err
}

// count returns the blackouts the sentinel has counted.
func (s *sentinels) count() uint64 {
	st, err := s.prog.Stats()
	if err != nil {
		return 0
	}
	return st.RecursionMisses
}

// close detaches and releases the sentinel.
func (s *sentinels) close() {
	for _, l := range s.links {
		l.Close()
	}
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	s.prog.Close()
	s.links, s.fds = nil, nil
}
