package pkt

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Port is packetdrill's default port: the kernel's listener binds it,
// and the kernel's connect goes to the script's.
const Port = 8080

// linux/errqueue.h's zerocopy origin and code, which package unix lacks.
const (
	soEEOriginZerocopy     = 5
	soEECodeZerocopyCopied = 1
)

// symbols are the names a script's arguments may use.
var symbols = map[string]int64{
	"AF_INET": unix.AF_INET, "AF_INET6": unix.AF_INET6, "PF_INET": unix.AF_INET, "AF_UNSPEC": unix.AF_UNSPEC,
	"SOCK_STREAM": unix.SOCK_STREAM, "SOCK_NONBLOCK": unix.SOCK_NONBLOCK, "SOCK_CLOEXEC": unix.SOCK_CLOEXEC,
	"IPPROTO_TCP": unix.IPPROTO_TCP, "IPPROTO_IP": unix.IPPROTO_IP,
	"SOL_SOCKET": unix.SOL_SOCKET, "SOL_TCP": unix.SOL_TCP, "SOL_IP": unix.SOL_IP,
	"SO_REUSEADDR": unix.SO_REUSEADDR, "SO_REUSEPORT": unix.SO_REUSEPORT, "SO_KEEPALIVE": unix.SO_KEEPALIVE,
	"SO_SNDBUF": unix.SO_SNDBUF, "SO_RCVBUF": unix.SO_RCVBUF, "SO_LINGER": unix.SO_LINGER,
	"SO_ERROR": unix.SO_ERROR, "NULL": 0,
	"SIOCINQ": unix.SIOCINQ, "SIOCOUTQ": unix.SIOCOUTQ, "SIOCOUTQNSD": unix.SIOCOUTQNSD,
	"MSG_EOR": unix.MSG_EOR, "MSG_FASTOPEN": unix.MSG_FASTOPEN, "MSG_ERRQUEUE": unix.MSG_ERRQUEUE, "MSG_TRUNC": unix.MSG_TRUNC,
	"MSG_ZEROCOPY": unix.MSG_ZEROCOPY, "SO_ZEROCOPY": unix.SO_ZEROCOPY, "SO_MARK": unix.SO_MARK, "SO_TIMESTAMPING": unix.SO_TIMESTAMPING, "SCM_TIMESTAMPING": unix.SCM_TIMESTAMPING,
	// SO_TIMESTAMPING's flags and the kinds of its reports (linux/net_tstamp.h).
	"SOF_TIMESTAMPING_TX_HARDWARE": unix.SOF_TIMESTAMPING_TX_HARDWARE, "SOF_TIMESTAMPING_TX_SOFTWARE": unix.SOF_TIMESTAMPING_TX_SOFTWARE,
	"SOF_TIMESTAMPING_RX_HARDWARE": unix.SOF_TIMESTAMPING_RX_HARDWARE, "SOF_TIMESTAMPING_RX_SOFTWARE": unix.SOF_TIMESTAMPING_RX_SOFTWARE,
	"SOF_TIMESTAMPING_SOFTWARE": unix.SOF_TIMESTAMPING_SOFTWARE, "SOF_TIMESTAMPING_RAW_HARDWARE": unix.SOF_TIMESTAMPING_RAW_HARDWARE,
	"SOF_TIMESTAMPING_OPT_ID": unix.SOF_TIMESTAMPING_OPT_ID, "SOF_TIMESTAMPING_TX_SCHED": unix.SOF_TIMESTAMPING_TX_SCHED,
	"SOF_TIMESTAMPING_TX_ACK": unix.SOF_TIMESTAMPING_TX_ACK, "SOF_TIMESTAMPING_OPT_CMSG": unix.SOF_TIMESTAMPING_OPT_CMSG,
	"SOF_TIMESTAMPING_OPT_TSONLY": unix.SOF_TIMESTAMPING_OPT_TSONLY, "SOF_TIMESTAMPING_OPT_STATS": unix.SOF_TIMESTAMPING_OPT_STATS,
	"SCM_TSTAMP_SND": unix.SCM_TSTAMP_SND, "SCM_TSTAMP_SCHED": unix.SCM_TSTAMP_SCHED, "SCM_TSTAMP_ACK": unix.SCM_TSTAMP_ACK,
	// A struct sock_extended_err's origins and codes (linux/errqueue.h),
	// and the levels and types of its control message.
	"SO_EE_ORIGIN_NONE": unix.SO_EE_ORIGIN_NONE, "SO_EE_ORIGIN_LOCAL": unix.SO_EE_ORIGIN_LOCAL,
	"SO_EE_ORIGIN_ICMP": unix.SO_EE_ORIGIN_ICMP, "SO_EE_ORIGIN_ICMP6": unix.SO_EE_ORIGIN_ICMP6,
	"SO_EE_ORIGIN_TIMESTAMPING": unix.SO_EE_ORIGIN_TIMESTAMPING, "SO_EE_ORIGIN_ZEROCOPY": soEEOriginZerocopy,
	"SO_EE_CODE_ZEROCOPY_COPIED": soEECodeZerocopyCopied,
	"SOL_IPV6":                   unix.SOL_IPV6, "IP_RECVERR": unix.IP_RECVERR, "IPV6_RECVERR": unix.IPV6_RECVERR,
	"EPOLL_CTL_ADD": unix.EPOLL_CTL_ADD, "EPOLL_CTL_MOD": unix.EPOLL_CTL_MOD, "EPOLL_CTL_DEL": unix.EPOLL_CTL_DEL,
	"EPOLLIN": unix.EPOLLIN, "EPOLLOUT": unix.EPOLLOUT, "EPOLLERR": unix.EPOLLERR, "EPOLLHUP": unix.EPOLLHUP,
	"EPOLLRDHUP": unix.EPOLLRDHUP, "EPOLLET": unix.EPOLLET, "EPOLLONESHOT": unix.EPOLLONESHOT, "EPOLLEXCLUSIVE": unix.EPOLLEXCLUSIVE,
	"SPLICE_F_MOVE": unix.SPLICE_F_MOVE, "SPLICE_F_NONBLOCK": unix.SPLICE_F_NONBLOCK, "SPLICE_F_MORE": unix.SPLICE_F_MORE,
	"O_CREAT": unix.O_CREAT, "O_TRUNC": unix.O_TRUNC, "O_CLOEXEC": unix.O_CLOEXEC, "SO_DOMAIN": unix.SO_DOMAIN, "SO_TYPE": unix.SO_TYPE, "SO_PROTOCOL": unix.SO_PROTOCOL, "SO_RCVLOWAT": unix.SO_RCVLOWAT, "SO_SNDLOWAT": unix.SO_SNDLOWAT,
	"TCP_NODELAY": unix.TCP_NODELAY, "TCP_CORK": unix.TCP_CORK, "TCP_MAXSEG": unix.TCP_MAXSEG,
	"TCP_KEEPIDLE": unix.TCP_KEEPIDLE, "TCP_KEEPINTVL": unix.TCP_KEEPINTVL, "TCP_KEEPCNT": unix.TCP_KEEPCNT,
	"TCP_SYNCNT": unix.TCP_SYNCNT, "TCP_LINGER2": unix.TCP_LINGER2, "TCP_DEFER_ACCEPT": unix.TCP_DEFER_ACCEPT,
	"TCP_WINDOW_CLAMP": unix.TCP_WINDOW_CLAMP, "TCP_QUICKACK": unix.TCP_QUICKACK,
	"TCP_USER_TIMEOUT": unix.TCP_USER_TIMEOUT, "TCP_NOTSENT_LOWAT": unix.TCP_NOTSENT_LOWAT,
	"TCP_CM_INQ":   unix.TCP_INQ,
	"TCP_FASTOPEN": unix.TCP_FASTOPEN, "TCP_FASTOPEN_KEY": unix.TCP_FASTOPEN_KEY, "TCP_FASTOPEN_CONNECT": unix.TCP_FASTOPEN_CONNECT,
	"TCP_INQ": unix.TCP_INQ, "TCP_THIN_LINEAR_TIMEOUTS": unix.TCP_THIN_LINEAR_TIMEOUTS,
	"IP_TOS": unix.IP_TOS, "IP_TTL": unix.IP_TTL, "IP_FREEBIND": unix.IP_FREEBIND, "TCP_INFO": unix.TCP_INFO,
	"IP_MTU_DISCOVER": unix.IP_MTU_DISCOVER, "IP_PMTUDISC_DONT": unix.IP_PMTUDISC_DONT, "IP_PMTUDISC_WANT": unix.IP_PMTUDISC_WANT,
	"IP_PMTUDISC_DO": unix.IP_PMTUDISC_DO, "IP_PMTUDISC_PROBE": unix.IP_PMTUDISC_PROBE,
	"IPV6_MTU_DISCOVER": unix.IPV6_MTU_DISCOVER, "IPV6_PMTUDISC_DONT": unix.IPV6_PMTUDISC_DONT, "IPV6_PMTUDISC_WANT": unix.IPV6_PMTUDISC_WANT,
	"IPV6_PMTUDISC_DO": unix.IPV6_PMTUDISC_DO, "IPV6_PMTUDISC_PROBE": unix.IPV6_PMTUDISC_PROBE,
	// The states and congestion states of tcpi_state and tcpi_ca_state.
	"TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3, "TCP_FIN_WAIT1": 4,
	"TCP_FIN_WAIT2": 5, "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7, "TCP_CLOSE_WAIT": 8,
	"TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11,
	"TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3, "TCP_CA_Loss": 4,
	"SHUT_RD": unix.SHUT_RD, "SHUT_WR": unix.SHUT_WR, "SHUT_RDWR": unix.SHUT_RDWR,
	"F_GETFL": unix.F_GETFL, "F_SETFL": unix.F_SETFL,
	"O_RDONLY": unix.O_RDONLY, "O_WRONLY": unix.O_WRONLY, "O_RDWR": unix.O_RDWR, "O_NONBLOCK": unix.O_NONBLOCK,
	"MSG_DONTWAIT": unix.MSG_DONTWAIT, "MSG_PEEK": unix.MSG_PEEK, "MSG_MORE": unix.MSG_MORE,
	"MSG_WAITALL": unix.MSG_WAITALL, "MSG_NOSIGNAL": unix.MSG_NOSIGNAL, "MSG_OOB": unix.MSG_OOB,
	"POLLIN": unix.POLLIN, "POLLOUT": unix.POLLOUT, "POLLERR": unix.POLLERR, "POLLHUP": unix.POLLHUP,
	"POLLRDHUP": unix.POLLRDHUP, "POLLPRI": unix.POLLPRI,
}

// errnoValue is the errno named name (ENOMSG), or 0.
func errnoValue(name string) unix.Errno {
	for e := unix.Errno(1); e < 256; e++ {
		if unix.ErrnoName(e) == name {
			return e
		}
	}
	return 0
}

// eval returns the value of an integer argument.
func eval(e Expr) (int64, error) {
	switch e := e.(type) {
	case Int:
		return int64(e), nil
	case Name:
		v, ok := symbols[string(e)]
		if !ok {
			// An errno's name is its number too, as in ee_errno=ENOMSG.
			if en := errnoValue(string(e)); en != 0 {
				return int64(en), nil
			}
			return 0, fmt.Errorf("unknown name %s", e)
		}
		return v, nil
	case *BinOp:
		l, err := eval(e.L)
		if err != nil {
			return 0, err
		}
		r, err := eval(e.R)
		if err != nil {
			return 0, err
		}
		if e.Op == '&' {
			return l & r, nil
		}
		return l | r, nil
	case *Array:
		if len(e.Elems) == 1 {
			return eval(e.Elems[0])
		}
	}
	return 0, fmt.Errorf("want a number, got %v", e)
}

// outcome is what a call did: its return value or its errno.
type outcome struct {
	ret   int64
	errno unix.Errno
	// value is what getsockopt and fcntl(F_GETFL) read, for the script's
	// expected value.
	value *int64
	// valueArg is the argument value is compared with (0: the fourth,
	// getsockopt's).
	valueArg int
	// mismatch says how a TCP_INFO read differs from the script's
	// fields.
	mismatch string
}

// caller makes a script's system calls on kernel sockets, keeping the
// script's file descriptor numbers apart from the process's. Its calls
// run on a thread in the script's network namespace.
type caller struct {
	// dir is the script's folder, where open's relative paths start.
	dir string
	// mapped is --ip_version=ipv4-mapped-ipv6: sockets are AF_INET6,
	// their addresses IPv4 mapped into IPv6.
	mapped bool
	// v6 is --ip_version=ipv6: sockets and addresses are IPv6.
	v6     bool
	kernel netip.Addr // the kernel's address, to bind
	peer   netip.Addr // the script's, to connect to
	// bindPort and connectPort are --bind_port's and --connect_port's
	// ports: the kernel's, to bind, and the script's, to connect to.
	bindPort, connectPort uint16
	files                 *fdTable
	// stamps places the kernel's time stamps on the script's clock.
	stamps stampCheck
}

// sockaddr is a's address at port, IPv4 or mapped into IPv6.
func (c *caller) sockaddr(a netip.Addr, port uint16) unix.Sockaddr {
	if c.mapped || c.v6 {
		// As16 of an IPv4 address is it mapped into IPv6.
		return &unix.SockaddrInet6{Port: int(port), Addr: a.As16()}
	}
	return &unix.SockaddrInet4{Port: int(port), Addr: a.As4()}
}

// call makes sc's system call. err is for a call the runner cannot make
// as written (an argument it does not understand).
func (c *caller) call(sc *Syscall) (outcome, error) {
	arg := func(i int) (int64, error) {
		if i >= len(sc.Args) {
			return 0, fmt.Errorf("%s: argument %d missing", sc.Name, i+1)
		}
		if sc.Args[i] == (Ellipsis{}) {
			return 0, nil
		}
		v, err := eval(sc.Args[i])
		if err != nil {
			return 0, fmt.Errorf("%s: argument %d: %w", sc.Name, i+1, err)
		}
		return v, nil
	}
	fdArg := func() (int, error) {
		n, err := arg(0)
		if err != nil {
			return 0, err
		}
		return c.files.real(int(n)), nil
	}
	res := func(err error) (outcome, error) {
		var en unix.Errno
		if errors.As(err, &en) {
			return outcome{ret: -1, errno: en}, nil
		}
		if err != nil {
			return outcome{}, err
		}
		return outcome{}, nil
	}
	switch sc.Name {
	case "socket":
		domain, err := arg(0)
		if err != nil {
			return outcome{}, err
		}
		if domain == 0 {
			domain = unix.AF_INET
			if c.mapped || c.v6 {
				domain = unix.AF_INET6
			}
		}
		typ, err := arg(1)
		if err != nil {
			return outcome{}, err
		}
		proto, err := arg(2)
		if err != nil {
			return outcome{}, err
		}
		// The caller runs in the script's namespace.
		fd, serr := unix.Socket(int(domain), int(typ)|unix.SOCK_CLOEXEC, int(proto))
		if serr != nil {
			return res(serr)
		}
		return outcome{ret: int64(c.files.add(fd))}, nil
	}
	switch sc.Name {
	case "poll":
		return c.poll(sc)
	case "pipe", "open", "epoll_create":
		return c.newFile(sc)
	}
	fd, err := fdArg()
	if err != nil {
		return outcome{}, err
	}
	n := func(i int) int64 { v, _ := arg(i); return v }
	for i := 1; i < len(sc.Args); i++ {
		if _, err := arg(i); err != nil && !isBuffer(sc, i) {
			return outcome{}, err
		}
	}
	switch sc.Name {
	case "bind":
		return res(unix.Bind(fd, c.sockaddr(c.kernel, c.bindPort)))
	case "connect":
		if disconnect(sc) {
			return res(connectUnspec(fd))
		}
		return res(unix.Connect(fd, c.sockaddr(c.peer, c.connectPort)))
	case "listen":
		return res(unix.Listen(fd, int(n(1))))
	case "accept":
		nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			return res(err)
		}
		return outcome{ret: int64(c.files.add(nfd))}, nil
	case "read", "recv", "recvfrom":
		if nullBuffer(sc) {
			return nullCall(sc, fd, n(2), n(3))
		}
		buf := make([]byte, n(2))
		var got int
		var err error
		if sc.Name == "read" {
			got, err = unix.Read(fd, buf)
		} else {
			got, _, err = unix.Recvfrom(fd, buf, int(n(3)))
		}
		if err != nil {
			return res(err)
		}
		return outcome{ret: int64(got)}, nil
	case "write", "send":
		if nullBuffer(sc) {
			return nullCall(sc, fd, n(2), n(3))
		}
		buf := make([]byte, n(2))
		var got int
		var err error
		if sc.Name == "write" {
			got, err = unix.Write(fd, buf)
		} else {
			got, err = unix.SendmsgN(fd, buf, nil, nil, int(n(3)))
		}
		if err != nil {
			return res(err)
		}
		return outcome{ret: int64(got)}, nil
	case "close":
		c.files.remove(int(n(0)))
		return res(unix.Close(fd))
	case "shutdown":
		return res(unix.Shutdown(fd, int(n(1))))
	case "fcntl":
		switch n(1) {
		case unix.F_GETFL:
			v, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			if err != nil {
				return res(err)
			}
			// The access mode and O_NONBLOCK are what scripts check.
			return outcome{ret: int64(v) & (unix.O_ACCMODE | unix.O_NONBLOCK)}, nil
		case unix.F_SETFL:
			_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, int(n(2)))
			return res(err)
		}
		return outcome{}, fmt.Errorf("fcntl: only F_GETFL and F_SETFL are supported")
	case "setsockopt":
		return c.setsockopt(sc, fd, n(1), n(2))
	case "getsockopt":
		if n(2) == unix.TCP_INFO {
			return c.tcpInfo(sc, fd)
		}
		v, err := unix.GetsockoptInt(fd, int(n(1)), int(n(2)))
		if err != nil {
			return res(err)
		}
		got := int64(v)
		return outcome{value: &got}, nil
	}
	if out, ok, err := c.more(sc, fd, n); ok {
		return out, err
	}
	return outcome{}, fmt.Errorf("system call %s is not supported yet", sc.Name)
}

// connectUnspec connects fd to an address of family AF_UNSPEC, which
// disconnects it; unix.Connect takes no such address.
func connectUnspec(fd int) error {
	sa := unix.RawSockaddr{Family: unix.AF_UNSPEC}
	_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	if errno != 0 {
		return errno
	}
	return nil
}

// tcpInfo reads TCP_INFO and compares the fields the script names, such
// as {tcpi_state=TCP_ESTABLISHED, tcpi_unacked=1}.
func (c *caller) tcpInfo(sc *Syscall, fd int) (outcome, error) {
	vars, err := tcpInfo(fd)
	if err != nil {
		var en unix.Errno
		if errors.As(err, &en) {
			return outcome{ret: -1, errno: en}, nil
		}
		return outcome{}, err
	}
	st, ok := sc.Args[3].(*Struct)
	if !ok {
		return outcome{}, nil
	}
	var diffs []string
	for _, f := range st.Fields {
		if f.Value == (Ellipsis{}) {
			continue
		}
		got, known := vars[f.Name]
		if !known {
			return outcome{}, fmt.Errorf("getsockopt TCP_INFO: no field %s", f.Name)
		}
		want, err := eval(f.Value)
		if err != nil {
			return outcome{}, fmt.Errorf("getsockopt TCP_INFO: %s: %w", f.Name, err)
		}
		if uint64(want) != got {
			diffs = append(diffs, fmt.Sprintf("%s is %d, expected %d", f.Name, got, want))
		}
	}
	return outcome{mismatch: strings.Join(diffs, ", ")}, nil
}

// poll polls the descriptors of its first argument, [{fd=N,
// events=..., revents=...}, ...], for its third's milliseconds; the
// revents a struct names must be what came.
func (c *caller) poll(sc *Syscall) (outcome, error) {
	arr, ok := sc.Args[0].(*Array)
	if !ok {
		return outcome{}, fmt.Errorf("poll: want [{fd=..., events=..., revents=...}], got %v", sc.Args[0])
	}
	timeout, err := eval(sc.Args[2])
	if err != nil {
		return outcome{}, fmt.Errorf("poll: timeout: %w", err)
	}
	fds := make([]unix.PollFd, len(arr.Elems))
	want := make([]*int64, len(arr.Elems))
	for i, e := range arr.Elems {
		st, ok := e.(*Struct)
		if !ok {
			return outcome{}, fmt.Errorf("poll: want {fd=..., events=...}, got %v", e)
		}
		for _, f := range st.Fields {
			v, err := eval(f.Value)
			if err != nil {
				return outcome{}, fmt.Errorf("poll: %s: %w", f.Name, err)
			}
			switch f.Name {
			case "fd":
				fds[i].Fd = int32(c.files.real(int(v)))
			case "events":
				fds[i].Events = int16(v)
			case "revents":
				want[i] = &v
			default:
				return outcome{}, fmt.Errorf("poll: no field %s", f.Name)
			}
		}
	}
	n, err := unix.Poll(fds, int(timeout))
	var en unix.Errno
	if errors.As(err, &en) {
		return outcome{ret: -1, errno: en}, nil
	}
	if err != nil {
		return outcome{}, err
	}
	var diffs []string
	for i, w := range want {
		if w != nil && int64(fds[i].Revents) != *w {
			diffs = append(diffs, fmt.Sprintf("revents of %v are %#x, expected %#x", arr.Elems[i], fds[i].Revents, *w))
		}
	}
	return outcome{ret: int64(n), mismatch: strings.Join(diffs, ", ")}, nil
}

// isBuffer reports whether argument i of sc is a buffer whose contents
// the call ignores (read's and write's second).
func isBuffer(sc *Syscall, i int) bool {
	switch sc.Name {
	case "read", "write", "send", "recv", "sendto", "recvfrom", "sendmsg", "recvmsg", "epoll_wait":
		return i == 1
	case "sendfile":
		return i == 2
	case "epoll_ctl":
		return i == 3
	case "setsockopt", "getsockopt":
		return i >= 3
	}
	return false
}

func (c *caller) setsockopt(sc *Syscall, fd int, level, opt int64) (outcome, error) {
	if len(sc.Args) < 4 {
		return outcome{}, fmt.Errorf("setsockopt: want 5 arguments")
	}
	var err error
	switch v := sc.Args[3].(type) {
	case String:
		// Bytes such as TCP_FASTOPEN_KEY's, as many as the length says.
		// A length past the string's end reads zeros, where C would
		// read what follows: the kernel judges the length.
		n, eerr := eval(sc.Args[4])
		if eerr != nil || n < 0 || n > 1<<16 {
			return outcome{}, fmt.Errorf("setsockopt: want a length from 0 to 65536 after the string, got %v", sc.Args[4])
		}
		b := make([]byte, n)
		copy(b, v)
		err = unix.SetsockoptString(fd, int(level), int(opt), string(b))
	case *Struct:
		if opt != unix.SO_LINGER {
			return outcome{}, fmt.Errorf("setsockopt: a struct value is supported for SO_LINGER only")
		}
		var l unix.Linger
		for _, f := range v.Fields {
			x, eerr := eval(f.Value)
			if eerr != nil {
				return outcome{}, fmt.Errorf("setsockopt: %s: %w", f.Name, eerr)
			}
			switch f.Name {
			case "onoff", "l_onoff":
				l.Onoff = int32(x)
			case "linger", "l_linger":
				l.Linger = int32(x)
			default:
				return outcome{}, fmt.Errorf("setsockopt: SO_LINGER has no field %s", f.Name)
			}
		}
		err = unix.SetsockoptLinger(fd, int(level), int(opt), &l)
	default:
		x, eerr := eval(v)
		if eerr != nil {
			return outcome{}, fmt.Errorf("setsockopt: value: %w", eerr)
		}
		err = unix.SetsockoptInt(fd, int(level), int(opt), int(x))
	}
	var en unix.Errno
	if errors.As(err, &en) {
		return outcome{ret: -1, errno: en}, nil
	}
	return outcome{}, err
}

// fdTable numbers the script's file descriptors as packetdrill's process
// would get them, the lowest free from 3, and maps them to the real ones.
// Blocking calls use it from their own goroutines.
type fdTable struct {
	mu       sync.Mutex
	byScript map[int]int
	last     int // the script's descriptor made last: the socket under test
	// shadowed are real descriptors still open whose script number a
	// later one took (renumber): closed at the end with the others.
	shadowed []int
}

func (t *fdTable) add(real int) int {
	n := t.addOther(real)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = n
	return n
}

// addOther numbers a descriptor that is not a socket (a pipe's end, a
// file, an epoll instance): the socket under test stays the last one.
func (t *fdTable) addOther(real int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 3
	for {
		if _, used := t.byScript[n]; !used {
			break
		}
		n++
	}
	t.byScript[n] = real
	return n
}

// underTest returns the real descriptor of the socket made last, or -1.
func (t *fdTable) underTest() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.byScript[t.last]; ok {
		return r
	}
	return -1
}

// real returns the real descriptor of the script's n, or -1 (EBADF).
func (t *fdTable) real(n int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.byScript[n]; ok {
		return r
	}
	return -1
}

// renumber gives the script's descriptor from the number to instead, as
// packetdrill maps a script's descriptor to the real one by the result
// the script wrote ("socket(...) = 4" names the socket 4 whatever the
// kernel returned). A number still in use goes to the new descriptor,
// as packetdrill finds the newest of a script's descriptors first: the
// old one is shadowed, open until the end. False when from is unknown.
func (t *fdTable) renumber(from, to int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.byScript[from]
	if !ok || to < 0 {
		return false
	}
	if old, used := t.byScript[to]; used {
		t.shadowed = append(t.shadowed, old)
	}
	delete(t.byScript, from)
	t.byScript[to] = r
	if t.last == from {
		t.last = to
	}
	return true
}

func (t *fdTable) remove(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byScript, n)
}

// all returns the real descriptors still open.
func (t *fdTable) all() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]int{}, t.shadowed...)
	for _, r := range t.byScript {
		out = append(out, r)
	}
	return out
}

// nullBuffer reports whether the script passes NULL as the call's buffer
// (its second argument): the call then gets a null pointer with its
// length, and fails as the kernel decides (EFAULT).
func nullBuffer(sc *Syscall) bool {
	switch sc.Name {
	case "read", "write", "send", "recv", "sendto", "recvfrom":
		return len(sc.Args) > 1 && sc.Args[1] == Name("NULL")
	}
	return false
}

// nullCall makes the read, write, send, sendto, recv or recvfrom sc on fd
// with a null buffer of n bytes and flags (read and write take none).
func nullCall(sc *Syscall, fd int, n, flags int64) (outcome, error) {
	var r uintptr
	var e unix.Errno
	switch sc.Name {
	case "read":
		r, _, e = unix.Syscall(unix.SYS_READ, uintptr(fd), 0, uintptr(n))
	case "write":
		r, _, e = unix.Syscall(unix.SYS_WRITE, uintptr(fd), 0, uintptr(n))
	case "recv", "recvfrom":
		r, _, e = unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), 0, uintptr(n), uintptr(flags), 0, 0)
	default: // send, sendto
		r, _, e = unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, uintptr(n), uintptr(flags), 0, 0)
	}
	if e != 0 {
		return errnoOutcome(e)
	}
	return outcome{ret: int64(r)}, nil
}
