package sockstat

import (
	"net/netip"
	"time"
)

// Socket is one TCP socket as the kernel describes it. Addresses of
// dual-stack sockets are unmapped (127.0.0.1, not ::ffff:127.0.0.1), so
// that they compare equal to the addresses of the IPv4 packets captured
// for them.
type Socket struct {
	State  State
	Local  netip.AddrPort
	Remote netip.AddrPort

	// RecvQ is the bytes received and not yet read by the application;
	// SendQ the bytes written and not yet acknowledged. Both are zero for
	// a listener.
	RecvQ, SendQ uint32
	// AcceptQ is a listener's accept queue: connections that completed
	// their handshake and wait for accept(). Backlog is its limit, the
	// backlog given to listen() (capped by net.core.somaxconn); Linux
	// queues up to Backlog+1. ss shows both in its Recv-Q and Send-Q
	// columns. Both are zero for a socket that does not listen.
	AcceptQ, Backlog uint32

	Timer        Timer         // the pending timer
	TimerExpires time.Duration // when it fires, from the time of the sample
	TimerRetrans uint8         // retransmissions (TimerOn) or probes (TimerPersist) so far

	UID       uint32
	Inode     uint32 // the socket's inode; 0 once no file refers to it
	Cookie    uint64 // the kernel's unique id of the socket
	Interface uint32 // the interface index it is bound to, or 0

	// Info is the socket's tcp_info; nil where the kernel sends none
	// (TIME_WAIT, and connections still in their handshake on a
	// listener).
	Info *TCPInfo
	// Cong is the congestion control algorithm ("cubic"), or "" where the
	// kernel sends none.
	Cong string
}

// Tuple is a connection's pair of addresses. A Filter's Tuple matches both
// ends of the connection: the socket whose local and remote addresses
// are A and B, and the one whose addresses are B and A.
type Tuple struct {
	A, B netip.AddrPort
}

// Match reports whether s is one end of the connection t. IPv4-mapped
// IPv6 addresses in t compare equal to their IPv4 addresses.
func (t Tuple) Match(s Socket) bool {
	a := netip.AddrPortFrom(t.A.Addr().Unmap(), t.A.Port())
	b := netip.AddrPortFrom(t.B.Addr().Unmap(), t.B.Port())
	return s.Local == a && s.Remote == b || s.Local == b && s.Remote == a
}

// Filter says which sockets a Sample returns. A socket is sampled when
// its state is in States and it matches Port or one of Tuples; a Filter
// with neither Port nor Tuples matches every socket of the namespace.
type Filter struct {
	// States are the states of the sockets to sample; zero for all.
	States StateSet
	// Port, if not zero, matches the sockets whose local or remote port
	// is Port: a server's listener and both ends of its connections.
	Port uint16
	// Tuples match both ends of each connection.
	Tuples []Tuple
}

// Match reports whether the filter selects s.
func (f *Filter) Match(s Socket) bool {
	if !f.States.Has(s.State) {
		return false
	}
	if f.Port == 0 && len(f.Tuples) == 0 {
		return true
	}
	if f.Port != 0 && (s.Local.Port() == f.Port || s.Remote.Port() == f.Port) {
		return true
	}
	for _, t := range f.Tuples {
		if t.Match(s) {
			return true
		}
	}
	return false
}

// clauses returns the filter's port conditions for the kernel's
// bytecode, which selects a superset of the sockets Match selects (it
// knows no addresses), or nil for no bytecode.
func (f *Filter) clauses() [][]portCond {
	if f.Port == 0 && len(f.Tuples) == 0 {
		return nil
	}
	var cs [][]portCond
	if f.Port != 0 {
		cs = append(cs, []portCond{{port: f.Port}}, []portCond{{remote: true, port: f.Port}})
	}
	for _, t := range f.Tuples {
		a, b := t.A.Port(), t.B.Port()
		cs = append(cs, []portCond{{port: a}, {remote: true, port: b}})
		if a != b {
			cs = append(cs, []portCond{{port: b}, {remote: true, port: a}})
		}
	}
	return cs
}
