package sockstat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tcplab/tcplab/lab/netns"

	"golang.org/x/sys/unix"
)

// ErrInterrupted is wrapped by the error of a Sample whose dumps the
// kernel kept interrupting (NLM_F_DUMP_INTR: sockets came and went while
// it was dumping them) after several tries.
var ErrInterrupted = errors.New("socket dump interrupted")

// Config says where a Sampler samples. The zero Config samples the
// calling thread's network namespace and waits up to 5 seconds for the
// kernel.
type Config struct {
	// NetNS, if not nil, is the network namespace to sample (a file of
	// /proc/PID/ns/net or /run/netns/NAME). The Sampler opens its socket
	// from a thread that joins it for that time; the caller's threads stay
	// where they are.
	NetNS *os.File
	// Timeout bounds how long one Sample waits for an answer; 0 means 5
	// seconds.
	Timeout time.Duration
}

// Sampler samples the TCP sockets of one network namespace. Its methods
// may be called from any goroutine; Samples run one at a time.
type Sampler struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	req []byte // the request being built
	buf []byte // the kernel's answers
	bc  []byte
	// ends are the sockets a lookup asks for.
	ends []end
}

// end is one end of a connection: its local and remote addresses.
type end struct{ local, remote netip.AddrPort }

// recvBuf is the size of the Sampler's receive buffer. The kernel cuts a
// dump into messages that fit the reader's buffer, up to 32 KiB each.
const recvBuf = 64 << 10

// New returns a Sampler for the namespace of cfg. Close it when done.
func New(cfg Config) (*Sampler, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	var fd int
	err := netns.Enter(cfg.NetNS, func() (err error) {
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sockstat: open NETLINK_SOCK_DIAG socket: %w", err)
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sockstat: set receive timeout: %w", err)
	}
	return &Sampler{fd: fd, buf: make([]byte, recvBuf)}, nil
}

// Close closes the Sampler's socket.
func (s *Sampler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	if err != nil {
		return fmt.Errorf("sockstat: close: %w", err)
	}
	return nil
}

// dumpTries is how many times Sample dumps when the kernel says a dump
// was interrupted.
const dumpTries = 4

// Sample returns the TCP sockets that f selects. Sockets in TIME_WAIT and
// connections still in a listener's handshake have no Info.
//
// A Filter of Tuples alone is the cheap one, the one to use per segment:
// the kernel looks each end of each connection up in its hash table, as
// it does for an arriving packet (all requests go in one write), and the
// sockets come back in the Tuples' order. Any other Filter is a dump, IPv4
// then IPv6: the kernel skips the sockets that do not match the Filter's
// ports, but walks its whole established-connection hash table to find
// them, which takes about a millisecond per family on a machine with
// 262144 buckets (see BenchmarkSample). A namespace shares the host's
// table unless net.ipv4.tcp_child_ehash_entries gave it one of its own.
func (s *Sampler) Sample(f Filter) ([]Socket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil, errors.New("sockstat: sample: sampler is closed")
	}
	var d dump
	if f.Port == 0 && len(f.Tuples) > 0 {
		if err := s.lookup(f, &d); err != nil {
			return nil, err
		}
		return d.sockets(), nil
	}
	s.bc = s.bc[:0]
	if cs := f.clauses(); cs != nil && bytecodeLen(cs) <= maxBytecode {
		s.bc = appendBytecode(s.bc, cs)
	}
	for try := 0; ; try++ {
		d.reset()
		interrupted := false
		for _, family := range [2]uint8{unix.AF_INET, unix.AF_INET6} {
			intr, err := s.dump(family, f, &d)
			if err != nil {
				return nil, err
			}
			interrupted = interrupted || intr
		}
		if !interrupted {
			break
		}
		if try == dumpTries-1 {
			return nil, fmt.Errorf("sockstat: sample: %w %d times", ErrInterrupted, dumpTries)
		}
	}
	return d.sockets(), nil
}

// dump collects the answers of one Sample: sockets, and the tcp_info of
// those that have one (info[i] belongs to sockets[infoOf[i]]), kept apart
// so that the infos are allocated together and pointed to at the end.
type dump struct {
	socks  []Socket
	infos  []TCPInfo
	infoOf []int
}

func (d *dump) reset() {
	d.socks, d.infos, d.infoOf = d.socks[:0], d.infos[:0], d.infoOf[:0]
}

func (d *dump) sockets() []Socket {
	for i, j := range d.infoOf {
		d.socks[j].Info = &d.infos[i]
	}
	return d.socks
}

// dump asks for the sockets of one family and adds those f selects to d.
// It reports whether the kernel said the dump was interrupted.
func (s *Sampler) dump(family uint8, f Filter, d *dump) (interrupted bool, err error) {
	s.seq++
	s.req = appendRequest(s.req[:0], s.seq, family, f.States.mask(), s.bc)
	if _, err := unix.Write(s.fd, s.req); err != nil {
		return false, fmt.Errorf("sockstat: send dump request (family %d): %w", family, err)
	}
	err = s.read(func(typ, flags uint16, seq uint32, payload []byte) (bool, error) {
		if seq != s.seq {
			return false, nil // the rest of an earlier, abandoned request
		}
		if flags&unix.NLM_F_DUMP_INTR != 0 {
			interrupted = true
		}
		switch typ {
		case unix.NLMSG_DONE:
			if e := errno(payload); e != 0 {
				return true, fmt.Errorf("sockstat: dump (family %d): %w", family, e)
			}
			return true, nil
		case unix.NLMSG_ERROR:
			if e := errno(payload); e != 0 {
				return true, fmt.Errorf("sockstat: dump (family %d): %w", family, e)
			}
		case unix.SOCK_DIAG_BY_FAMILY:
			if err := d.add(payload, f); err != nil {
				return true, fmt.Errorf("sockstat: read dump: %w", err)
			}
		}
		return false, nil
	})
	return interrupted, err
}

// lookupBatch is how many lookups go in one write, so that the requests
// stay well within the socket's send buffer.
const lookupBatch = 64

// lookup asks for both ends of each of f's tuples and adds those that
// exist (and are in f's states) to d.
func (s *Sampler) lookup(f Filter, d *dump) error {
	ends := s.ends[:0]
	for _, t := range f.Tuples {
		a := netip.AddrPortFrom(t.A.Addr().Unmap(), t.A.Port())
		b := netip.AddrPortFrom(t.B.Addr().Unmap(), t.B.Port())
		if a.Addr().Is4() != b.Addr().Is4() {
			continue // no socket has one address of each family
		}
		ends = append(ends, end{a, b})
		if a != b {
			ends = append(ends, end{b, a})
		}
	}
	s.ends = ends
	d.socks = make([]Socket, 0, len(ends))
	d.infos = make([]TCPInfo, 0, len(ends))
	d.infoOf = make([]int, 0, len(ends))
	for len(ends) > 0 {
		batch := ends[:min(len(ends), lookupBatch)]
		ends = ends[len(batch):]
		s.req = s.req[:0]
		first := s.seq + 1
		for _, e := range batch {
			s.seq++
			s.req = appendLookup(s.req, s.seq, e.local, e.remote)
		}
		if _, err := unix.Write(s.fd, s.req); err != nil {
			return fmt.Errorf("sockstat: send lookups: %w", err)
		}
		for answered := 0; answered < len(batch); {
			err := s.read(func(typ, _ uint16, seq uint32, payload []byte) (bool, error) {
				if seq < first || seq > s.seq {
					return false, nil // the rest of an earlier, abandoned request
				}
				answered++
				switch typ {
				case unix.NLMSG_ERROR:
					if e := errno(payload); e != 0 && e != unix.ENOENT {
						return true, fmt.Errorf("sockstat: look up %v -> %v: %w", batch[seq-first].local, batch[seq-first].remote, e)
					}
				case unix.SOCK_DIAG_BY_FAMILY:
					if err := d.add(payload, f); err != nil {
						return true, fmt.Errorf("sockstat: read answer: %w", err)
					}
				}
				return answered == len(batch), nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// errno returns the error of an NLMSG_ERROR or NLMSG_DONE payload, or 0.
func errno(payload []byte) unix.Errno {
	if len(payload) < 4 {
		return 0
	}
	if e := int32(binary.NativeEndian.Uint32(payload)); e < 0 {
		return unix.Errno(-e)
	}
	return 0
}

// read reads from the socket and calls msg with each netlink message it
// holds until msg says it is done or fails.
func (s *Sampler) read(msg func(typ, flags uint16, seq uint32, payload []byte) (done bool, err error)) error {
	ne := binary.NativeEndian
	for {
		n, err := unix.Read(s.fd, s.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if err == unix.EAGAIN {
				err = fmt.Errorf("no answer in time: %w", os.ErrDeadlineExceeded)
			}
			return fmt.Errorf("sockstat: read: %w", err)
		}
		for b := s.buf[:n]; len(b) >= sizeofNlmsghdr; {
			mlen := int(ne.Uint32(b))
			if mlen < sizeofNlmsghdr || mlen > len(b) {
				return fmt.Errorf("sockstat: read: %w: netlink message of %d bytes in %d", errShort, mlen, len(b))
			}
			typ, flags, seq := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:])
			payload := b[sizeofNlmsghdr:mlen]
			b = b[min((mlen+3)&^3, len(b)):]
			done, err := msg(typ, flags, seq, payload)
			if err != nil || done {
				return err
			}
		}
	}
}

// add decodes one socket and keeps it if f selects it.
func (d *dump) add(payload []byte, f Filter) error {
	d.socks = append(d.socks, Socket{})
	d.infos = append(d.infos, TCPInfo{})
	sock, info := &d.socks[len(d.socks)-1], &d.infos[len(d.infos)-1]
	hasInfo, err := decodeSocket(payload, sock, info)
	if err != nil || !f.Match(*sock) {
		d.socks = d.socks[:len(d.socks)-1]
		d.infos = d.infos[:len(d.infos)-1]
		return err
	}
	if hasInfo {
		d.infoOf = append(d.infoOf, len(d.socks)-1)
	} else {
		d.infos = d.infos[:len(d.infos)-1]
	}
	return nil
}
