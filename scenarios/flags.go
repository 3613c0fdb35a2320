package scenarios

import (
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
)

// Flag sets used by the steps.
const (
	synAck = expect.SYN | expect.ACK
	ack    = expect.ACK
	pshAck = expect.PSH | expect.ACK
	finAck = expect.FIN | expect.ACK
)

// The byte counts of the blog post's peers are known to the scenarios that
// use them. With AnyPeers, sized, acking and at drop them; loss keeps the
// sequence number of the piece its rule drops, which is its story.

// sized expects n bytes of payload, or any payload when the peers may be
// anyone's (a capture that tcplab check judges): their requests and
// responses are not the blog post's.
func sized(st expect.Step, n int, opt lab.Options) expect.Step {
	if opt.AnyPeers {
		return st.WithData()
	}
	return st.Length(n)
}

// acking expects acknowledgement number n, unless the peers may be
// anyone's, whose byte counts the scenario cannot know.
func acking(st expect.Step, n int, opt lab.Options) expect.Step {
	if opt.AnyPeers {
		return st
	}
	return st.AckNum(n)
}

// at expects relative sequence number n, unless the peers may be anyone's.
func at(st expect.Step, n int, opt lab.Options) expect.Step {
	if opt.AnyPeers {
		return st
	}
	return st.SeqNum(n)
}
