package sockstat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// The layouts of linux/inet_diag.h and linux/netlink.h that a Sampler
// writes and reads.
const (
	sizeofNlmsghdr  = 16
	sizeofReqV2     = 56 // struct inet_diag_req_v2
	sizeofDiagMsg   = 72 // struct inet_diag_msg
	sizeofNlattr    = 4
	sizeofBCOp      = 4 // struct inet_diag_bc_op
	sizeofPortCheck = 2 * sizeofBCOp

	// Attribute types of a request and of a response.
	reqBytecode = 1 // INET_DIAG_REQ_BYTECODE
	attrInfo    = 2 // INET_DIAG_INFO
	attrCong    = 4 // INET_DIAG_CONG

	// Bytecode operations (enum in inet_diag.h). GE and LE exist since
	// Linux 2.6; EQ only since 4.16, so equality is GE and LE.
	bcJmp = 1 // jump by no
	bcSGE = 2 // source (local) port >= op[1].no
	bcSLE = 3
	bcDGE = 4 // destination (remote) port >= op[1].no
	bcDLE = 5
)

// portCond is one condition of the bytecode: the local port (or the
// remote one, remote true) equals port.
type portCond struct {
	remote bool
	port   uint16
}

// appendBytecode appends to b the bytecode of a filter that accepts a
// socket when all conditions of one of the clauses hold. The kernel runs
// the program from its start: an op whose check holds jumps by its yes
// offset (8 bits), one whose check fails by its no offset (16 bits); the
// socket is accepted when the program ends exactly at its length and
// rejected when it jumps 4 bytes beyond. Each condition is two checks
// (port >= p, then port <= p) of two ops each, which fail to the next
// clause or to the reject; a clause whose checks all hold ends in an
// unconditional jump (whose offset is the 16-bit no) to the end.
func appendBytecode(b []byte, clauses [][]portCond) []byte {
	clauseLen := func(i int) int {
		n := len(clauses[i]) * 2 * sizeofPortCheck
		if i < len(clauses)-1 {
			n += sizeofBCOp // the jump to accept
		}
		return n
	}
	total := 0
	for i := range clauses {
		total += clauseLen(i)
	}
	ne := binary.NativeEndian
	op := func(b []byte, code byte, yes, no int) []byte {
		b = append(b, code, byte(yes))
		return ne.AppendUint16(b, uint16(no))
	}
	off := 0
	for i, c := range clauses {
		end := off + clauseLen(i)
		for _, cond := range c {
			ge, le := byte(bcSGE), byte(bcSLE)
			if cond.remote {
				ge, le = bcDGE, bcDLE
			}
			for _, code := range [2]byte{ge, le} {
				no := end - off // the next clause
				if end == total {
					no = total - off + 4 // no clause left: reject
				}
				b = op(b, code, sizeofPortCheck, no)
				b = op(b, 0, 0, int(cond.port)) // the operand: the port in no
				off += sizeofPortCheck
			}
		}
		if off < end {
			b = op(b, bcJmp, sizeofBCOp, total-off)
			off += sizeofBCOp
		}
	}
	return b
}

// bytecodeLen is the length of the bytecode of clauses.
func bytecodeLen(clauses [][]portCond) int {
	n := 0
	for _, c := range clauses {
		n += len(c)*2*sizeofPortCheck + sizeofBCOp
	}
	return n - sizeofBCOp
}

// maxBytecode is the most bytecode a request carries: op offsets are 8
// bits for yes and 16 for no, and a netlink attribute's length is 16 bits.
// A filter that needs more is applied in user space only.
const maxBytecode = 0xfff0

// appendRequest appends a SOCK_DIAG_BY_FAMILY dump request for the TCP
// sockets of family whose state is in states, with INET_DIAG_INFO and
// INET_DIAG_CONG, and the bytecode bc if not empty.
func appendRequest(b []byte, seq uint32, family uint8, states uint32, bc []byte) []byte {
	length := sizeofNlmsghdr + sizeofReqV2
	if len(bc) > 0 {
		length += sizeofNlattr + len(bc)
	}
	ne := binary.NativeEndian
	b = ne.AppendUint32(b, uint32(length))
	b = ne.AppendUint16(b, unix.SOCK_DIAG_BY_FAMILY)
	b = ne.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0) // port id: the kernel fills it in
	b = append(b, family, unix.IPPROTO_TCP, 1<<(attrInfo-1)|1<<(attrCong-1), 0)
	b = ne.AppendUint32(b, states)
	b = append(b, make([]byte, sizeofReqV2-8)...) // inet_diag_sockid: any
	if len(bc) > 0 {
		b = ne.AppendUint16(b, uint16(sizeofNlattr+len(bc)))
		b = ne.AppendUint16(b, reqBytecode)
		b = append(b, bc...)
	}
	return b
}

// appendLookup appends a SOCK_DIAG_BY_FAMILY request for the one socket
// whose local and remote addresses are local and remote (both IPv4 or
// both IPv6, unmapped), with INET_DIAG_INFO and INET_DIAG_CONG. The kernel
// looks it up in its hash tables as it would for an arriving packet, so
// it answers with a listener when no connection has these addresses.
func appendLookup(b []byte, seq uint32, local, remote netip.AddrPort) []byte {
	ne := binary.NativeEndian
	family := uint8(unix.AF_INET6)
	if local.Addr().Is4() {
		family = unix.AF_INET
	}
	b = ne.AppendUint32(b, sizeofNlmsghdr+sizeofReqV2)
	b = ne.AppendUint16(b, unix.SOCK_DIAG_BY_FAMILY)
	b = ne.AppendUint16(b, unix.NLM_F_REQUEST)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0)
	b = append(b, family, unix.IPPROTO_TCP, 1<<(attrInfo-1)|1<<(attrCong-1), 0)
	b = ne.AppendUint32(b, 1<<numStates-1)
	b = binary.BigEndian.AppendUint16(b, local.Port())
	b = binary.BigEndian.AppendUint16(b, remote.Port())
	for _, a := range [2]netip.Addr{local.Addr(), remote.Addr()} {
		var addr [16]byte
		copy(addr[:], a.AsSlice())
		b = append(b, addr[:]...)
	}
	b = ne.AppendUint32(b, 0)          // any interface
	b = ne.AppendUint32(b, 0xffffffff) // INET_DIAG_NOCOOKIE
	return ne.AppendUint32(b, 0xffffffff)
}

// errShort is the error for a message shorter than its header says.
var errShort = errors.New("short inet_diag message")

// decodeSocket decodes the payload of one SOCK_DIAG_BY_FAMILY answer (a
// struct inet_diag_msg and its attributes) into s and, if the kernel sent
// tcp_info, into info; it reports whether it did.
func decodeSocket(b []byte, s *Socket, info *TCPInfo) (bool, error) {
	if len(b) < sizeofDiagMsg {
		return false, fmt.Errorf("%w: %d bytes", errShort, len(b))
	}
	ne := binary.NativeEndian
	family := b[0]
	*s = Socket{State: State(b[1]), Timer: Timer(b[2]), TimerRetrans: b[3]}
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	var src, dst netip.Addr
	switch family {
	case unix.AF_INET:
		src = netip.AddrFrom4([4]byte(b[8:12]))
		dst = netip.AddrFrom4([4]byte(b[24:28]))
	case unix.AF_INET6:
		src = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		dst = netip.AddrFrom16([16]byte(b[24:40])).Unmap()
	default:
		return false, fmt.Errorf("inet_diag message of family %d", family)
	}
	s.Local = netip.AddrPortFrom(src, sport)
	s.Remote = netip.AddrPortFrom(dst, dport)
	s.Interface = ne.Uint32(b[40:])
	s.Cookie = uint64(ne.Uint32(b[44:])) | uint64(ne.Uint32(b[48:]))<<32
	s.TimerExpires = time.Duration(ne.Uint32(b[52:])) * time.Millisecond
	rq, wq := ne.Uint32(b[56:]), ne.Uint32(b[60:])
	if s.State == Listen {
		s.AcceptQ, s.Backlog = rq, wq
	} else {
		s.RecvQ, s.SendQ = rq, wq
	}
	s.UID = ne.Uint32(b[64:])
	s.Inode = ne.Uint32(b[68:])
	if s.State == NewSynRecv {
		s.State = SynRecv
	}
	hasInfo := false
	for a := b[sizeofDiagMsg:]; len(a) >= sizeofNlattr; {
		alen := int(ne.Uint16(a))
		if alen < sizeofNlattr || alen > len(a) {
			return false, fmt.Errorf("%w: attribute of %d bytes in %d", errShort, alen, len(a))
		}
		val := a[sizeofNlattr:alen]
		switch ne.Uint16(a[2:]) &^ unix.NLA_F_NESTED {
		case attrInfo:
			*info = DecodeTCPInfo(val)
			hasInfo = true
		case attrCong:
			s.Cong = congName(val)
		}
		next := (alen + 3) &^ 3
		if next > len(a) {
			break
		}
		a = a[next:]
	}
	return hasInfo, nil
}

// congName returns the congestion control name in b (NUL-terminated),
// without allocating for the algorithms Linux ships.
func congName(b []byte) string {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	switch string(b) {
	case "cubic":
		return "cubic"
	case "reno":
		return "reno"
	case "bbr":
		return "bbr"
	case "dctcp":
		return "dctcp"
	case "htcp":
		return "htcp"
	case "vegas":
		return "vegas"
	case "westwood":
		return "westwood"
	case "bic":
		return "bic"
	}
	return string(b)
}
