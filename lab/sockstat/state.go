package sockstat

import "strconv"

// State is a TCP state as the kernel numbers it (include/net/tcp_states.h).
// Its String uses the names of package capture ("ESTABLISHED",
// "FIN_WAIT_1"), so that a walkthrough names a state the same way whether
// the capture or the kernel saw it; ss abbreviates them ("ESTAB",
// "FIN-WAIT-1").
type State uint8

// The kernel's TCP states. The zero State means unknown (not sampled).
const (
	Established State = iota + 1
	SynSent
	SynRecv
	FinWait1
	FinWait2
	TimeWait
	Close
	CloseWait
	LastAck
	Listen
	Closing
	NewSynRecv
	numStates
)

var stateNames = [numStates]string{
	"UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECEIVED", "FIN_WAIT_1", "FIN_WAIT_2",
	"TIME_WAIT", "CLOSED", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
}

// String returns the state's name, such as "ESTABLISHED".
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// parseState is the inverse of String.
func parseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}

// StateSet is a set of States, as the kernel's idiag_states mask (bit s
// for State s). The zero StateSet means every state.
type StateSet uint32

// States returns the set of the given states.
func States(states ...State) StateSet {
	var set StateSet
	for _, s := range states {
		set |= 1 << s
	}
	return set
}

// Has reports whether s is in the set; every state is in the zero set.
func (set StateSet) Has(s State) bool { return set == 0 || set&(1<<s) != 0 }

// mask is the set as idiag_states. SYN_RECEIVED brings NEW_SYN_RECV along:
// a connection that has not completed its handshake is a request socket,
// which the kernel reports as SYN_RECEIVED.
func (set StateSet) mask() uint32 {
	if set == 0 {
		return 1<<numStates - 1
	}
	m := uint32(set)
	if m&(1<<SynRecv) != 0 {
		m |= 1 << NewSynRecv
	}
	return m
}

// CAState is the state of the congestion-avoidance machine
// (tcpi_ca_state, enum tcp_ca_state).
type CAState uint8

// The congestion-avoidance states.
const (
	CAOpen     CAState = iota // no loss or reordering seen
	CADisorder                // dup-ACKs or SACKs seen
	CACWR                     // cwnd reduced for ECN or local congestion
	CARecovery                // fast retransmit
	CALoss                    // after an RTO
	numCAStates
)

var caNames = [numCAStates]string{"open", "disorder", "cwr", "recovery", "loss"}

// String returns the state's name as the kernel's comments say it: "open",
// "disorder", "cwr", "recovery" or "loss".
func (c CAState) String() string {
	if c < numCAStates {
		return caNames[c]
	}
	return "ca_state(" + strconv.Itoa(int(c)) + ")"
}

func parseCAState(name string) (CAState, bool) {
	for i, n := range caNames {
		if n == name {
			return CAState(i), true
		}
	}
	return 0, false
}

// Timer is the socket timer that is pending (idiag_timer).
type Timer uint8

// The timers, named as ss names them.
const (
	TimerNone      Timer = iota
	TimerOn              // retransmission, loss probe or reordering timer
	TimerKeepalive       // keep-alive (or SYN-ACK retransmission on a listener's request)
	TimerTimeWait        // TIME_WAIT
	TimerPersist         // zero-window probe
	numTimers
)

var timerNames = [numTimers]string{"", "on", "keepalive", "timewait", "persist"}

// String returns ss's name for the timer ("on", "keepalive", "timewait",
// "persist"), or "" for none.
func (t Timer) String() string {
	if t < numTimers {
		return timerNames[t]
	}
	return "timer(" + strconv.Itoa(int(t)) + ")"
}

func parseTimer(name string) (Timer, bool) {
	for i, n := range timerNames {
		if n == name {
			return Timer(i), true
		}
	}
	return 0, false
}

// Options are the TCP options a connection negotiated (tcpi_options).
type Options uint8

// The option bits of tcpi_options.
const (
	OptTimestamps Options = 1 << iota
	OptSACK
	OptWScale
	OptECN
	OptECNSeen
	OptSYNData
	OptUSecTS
	OptTFOChild
)

var optionNames = [...]string{"ts", "sack", "wscale", "ecn", "ecnseen", "syndata", "usec_ts", "tfo_child"}

// Names returns the names of the options that are set, as ss prints them:
// "ts", "sack", "wscale", "ecn", ...
func (o Options) Names() []string {
	var names []string
	for i, n := range optionNames {
		if o&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return names
}

func parseOptions(names []string) (Options, bool) {
	var o Options
next:
	for _, name := range names {
		for i, n := range optionNames {
			if n == name {
				o |= 1 << i
				continue next
			}
		}
		return 0, false
	}
	return o, true
}
