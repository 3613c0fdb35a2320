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
