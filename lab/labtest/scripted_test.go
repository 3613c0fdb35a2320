package labtest_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/labtest"
	"github.com/tcplab/tcplab/lab/scripted"
)

// synRST is a scripted scenario written with the public API, as in a
// user's own repository: the script's SYN, the kernel's SYN/ACK, the
// script's RST (RFC 9293 3.5: a RST in SYN_RECEIVED sends the socket
// back to LISTEN, silently).
func synRST() *lab.Scenario {
	return &lab.Scenario{
		Name:     "syn-rst",
		Summary:  "a scripted client resets a half-open connection",
		Topology: lab.Scripted,
		Server: func(ctx context.Context, env *lab.Env) error {
			ln, err := env.Listen(ctx, nil)
			if err != nil {
				return err
			}
			<-env.ClientDone()
			return ln.Close()
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			conn := env.Scripted().Dial(uint16(env.Options.ServerPort()))
			conn.Send(env, scripted.TCP{Flags: scripted.SYN})
			conn.Expect(env, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1)}, time.Second)
			conn.Send(env, scripted.TCP{Flags: scripted.RST, Seq: scripted.Uint32(1)})
			conn.ExpectNone(env, 100*time.Millisecond)
			return nil
		},
		Steps: func(lab.Options) []expect.Step {
			return []expect.Step{
				expect.C2S(expect.SYN).SeqNum(0),
				expect.S2C(expect.SYN | expect.ACK).AckNum(1),
				expect.C2S(expect.RST).SeqNum(1),
			}
		},
	}
}

// TestRunScripted: labtest.Run runs a scenario with a scripted side, as
// any other, inside go test.
func TestRunScripted(t *testing.T) {
	if !lab.InChild() {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			testenv.SkipOrFail(t, "cannot open /dev/net/tun: "+err.Error(), "run as root, with the tun module")
			return
		}
		unix.Close(fd)
	}
	r := labtest.Run(t, synRST())
	if !lab.InChild() && (!r.Pass || r.Segments != 3) {
		t.Errorf("result %+v, want a pass with 3 segments", r)
	}
}
