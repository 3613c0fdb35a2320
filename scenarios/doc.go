// Package scenarios holds tcplab's scenarios, one file each: what a real
// server and a real client do on kernel sockets, then the segments that must
// appear on the wire, each with its explanation. To add one, copy a file,
// change the story, and list it in All.
//
// The peers are the blog post's: a hand-written HTTP/1.1 server that answers
// every request on a kept-alive connection with "great", and a client that
// sends the blog post's GET or POST /blog/ request (package lab/peer).
package scenarios

import "github.com/tcplab/tcplab/lab"

// All returns every scenario, in the order `tcplab list` shows them.
func All() []*lab.Scenario {
	return []*lab.Scenario{Walkthrough(), LAN(), Offload(), Handshake(), KeepAlive(), HalfClose(), SimClose(), Reset(), Window(), HTTPRealClient(), Loss(), SynRetry(), Bulk(), RTT(), RTO(), Backlog(), RcvBuf()}
}
