package scenarios

import "github.com/tcplab/tcplab/lab/expect"

// Flag sets used by the steps.
const (
	synAck = expect.SYN | expect.ACK
	ack    = expect.ACK
	pshAck = expect.PSH | expect.ACK
	finAck = expect.FIN | expect.ACK
)
