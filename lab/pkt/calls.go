package pkt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

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
		var to unix.Sockaddr
		if n(3)&unix.MSG_FASTOPEN != 0 {
			to = c.sockaddr(c.peer)
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
			got, err := unix.SendmsgN(fd, make([]byte, m.size), nil, nil, int(n(2)))
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
		got, oobn, flags, _, err := unix.Recvmsg(fd, make([]byte, m.size), oob, int(n(2)))
		if err != nil {
			out, err = errnoOutcome(err)
			return out, ok, err
		}
		out = outcome{ret: int64(got)}
		if m.flags != nil && int64(flags) != *m.flags {
			out.mismatch = fmt.Sprintf("msg_flags are %#x, expected %#x", flags, *m.flags)
		}
		if out.mismatch == "" {
			out.mismatch = m.checkControl(oob[:oobn])
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

// msg is what a sendmsg's or recvmsg's struct msghdr says.
type msg struct {
	size  int    // msg_iov's lengths, summed
	iovs  []int  // msg_iov's lengths
	flags *int64 // msg_flags, when the script names them
	// cmsgs are a recvmsg's msg_control: the control messages it must
	// get, each an int.
	cmsgs []cmsgWant
}

// cmsgWant is {cmsg_level=L, cmsg_type=T, cmsg_data=V}.
type cmsgWant struct{ level, typ, data int64 }

// checkControl compares the control messages received (oob) with the
// script's: each must come, its data the script's int. It returns what
// differs, or "".
func (m msg) checkControl(oob []byte) string {
	if len(m.cmsgs) == 0 {
		return ""
	}
	got, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Sprintf("msg_control: %v", err)
	}
	for _, w := range m.cmsgs {
		found := false
		for _, g := range got {
			if int64(g.Header.Level) != w.level || int64(g.Header.Type) != w.typ {
				continue
			}
			found = true
			if len(g.Data) < 4 {
				return fmt.Sprintf("msg_control: level %d type %d carries %d bytes, expected an int", w.level, w.typ, len(g.Data))
			}
			if v := int64(int32(binary.NativeEndian.Uint32(g.Data))); v != w.data {
				return fmt.Sprintf("msg_control: level %d type %d carries %d, expected %d", w.level, w.typ, v, w.data)
			}
		}
		if !found {
			return fmt.Sprintf("msg_control: no message of level %d type %d, expected one carrying %d", w.level, w.typ, w.data)
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

// cmsgOf reads one control message {cmsg_level=L, cmsg_type=T,
// cmsg_data=V} whose data is an int.
func cmsgOf(e Expr) (cmsgWant, error) {
	var c cmsgWant
	st, ok := e.(*Struct)
	if !ok || len(st.Fields) != 3 {
		return c, fmt.Errorf("want {cmsg_level=L, cmsg_type=T, cmsg_data=V}, got %v", e)
	}
	for _, f := range st.Fields {
		v, err := eval(f.Value)
		if err != nil {
			return c, fmt.Errorf("%s: %w (an int is played)", f.Name, err)
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
