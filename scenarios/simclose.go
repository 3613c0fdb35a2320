package scenarios

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// simClosePath delays each direction by 25 ms: both ends close within
// microseconds of each other (a barrier in the lab's process), so each FIN
// is on its way for 25 ms while the other leaves. On one loopback the two
// FINs would cross only when two CPUs happened to send them at once.
const simClosePath = "delay=25ms"

// simCloseBarrier is the Env value both peers wait on before they close.
type simCloseBarrier struct{}

// SimClose shows a simultaneous close (RFC 9293 section 3.6, figure 13):
// after one request and its response, client and server call close() at
// the same moment, across a path of 25 ms each way. Each FIN leaves
// before the other arrives, so neither acknowledges the other: both ends
// go FIN_WAIT_1 -> CLOSING, and each ACK of a FIN takes its receiver to
// TIME_WAIT. Neither end was the passive closer: no CLOSE_WAIT, no
// LAST_ACK.
func SimClose() *lab.Scenario {
	return &lab.Scenario{
		Name:      "simclose",
		Summary:   "both ends close at once across a 25 ms path: the FINs cross, neither acknowledges the other, and both ends go FIN_WAIT_1 -> CLOSING -> TIME_WAIT",
		SummaryZH: "两端经过25毫秒的路径同时关闭: 两个fin交叉, 谁也没有确认对方的fin, 两端都经过FIN_WAIT_1 -> CLOSING -> TIME_WAIT",
		Path:      simClosePath,
		Setup: func(ctx context.Context, env *lab.Env) (func(), error) {
			var wg sync.WaitGroup
			wg.Add(2)
			env.SetValue(simCloseBarrier{}, &wg)
			return nil, nil
		},
		Server: func(ctx context.Context, env *lab.Env) error {
			c, _, err := peer.AcceptRequest(ctx, env, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write([]byte(peer.Response)); err != nil {
				return err
			}
			if err := closeTogether(ctx, env); err != nil {
				return err
			}
			return c.Close()
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := peer.Exchange(c, peer.GetRequest()); err != nil {
				return err
			}
			if err := closeTogether(ctx, env); err != nil {
				return err
			}
			return c.Close()
		},
		Steps: simCloseSteps,
	}
}

// closeTogether returns once both peers have called it: they then close
// within microseconds of each other, far less than the path's delay.
func closeTogether(ctx context.Context, env *lab.Env) error {
	wg, ok := env.Value(simCloseBarrier{}).(*sync.WaitGroup)
	if !ok {
		return errors.New("simclose: no barrier (Setup did not run)")
	}
	wg.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return errors.New("simclose: the other peer never came to close")
	}
}

// simCloseSteps are the segments of SimClose, as the client's side of the
// path sees them.
func simCloseSteps(opt lab.Options) []expect.Step {
	req, resp := len(peer.GetRequest()), len(peer.Response)
	return append(expect.Handshake(),
		expect.C2S(pshAck).SeqNum(1).Length(req).Explain(
			"The client sends the blog post's HTTP request.", "客户端发送http请求"),
		// The server answers at once: its kernel's ACK of the request
		// rides on the response, unless a busy machine sends it alone.
		expect.S2C(ack).AckNum(1+req).Length(0).Optional().Explain(
			"The server's kernel acknowledges the request.", "服务端接收到数据回一个ack"),
		expect.S2C(pshAck).SeqNum(1).Length(resp).Explain(
			"The server answers with the blog post's HTTP response, a round trip (50 ms) after the request.",
			"服务端发送http响应, 在请求之后一个往返时间 (50毫秒)"),
		// The client closes as soon as it has read the response; its
		// delayed ACK of it may go alone or ride on its FIN.
		expect.C2S(ack).AckNum(1+resp).Length(0).Optional().Explain(
			"The client acknowledges the response.", "客户端回ack"),
		expect.C2S(finAck).SeqNum(1+req).Length(0).Explain(
			"Both applications call close() at the same moment. The client's kernel sends its FIN: client FIN_WAIT_1. The server's FIN has left too, 25 ms away.",
			"两端的应用同时调用close. 客户端发送fin: 客户端进入FIN_WAIT_1. 服务端的fin也已经发出, 还在25毫秒的路上"),
		// The server's FIN left before the client's reached it: its ack
		// does not cover the client's FIN (1+req+1).
		expect.S2C(finAck).SeqNum(1+resp).AckNum(1+req).Length(0).Explain(
			"The server's FIN arrives. It acknowledges the request but not the client's FIN, which was still on its way when the server closed: the FINs crossed. The client, in FIN_WAIT_1 with its own FIN unacknowledged, goes to CLOSING; so does the server when the client's FIN reaches it.",
			"服务端的fin到达. 它确认了请求, 但没有确认客户端的fin: 服务端关闭时, 客户端的fin还在路上, 两个fin交叉了. 客户端在FIN_WAIT_1收到对方的fin而自己的fin还没被确认, 进入CLOSING; 服务端收到客户端的fin时也一样"),
		// Each end acknowledges the other's FIN as soon as it arrives, so
		// the client's ACK leaves as the server's FIN arrives, and the
		// server's ACK of the client's FIN is already on its way: which
		// one the client's capture shows first depends on the microseconds
		// between the two close() calls.
		expect.OneOf(
			expect.Seq(expect.C2S(ack).SeqNum(2+req).AckNum(2+resp).Length(0), expect.S2C(ack).SeqNum(2+resp).AckNum(2+req).Length(0)),
			expect.Seq(expect.S2C(ack).SeqNum(2+resp).AckNum(2+req).Length(0), expect.C2S(ack).SeqNum(2+req).AckNum(2+resp).Length(0)),
		).Explain(
			"Each end acknowledges the other's FIN: each ACK takes its receiver from CLOSING to TIME_WAIT. Both ends wait in TIME_WAIT: neither was the passive closer, so neither went through CLOSE_WAIT or LAST_ACK.",
			"两端各自确认对方的fin: 收到ack的一端从CLOSING进入TIME_WAIT. 两端都在TIME_WAIT等待: 没有被动关闭的一方, 所以没有CLOSE_WAIT和LAST_ACK"),
		expect.Ends(func(e *capture.Ending) error {
			switch {
			case !e.Crossed:
				return fmt.Errorf("the FINs did not cross: %s", e)
			case !e.Complete():
				return fmt.Errorf("not both FINs acknowledged: %s", e)
			}
			return nil
		}).Explain("A simultaneous close: the FINs crossed, and both were acknowledged.",
			"同时关闭: 两个fin交叉, 都被确认了"),
	)
}
