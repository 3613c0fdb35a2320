package sockstat

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// audit checks bytecode as the kernel's inet_diag_bc_audit does before it
// accepts a request: every op's yes and no offsets are multiples of 4,
// reach past the op and its operand, land on an op (following the yes
// chain) or at the end, or 4 bytes beyond it (reject).
func audit(bc []byte) error {
	ne := binary.NativeEndian
	validTarget := func(rest int) bool { // rest: the length left at the target
		for l, off := len(bc), 0; l > 0; {
			if rest == l {
				return true
			}
			if rest > l {
				return false
			}
			yes := int(bc[off+1])
			if yes < 4 || yes&3 != 0 {
				return false
			}
			l -= yes
			off += yes
		}
		return rest == 0
	}
	off, l := 0, len(bc)
	for l > 0 {
		if l < sizeofBCOp {
			return fmt.Errorf("op at %d cut", off)
		}
		code, yes, no := bc[off], int(bc[off+1]), int(ne.Uint16(bc[off+2:]))
		minLen := sizeofBCOp
		switch code {
		case bcSGE, bcSLE, bcDGE, bcDLE:
			minLen += sizeofBCOp
			if l < minLen {
				return fmt.Errorf("port op at %d without its operand", off)
			}
		case bcJmp:
		default:
			return fmt.Errorf("op %d at %d: not one tcplab writes", code, off)
		}
		if no < minLen || no > l+4 || no&3 != 0 {
			return fmt.Errorf("op at %d: bad no %d (left %d)", off, no, l)
		}
		if no < l && !validTarget(l-no) {
			return fmt.Errorf("op at %d: no %d lands inside an op", off, no)
		}
		if yes < minLen || yes > l+4 || yes&3 != 0 {
			return fmt.Errorf("op at %d: bad yes %d (left %d)", off, yes, l)
		}
		off += yes
		l -= yes
	}
	if l != 0 {
		return fmt.Errorf("yes chain ends %d bytes off the end", l)
	}
	return nil
}

// run runs bytecode on a socket's ports as the kernel's inet_diag_bc_run
// does, and reports whether the socket is dumped.
func run(bc []byte, sport, dport uint16) bool {
	ne := binary.NativeEndian
	off, l := 0, len(bc)
	for steps := 0; l > 0 && steps < 1<<16; steps++ {
		code, yes, no := bc[off], int(bc[off+1]), int(ne.Uint16(bc[off+2:]))
		var holds bool
		switch code {
		case bcSGE:
			holds = sport >= ne.Uint16(bc[off+6:])
		case bcSLE:
			holds = sport <= ne.Uint16(bc[off+6:])
		case bcDGE:
			holds = dport >= ne.Uint16(bc[off+6:])
		case bcDLE:
			holds = dport <= ne.Uint16(bc[off+6:])
		}
		if holds {
			off, l = off+yes, l-yes
		} else {
			off, l = off+no, l-no
		}
	}
	return l == 0
}

// TestBytecode: the kernel would accept the bytecode of each filter, and
// running it keeps exactly the sockets whose ports the filter matches.
func TestBytecode(t *testing.T) {
	ap := netip.MustParseAddrPort
	tuples := func(n int) []Tuple {
		var ts []Tuple
		for i := range n {
			ts = append(ts, Tuple{ap(fmt.Sprintf("10.0.0.1:%d", 40000+i)), ap("10.0.0.2:8000")})
		}
		return ts
	}
	ports := []uint16{1, 80, 7999, 8000, 8001, 40000, 40001, 40002, 40100, 65535}
	for _, f := range []Filter{
		{Port: 8000},
		{Port: 65535},
		{Tuples: tuples(1)},
		{Tuples: []Tuple{{ap("10.0.0.1:8000"), ap("10.0.0.1:8000")}}},
		{Port: 80, Tuples: tuples(3)},
		{Tuples: tuples(200)}, // offsets beyond a byte
	} {
		cs := f.clauses()
		bc := appendBytecode(nil, cs)
		if len(bc) != bytecodeLen(cs) {
			t.Errorf("%+v: bytecode of %d bytes, bytecodeLen says %d", f, len(bc), bytecodeLen(cs))
		}
		if err := audit(bc); err != nil {
			t.Errorf("port %d, %d tuples: kernel would refuse: %v", f.Port, len(f.Tuples), err)
			continue
		}
		for _, sp := range ports {
			for _, dp := range ports {
				want := f.Port != 0 && (sp == f.Port || dp == f.Port)
				for _, tu := range f.Tuples {
					want = want || sp == tu.A.Port() && dp == tu.B.Port() || sp == tu.B.Port() && dp == tu.A.Port()
				}
				if got := run(bc, sp, dp); got != want {
					t.Errorf("port %d, %d tuples: ports %d -> %d dumped %v, want %v", f.Port, len(f.Tuples), sp, dp, got, want)
				}
			}
		}
	}
	if (&Filter{}).clauses() != nil {
		t.Error("the empty filter has bytecode")
	}
}

// TestFilterMatch: states, ports and tuples (both ends, mapped addresses).
func TestFilterMatch(t *testing.T) {
	ap := netip.MustParseAddrPort
	client := Socket{State: Established, Local: ap("127.0.0.1:40000"), Remote: ap("127.0.0.1:8000")}
	server := Socket{State: Established, Local: ap("127.0.0.1:8000"), Remote: ap("127.0.0.1:40000")}
	other := Socket{State: Established, Local: ap("127.0.0.1:40001"), Remote: ap("127.0.0.1:8000")}
	listener := Socket{State: Listen, Local: ap("0.0.0.0:8000"), Remote: ap("0.0.0.0:0")}
	tuple := Tuple{ap("127.0.0.1:40000"), ap("127.0.0.1:8000")}
	mapped := Tuple{ap("[::ffff:127.0.0.1]:40000"), ap("127.0.0.1:8000")}
	for _, c := range []struct {
		name string
		f    Filter
		want [4]bool // client, server, other, listener
	}{
		{"all", Filter{}, [4]bool{true, true, true, true}},
		{"port", Filter{Port: 8000}, [4]bool{true, true, true, true}},
		{"port listening", Filter{Port: 8000, States: States(Listen)}, [4]bool{false, false, false, true}},
		{"tuple", Filter{Tuples: []Tuple{tuple}}, [4]bool{true, true, false, false}},
		{"mapped tuple", Filter{Tuples: []Tuple{mapped}}, [4]bool{true, true, false, false}},
		{"other port", Filter{Port: 40001}, [4]bool{false, false, true, false}},
	} {
		for i, s := range []Socket{client, server, other, listener} {
			if got := c.f.Match(s); got != c.want[i] {
				t.Errorf("%s: Match(%v %v->%v) = %v", c.name, s.State, s.Local, s.Remote, got)
			}
		}
	}
}
