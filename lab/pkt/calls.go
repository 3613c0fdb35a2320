package pkt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file has the calls beyond a socket's own: descriptors of other
// kinds (pipe, open, epoll_create), the calls that move data between
// them (splice, sendfile), messages (sendto, sendmsg, recvmsg), ioctl and
// epoll's.

// errnoOutcome is a call's outcome for err: its errno, or err itself
// when it has none.
func errnoOutcome(err error) (outcome, error) {
	var en unix.Errno
	if errors.As(err, &en) {
		return outcome{ret: -1, errno: en}, nil
	}
	return outcome{}, err
}

// newFile makes the calls that make a descriptor from no other: pipe's
// two ends ([r, w], each checked against the script's numbers), open
// (a path from the script's folder) and epoll_create.
func (c *caller) newFile(sc *Syscall) (outcome, error) {
	switch sc.Name {
	case "pipe":
		arr, ok := sc.Args[0].(*Array)
		if !ok || len(arr.Elems) != 2 {
			return outcome{}, fmt.Errorf("pipe: want [r, w], got %v", sc.Args[0])
		}
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return errnoOutcome(err)
		}
		var diffs []string
		for i, real := range p {
			n := c.files.addOther(real)
			if want, err := eval(arr.Elems[i]); err == nil && want != int64(n) {
				diffs = append(diffs, fmt.Sprintf("pipe's end %d is %d, expected %d", i, n, want))
			}
		}
		return outcome{mismatch: strings.Join(diffs, ", ")}, nil
	case "open":
		path, ok := sc.Args[0].(String)
		if !ok {
			return outcome{}, fmt.Errorf("open: want a path in quotes, got %v", sc.Args[0])
		}
		flags, err := eval(sc.Args[1])
		if err != nil {
			return outcome{}, fmt.Errorf("open: flags: %w", err)
		}
		name := string(path)
		if !filepath.IsAbs(name) {
			name = filepath.Join(c.dir, name)
		}
		fd, err := unix.Open(name, int(flags)|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return errnoOutcome(err)
		}
		return outcome{ret: int64(c.files.addOther(fd))}, nil
	default: // epoll_create
		size, err := eval(sc.Args[0])
		if err != nil {
			return outcome{}, fmt.Errorf("epoll_create: size: %w", err)
		}
		fd, err := unix.EpollCreate(int(size))
		if err != nil {
			return errnoOutcome(err)
		}
		unix.CloseOnExec(fd)
		return outcome{ret: int64(c.files.addOther(fd))}, nil
	}
}

// more makes the other calls on the descriptor fd (the script's first
// argument); n evaluates an argument. ok is false for a call it does not
// know.
func (c *caller) more(sc *Syscall, fd int, n func(int) int64) (out outcome, ok bool, err error) {
	ok = true
	switch sc.Name {
	case "ioctl":
		switch req := n(1); req {
		case unix.SIOCINQ, unix.SIOCOUTQ, unix.SIOCOUTQNSD:
			v, err := unix.IoctlGetInt(fd, uint(req))
			if err != nil {
				out, err = errnoOutcome(err)
				return out, ok, err
			}
			got := int64(v)
			return outcome{value: &got, valueArg: 2}, ok, nil
		}
		return outcome{}, ok, fmt.Errorf("ioctl: only SIOCINQ, SIOCOUTQ and SIOCOUTQNSD are supported")
	case "sendto":
		// The address (...) is the connection's: a TCP socket's
		// sendto is its send, but with MSG_FASTOPEN, which connects an
		// unconnected socket to the script's address with the data in
		// its SYN.
		if nullBuffer(sc) {
			out, err = nullCall(sc, fd, n(2), n(3))
			return out, ok, err
		}
		if sendtoUnspec(sc) {
			got, err := sendtoNoFamily(fd, make([]byte, n(2)), int(n(3)))
			if err != nil {
				out, err = errnoOutcome(err)
				return out, ok, err
			}
			return outcome{ret: int64(got)}, ok, nil
		}
		var to unix.Sockaddr
		if n(3)&unix.MSG_FASTOPEN != 0 {
			to = c.sockaddr(c.peer, c.connectPort)
		}
		got, err := unix.SendmsgN(fd, make([]byte, n(2)), nil, to, int(n(3)))
		if err != nil {
			out, err = errnoOutcome(err)
			return out, ok, err
		}
		return outcome{ret: int64(got)}, ok, nil
	case "sendmsg", "recvmsg":
		m, err := msgOf(sc)
		if err != nil {
			return outcome{}, ok, err
		}
		if sc.Name == "sendmsg" {
			// With MSG_FASTOPEN, as sendto's, it connects to the
			// script's address with the data in its SYN.
			var to unix.Sockaddr
			if n(2)&unix.MSG_FASTOPEN != 0 {
				to = c.sockaddr(c.peer, c.connectPort)
			}
			got, err := unix.SendmsgBuffers(fd, m.buffers(), nil, to, int(n(2)))
			if err != nil {
				out, err = errnoOutcome(err)
				return out, ok, err
			}
			return outcome{ret: int64(got)}, ok, nil
		}
		var oob []byte
		if len(m.cmsgs) > 0 {
			oob = make([]byte, 1024)
		}
		got, oobn, flags, err := recvmsg(fd, make([]byte, m.size), oob, int(n(2)))
		if err != nil {
			out, err = errnoOutcome(err)
			return out, ok, err
		}
		out = outcome{ret: int64(got)}
		if m.flags != nil && int64(flags) != *m.flags {
			out.mismatch = fmt.Sprintf("msg_flags are %#x, expected %#x", flags, *m.flags)
		}
		if out.mismatch == "" {
			out.mismatch = m.checkControl(oob[:oobn], c.v6 || c.mapped, c.stamps)
		}
		return out, ok, nil
	case "splice":
		got, err := unix.Splice(fd, nil, c.files.real(int(n(2))), nil, int(n(4)), int(n(5)))
		if err != nil {
			out, err = errnoOutcome(err)
			return out, ok, err
		}
		return outcome{ret: got}, ok, nil
	case "sendfile":
		var off int64
		var offp *int64
		if a, isArr := sc.Args[2].(*Array); isArr && len(a.Elems) == 1 {
			if off, err = eval(a.Elems[0]); err != nil {
				return outcome{}, ok, fmt.Errorf("sendfile: offset: %w", err)
			}
			offp = &off
		}
		got, err := unix.Sendfile(fd, c.files.real(int(n(1))), offp, int(n(3)))
		if err != nil {
			out, err = errnoOutcome(err)
			return out, ok, err
		}
		return outcome{ret: int64(got)}, ok, nil
	case "epoll_ctl":
		ev, err := c.epollEvent(sc.Args[3], int(n(2)))
		if err != nil {
			return outcome{}, ok, fmt.Errorf("epoll_ctl: %w", err)
		}
		out, err = errnoOutcome(unix.EpollCtl(fd, int(n(1)), c.files.real(int(n(2))), ev))
		return out, ok, err
	case "epoll_wait":
		return c.epollWait(sc, fd, n)
	}
	return outcome{}, false, nil
}

// sendtoNoFamily sends p to an address of family AF_UNSPEC, which
// unix.Sendto cannot name.
func sendtoNoFamily(fd int, p []byte, flags int) (int, error) {
	sa := unix.RawSockaddr{Family: unix.AF_UNSPEC}
	var base unsafe.Pointer
	if len(p) > 0 {
		base = unsafe.Pointer(&p[0])
	}
	r, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(base), uintptr(len(p)), uintptr(flags),
		uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// recvmsg receives into p and oob as the system call does with a
// message of one buffer: unix.Recvmsg reads a byte into a buffer of its
// own where p is empty and oob is not, and a script's recvmsg of an
// empty buffer from the error queue (SO_TIMESTAMPING's reports) returns
// 0, the length of what it copied.
func recvmsg(fd int, p, oob []byte, flags int) (n, oobn, recvflags int, err error) {
	var iov unix.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
	}
	var h unix.Msghdr
	h.Iov = &iov
	h.Iovlen = 1
	if len(oob) > 0 {
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
	r, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), uintptr(flags))
	if errno != 0 {
		return 0, 0, 0, errno
	}
	return int(r), int(h.Controllen), int(h.Flags), nil
}

// msg is what a sendmsg's or recvmsg's struct msghdr says.
type msg struct {
	size  int    // msg_iov's lengths, summed
	iovs  []int  // msg_iov's lengths
	flags *int64 // msg_flags, when the script names them
	// cmsgs are a recvmsg's msg_control: the control messages it must
	// get, each an int.
	cmsgs []cmsgWant
}

// iovGap keeps a message's buffers apart in memory, as a C program's
// separate allocations are: with MSG_ZEROCOPY the kernel pins each
// buffer's pages and joins buffers that touch into one fragment.
const iovGap = 64

// buffers returns msg_iov's buffers, each of its own length, none
// touching the next.
func (m msg) buffers() [][]byte {
	mem := make([]byte, m.size+iovGap*len(m.iovs))
	bufs := make([][]byte, len(m.iovs))
	off := 0
	for i, l := range m.iovs {
		bufs[i] = mem[off : off+l : off+l]
		off += l + iovGap
	}
	return bufs
}

// cmsgWant is {cmsg_level=L, cmsg_type=T, cmsg_data=V}, V an int or a
// struct sock_extended_err ({ee_errno=E, ee_origin=O, ...}) whose named
// fields are compared.
type cmsgWant struct {
	level, typ, data int64
	// ipLevel and recvErr: the script wrote packetdrill's CMSG_LEVEL_IP
	// or CMSG_TYPE_RECVERR, which name the socket family's level and
	// type (SOL_IP and IP_RECVERR, or SOL_IPV6 and IPV6_RECVERR).
	ipLevel, recvErr bool
	ee               map[string]int64 // V's fields, when V is a struct
	// ts is V's {scm_sec=S, scm_nsec=N}, a struct scm_timestamping's
	// first time (its software one) on the script's clock: the kernel's
	// must be within the timing tolerance of it (0, 0: not compared).
	ts *time.Duration
}

// stampCheck is what the control messages' times are compared against:
// the wall-clock time of a script time (the kernel stamps with
// CLOCK_REALTIME), and how far from it a stamp may be (packetdrill's
// --tolerance_usecs, the absolute one).
type stampCheck struct {
	at  func(time.Duration) time.Time
	tol time.Duration
}

// extErrFields are the fields of a struct sock_extended_err
// (linux/errqueue.h), by their byte offset and size.
var extErrFields = map[string]struct{ off, size int }{
	"ee_errno": {0, 4}, "ee_origin": {4, 1}, "ee_type": {5, 1}, "ee_code": {6, 1},
	"ee_pad": {7, 1}, "ee_info": {8, 4}, "ee_data": {12, 4},
}

// resolve returns the level and type the control message has on a
// socket of family inet6 (AF_INET6) or not.
func (w *cmsgWant) resolve(inet6 bool) (level, typ int64) {
	level, typ = w.level, w.typ
	if w.ipLevel {
		level = unix.SOL_IP
		if inet6 {
			level = unix.SOL_IPV6
		}
	}
	if w.recvErr {
		typ = unix.IP_RECVERR
		if inet6 {
			typ = unix.IPV6_RECVERR
		}
	}
	return level, typ
}

// checkData compares one control message's data with the script's.
func (w *cmsgWant) checkData(level, typ int64, data []byte, sc stampCheck) string {
	if w.ts != nil {
		return w.checkStamp(level, typ, data, sc)
	}
	if w.ee == nil {
		if len(data) < 4 {
			return fmt.Sprintf("msg_control: level %d type %d carries %d bytes, expected an int", level, typ, len(data))
		}
		if v := int64(int32(binary.NativeEndian.Uint32(data))); v != w.data {
			return fmt.Sprintf("msg_control: level %d type %d carries %d, expected %d", level, typ, v, w.data)
		}
		return ""
	}
	if len(data) < 16 {
		return fmt.Sprintf("msg_control: level %d type %d carries %d bytes, expected a struct sock_extended_err (16)", level, typ, len(data))
	}
	names := make([]string, 0, len(w.ee))
	for n := range w.ee {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := extErrFields[n]
		var v int64
		if f.size == 4 {
			v = int64(binary.NativeEndian.Uint32(data[f.off:]))
		} else {
			v = int64(data[f.off])
		}
		if v != w.ee[n] {
			return fmt.Sprintf("msg_control: level %d type %d: %s is %d, expected %d", level, typ, n, v, w.ee[n])
		}
	}
	return ""
}

// checkStamp compares a struct scm_timestamping's first time, the
// kernel's software stamp, with the script's, as packetdrill does: the
// two may be apart by the absolute tolerance at most.
func (w *cmsgWant) checkStamp(level, typ int64, data []byte, sc stampCheck) string {
	if len(data) < 48 {
		return fmt.Sprintf("msg_control: level %d type %d carries %d bytes, expected a struct scm_timestamping (48)", level, typ, len(data))
	}
	if *w.ts == 0 || sc.at == nil {
		return ""
	}
	got := time.Unix(int64(binary.NativeEndian.Uint64(data)), int64(binary.NativeEndian.Uint64(data[8:])))
	want := sc.at(*w.ts)
	if d := got.Sub(want); d > sc.tol || d < -sc.tol {
		return fmt.Sprintf("msg_control: level %d type %d: scm_timestamping's time is %s on the script's clock, expected %s ± %v",
			level, typ, scriptTime(*w.ts+d), scriptTime(*w.ts), sc.tol)
	}
	return ""
}

// scriptTime writes a time on the script's clock as packetdrill's
// scm_sec and scm_nsec would.
func scriptTime(d time.Duration) string {
	return fmt.Sprintf("%.6fs", d.Seconds())
}

// checkControl compares the control messages received (oob) on a socket
// of family inet6 or not with the script's: each must come, with the
// script's data, stamps compared as sc says. It returns what differs, or
// "".
func (m msg) checkControl(oob []byte, inet6 bool, sc stampCheck) string {
	if len(m.cmsgs) == 0 {
		return ""
	}
	got, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Sprintf("msg_control: %v", err)
	}
	for _, w := range m.cmsgs {
		level, typ := w.resolve(inet6)
		found := false
		for _, g := range got {
			if int64(g.Header.Level) != level || int64(g.Header.Type) != typ {
				continue
			}
			found = true
			if d := w.checkData(level, typ, g.Data, sc); d != "" {
				return d
			}
		}
		if !found {
			return fmt.Sprintf("msg_control: no message of level %d type %d", level, typ)
		}
	}
	return ""
}

// msgOf reads {msg_name(...)=..., msg_iov(n)=[{..., len}, ...],
// msg_flags=F, msg_control=[]}: the iov's lengths and the flags; a
// name other than ... or control messages are not played (check skips
// them before).
func msgOf(sc *Syscall) (msg, error) {
	var m msg
	st, ok := sc.Args[1].(*Struct)
	if !ok {
		return m, fmt.Errorf("%s: want {msg_name(...)=..., msg_iov(1)=[{..., N}], msg_flags=0}, got %v", sc.Name, sc.Args[1])
	}
	for _, f := range st.Fields {
		switch f.Name {
		case "msg_name":
		case "msg_control":
			arr, ok := f.Value.(*Array)
			if !ok {
				return m, fmt.Errorf("%s: msg_control: want [{cmsg_level=L, cmsg_type=T, cmsg_data=V}, ...], got %v", sc.Name, f.Value)
			}
			for _, e := range arr.Elems {
				c, err := cmsgOf(e)
				if err != nil {
					return m, fmt.Errorf("%s: msg_control: %w", sc.Name, err)
				}
				m.cmsgs = append(m.cmsgs, c)
			}
		case "msg_iov":
			arr, ok := f.Value.(*Array)
			if !ok {
				return m, fmt.Errorf("%s: msg_iov: want [{..., N}, ...], got %v", sc.Name, f.Value)
			}
			for _, e := range arr.Elems {
				iov, ok := e.(*Struct)
				if !ok || len(iov.Fields) != 2 {
					return m, fmt.Errorf("%s: msg_iov: want {..., N}, got %v", sc.Name, e)
				}
				l, err := eval(iov.Fields[1].Value)
				if err != nil {
					return m, fmt.Errorf("%s: msg_iov: %w", sc.Name, err)
				}
				m.size += int(l)
				m.iovs = append(m.iovs, int(l))
			}
		case "msg_flags":
			if f.Value == (Ellipsis{}) {
				continue
			}
			v, err := eval(f.Value)
			if err != nil {
				return m, fmt.Errorf("%s: msg_flags: %w", sc.Name, err)
			}
			m.flags = &v
		default:
			return m, fmt.Errorf("%s: struct msghdr has no field %s", sc.Name, f.Name)
		}
	}
	return m, nil
}

// isStamp reports whether d is a struct scm_timestamping as packetdrill
// writes it: {scm_sec=S, scm_nsec=N}.
func isStamp(d *Struct) bool {
	if len(d.Fields) != 2 {
		return false
	}
	return d.Fields[0].Name == "scm_sec" && d.Fields[1].Name == "scm_nsec"
}

// cmsgOf reads one control message {cmsg_level=L, cmsg_type=T,
// cmsg_data=V} whose data is an int, a struct sock_extended_err or a
// struct scm_timestamping's first time.
func cmsgOf(e Expr) (cmsgWant, error) {
	var c cmsgWant
	st, ok := e.(*Struct)
	if !ok || len(st.Fields) != 3 {
		return c, fmt.Errorf("want {cmsg_level=L, cmsg_type=T, cmsg_data=V}, got %v", e)
	}
	for _, f := range st.Fields {
		switch {
		case f.Name == "cmsg_level" && f.Value == Name("CMSG_LEVEL_IP"):
			c.ipLevel = true
			continue
		case f.Name == "cmsg_type" && f.Value == Name("CMSG_TYPE_RECVERR"):
			c.recvErr = true
			continue
		}
		if d, ok := f.Value.(*Struct); ok && f.Name == "cmsg_data" && isStamp(d) {
			var sec, nsec int64
			for _, sf := range d.Fields {
				v, err := eval(sf.Value)
				if err != nil {
					return c, fmt.Errorf("cmsg_data: %s: %w", sf.Name, err)
				}
				if sf.Name == "scm_sec" {
					sec = v
				} else {
					nsec = v
				}
			}
			ts := time.Duration(sec)*time.Second + time.Duration(nsec)
			c.ts = &ts
			continue
		}
		if d, ok := f.Value.(*Struct); ok && f.Name == "cmsg_data" {
			c.ee = map[string]int64{}
			for _, ef := range d.Fields {
				if _, known := extErrFields[ef.Name]; !known {
					return c, fmt.Errorf("cmsg_data: a struct sock_extended_err has no field %s (a struct played is one: ee_errno, ee_origin, ee_type, ee_code, ee_pad, ee_info, ee_data)", ef.Name)
				}
				v, err := eval(ef.Value)
				if err != nil {
					return c, fmt.Errorf("cmsg_data: %s: %w", ef.Name, err)
				}
				c.ee[ef.Name] = v
			}
			continue
		}
		v, err := eval(f.Value)
		if err != nil {
			return c, fmt.Errorf("%s: %w (an int, or a struct sock_extended_err for cmsg_data, is played)", f.Name, err)
		}
		switch f.Name {
		case "cmsg_level":
			c.level = v
		case "cmsg_type":
			c.typ = v
		case "cmsg_data":
			c.data = v
		default:
			return c, fmt.Errorf("a control message has no field %s", f.Name)
		}
	}
	return c, nil
}

// epollEvent reads {events=..., fd=N} (or ptr=P) for the descriptor fd;
// the event carries the script's number of fd, which epoll_wait gives
// back.
func (c *caller) epollEvent(e Expr, fd int) (*unix.EpollEvent, error) {
	st, ok := e.(*Struct)
	if !ok {
		return nil, fmt.Errorf("want {events=..., fd=N}, got %v", e)
	}
	ev := &unix.EpollEvent{Fd: int32(fd)}
	for _, f := range st.Fields {
		v, err := eval(f.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		switch f.Name {
		case "events":
			ev.Events = uint32(v)
		case "fd", "ptr", "u32", "u64":
			ev.Fd = int32(v)
		default:
			return nil, fmt.Errorf("struct epoll_event has no field %s", f.Name)
		}
	}
	return ev, nil
}

// epollWait waits for one event at most as the script's first struct
// says ({events=..., fd=N}; {events=0, ptr=0} when none is due) and
// compares it with what came.
func (c *caller) epollWait(sc *Syscall, fd int, n func(int) int64) (outcome, bool, error) {
	want, err := c.epollEvent(sc.Args[1], -1)
	if err != nil {
		return outcome{}, true, fmt.Errorf("epoll_wait: %w", err)
	}
	evs := make([]unix.EpollEvent, max(1, n(2)))
	got, err := unix.EpollWait(fd, evs, int(n(3)))
	if err != nil {
		out, err := errnoOutcome(err)
		return out, true, err
	}
	out := outcome{ret: int64(got)}
	if got > 0 && (evs[0].Events != want.Events || want.Fd >= 0 && evs[0].Fd != want.Fd) {
		out.mismatch = fmt.Sprintf("the event is {events=%#x, fd=%d}, expected {events=%#x, fd=%d}", evs[0].Events, evs[0].Fd, want.Events, want.Fd)
	}
	return out, true, nil
}
