package scenarios

import (
	"context"

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// Handshake shows the three-way handshake with the options both SYNs carry,
// then the client closes at once.
func Handshake() *lab.Scenario {
	return &lab.Scenario{
		Name:      "handshake",
		Summary:   "connect() and accept(): SYN, SYN/ACK, ACK, with MSS, window scale, SACK and timestamps on both SYNs",
		SummaryZH: "connect()和accept(): SYN, SYN/ACK, ACK, 两个SYN都带MSS, 窗口扩大, SACK和时间戳选项",
		Server:    peer.Server(nil),
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Dial(ctx)
			if err != nil {
				return err
			}
			return c.Close()
		},
		Steps: func(lab.Options) []expect.Step {
			return append(expect.Handshake(), expect.ClientCloses()...)
		},
	}
}
