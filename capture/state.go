package capture

// State is the TCP state of one endpoint (RFC 9293 section 3.3.2), as tcplab
// infers it from the segments both sides sent.
type State uint8

// The TCP states. Unknown is the state of an endpoint before any segment of
// its connection was seen.
const (
	Unknown State = iota
	Closed
	Listen
	SynSent
	SynReceived
	Established
	FinWait1
	FinWait2
	Closing
	TimeWait
	CloseWait
	LastACK
)

var stateNames = [...]string{
	"UNKNOWN", "CLOSED", "LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED",
	"FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT", "CLOSE_WAIT", "LAST_ACK",
}

// String returns the state's name as RFC 9293 and netstat write it, with
// underscores: "FIN_WAIT_1".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "INVALID"
}

// Dir is the direction of a segment relative to the client, the endpoint
// that sent the SYN.
type Dir uint8

// The two directions.
const (
	ClientToServer Dir = iota
	ServerToClient
)

// String returns "C>S" or "S>C".
func (d Dir) String() string {
	if d == ClientToServer {
		return "C>S"
	}
	return "S>C"
}

// stateNext lists the transitions of RFC 9293's state diagram (section 3.3.2,
// figure 5), with those its event processing adds (section 3.10.7): a
// FIN received in SYN_RECEIVED leads to CLOSE_WAIT, FIN_WAIT_1 receiving
// a FIN that acknowledges its own goes to TIME_WAIT, and a RST or an abort
// closes any state.
var stateNext = [...][]State{
	Unknown:     {Closed, Listen, SynSent, SynReceived, Established},
	Closed:      {Listen, SynSent},
	Listen:      {SynReceived, SynSent, Closed},
	SynSent:     {SynReceived, Established, Closed},
	SynReceived: {Established, FinWait1, CloseWait, Listen, Closed},
	Established: {FinWait1, CloseWait, Closed},
	FinWait1:    {FinWait2, Closing, TimeWait, Closed},
	FinWait2:    {TimeWait, Closed},
	Closing:     {TimeWait, Closed},
	TimeWait:    {Closed},
	CloseWait:   {LastACK, Closed},
	LastACK:     {Closed},
}

// Leads reports whether TCP can go from s to t by the transitions of RFC
// 9293's state diagram, in one step or several (one segment may carry
// two events: a FIN sent by a side that then takes the other's FIN in,
// say). A state leads to itself. CLOSE_WAIT never leads to CLOSING.
func (s State) Leads(t State) bool {
	if s == t {
		return true
	}
	var seen [len(stateNext)]bool
	todo := []State{s}
	for len(todo) > 0 {
		u := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if int(u) >= len(stateNext) || seen[u] {
			continue
		}
		seen[u] = true
		for _, v := range stateNext[u] {
			if v == t {
				return true
			}
			todo = append(todo, v)
		}
	}
	return false
}
