package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/scripted"
)

// zeroWindowProbes is how many probes the script answers with its window
// still shut before it opens it: the kernel's probes come after its RTO,
// then twice, then four times that (about 0.2, 0.4 and 0.8 s).
const zeroWindowProbes = 3

// zeroWindowKey is where Setup leaves the channel on which the kernel's
// server tells the script its RTO once its data waits on the shut window.
type zeroWindowKey struct{}

// ZeroWindowProbe shows the sender's side of flow control against a
// scripted receiver whose window stays shut: the kernel probes it, each
// probe answered with the window still zero, the interval doubling; then
// the window opens and the data goes.
func ZeroWindowProbe() *lab.Scenario {
	return &lab.Scenario{
		Name:      "zero-window-probe",
		Summary:   "a scripted client shuts its window: the kernel's server probes it after one RTO, then 2 and 4 RTOs, each probe answered with a zero window; the window opens and the data goes (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17, RFC 6298 5.5)",
		SummaryZH: "脚本客户端把窗口关为零: 内核的服务端在一个RTO后发零窗口探测, 之后间隔2个, 4个RTO, 每个探测都得到零窗口的回应; 窗口打开后数据才发出 (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17, RFC 6298 5.5)",
		Topology:  lab.Scripted,
		Wait:      func(lab.Options) time.Duration { return 1500 * time.Millisecond },
		Setup: func(_ context.Context, env *lab.Env) (func(), error) {
			env.SetValue(zeroWindowKey{}, make(chan time.Duration, 1))
			return nil, nil
		},
		Server: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write([]byte("hello")); err != nil {
				return err
			}
			rto, err := socketRTO(c)
			if err != nil {
				return err
			}
			env.Value(zeroWindowKey{}).(chan time.Duration) <- rto
			// Close once the script has acknowledged the data: the
			// kernel's FIN comes first, alone.
			return untilAcked(ctx, c)
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			conn := env.Scripted().Dial(scriptPort(env))
			conn.Send(env, scripted.TCP{Flags: scripted.SYN, Options: scripted.Options{MSS: scripted.Uint16(1460)}})
			conn.Expect(env, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1)}, time.Second)
			shut := scripted.TCP{Flags: scripted.ACK, Window: scripted.Uint16(0)}
			conn.Send(env, shut)
			var rto time.Duration
			select {
			case rto = <-env.Value(zeroWindowKey{}).(chan time.Duration):
			case <-ctx.Done():
				return ctx.Err()
			}
			// Linux's probe: no data, one below SND.UNA.
			probe := scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(0), Len: scripted.Int(0)}
			conn.Expect(env, probe, time.Second)
			for i := 1; i < zeroWindowProbes; i++ {
				conn.Send(env, shut)
				conn.ExpectAt(env, probe, rto<<i)
			}
			conn.Send(env, scripted.TCP{Flags: scripted.ACK})
			conn.Expect(env, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Payload: []byte("hello")}, time.Second)
			conn.Send(env, scripted.TCP{Flags: scripted.ACK})
			conn.Expect(env, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(6)}, time.Second)
			conn.Send(env, scripted.TCP{Flags: scripted.FIN | scripted.ACK})
			conn.Expect(env, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(conn.NextSeq())}, time.Second)
			return nil
		},
		Steps: func(lab.Options) []expect.Step {
			steps := []expect.Step{
				expect.C2S(expect.SYN).SeqNum(0).Explain(
					"The script, the client, sends a SYN.",
					"脚本(客户端)发送SYN。"),
				expect.S2C(synAck).SeqNum(0).AckNum(1).Explain(
					"The kernel's server answers with SYN/ACK.",
					"内核的服务端回SYN/ACK。"),
				expect.C2S(ack).SeqNum(1).AckNum(1).Length(0).Checking(window(0)).Explain(
					"The script completes the handshake with a window of zero: it will take no data. The server writes 5 bytes, which must wait.",
					"脚本用零窗口完成握手: 它不接收任何数据。服务端写了5字节, 只能等待。"),
			}
			for i := range zeroWindowProbes {
				steps = append(steps, expect.S2C(ack).SeqNum(0).Length(0).Explain(
					fmt.Sprintf("The kernel probes the shut window (probe %d): a segment with no data whose sequence number is one below SND.UNA, which the receiver must acknowledge. It comes one RTO after the data was written, then each twice as long after the previous answer as the last (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17; the backoff of RFC 6298 5.5).", i+1),
					fmt.Sprintf("内核探测关闭的窗口 (第%d个探测): 一个不带数据, 序列号比SND.UNA小一的包, 接收方必须确认它。第一个在写数据后一个RTO发出, 之后每次间隔加倍 (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17; 退避见RFC 6298 5.5)。", i+1)))
				if i < zeroWindowProbes-1 {
					steps = append(steps, expect.C2S(ack).SeqNum(1).AckNum(1).Length(0).Checking(window(0)).Explain(
						"The script answers the probe: its window is still zero.",
						"脚本回应探测: 窗口仍然是零。"))
				}
			}
			return append(steps,
				expect.C2S(ack).SeqNum(1).AckNum(1).Length(0).Checking(window(scripted.DefaultWindow)).Explain(
					"The script answers the last probe with an open window: a window update.",
					"脚本用打开的窗口回应最后一个探测: 窗口更新。"),
				expect.S2C(pshAck).SeqNum(1).Length(5).Explain(
					"The kernel sends the 5 bytes at once.",
					"内核立即发出这5字节。"),
				expect.C2S(ack).SeqNum(1).AckNum(6).Length(0).Explain(
					"The script acknowledges them.",
					"脚本确认这5字节。"),
				expect.S2C(finAck).SeqNum(6).AckNum(1).Explain(
					"The server, its data acknowledged, closes: the kernel's FIN.",
					"服务端的数据得到确认后关闭: 内核发出FIN。"),
				expect.C2S(finAck).SeqNum(1).AckNum(7).Explain(
					"The script acknowledges the FIN and closes too, in the same segment.",
					"脚本确认FIN, 并在同一个包里也关闭: 发出FIN。"),
				expect.S2C(ack).SeqNum(7).AckNum(2).Length(0).Explain(
					"The kernel acknowledges the script's FIN and waits in TIME_WAIT.",
					"内核确认脚本的FIN, 进入TIME_WAIT。"),
			)
		},
	}
}

// window checks that a segment's raw window is w.
func window(w uint16) func(*capture.Segment) error {
	return func(s *capture.Segment) error {
		if s.Window != w {
			return fmt.Errorf("window %d, want %d", s.Window, w)
		}
		return nil
	}
}

// socketRTO returns the kernel's retransmission timeout of c's socket.
func socketRTO(c interface {
	SyscallConn() (syscall.RawConn, error)
}) (time.Duration, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return 0, err
	}
	if ierr != nil {
		return 0, fmt.Errorf("TCP_INFO: %w", ierr)
	}
	if info.Rto == 0 {
		return 0, errors.New("TCP_INFO: no RTO")
	}
	return time.Duration(info.Rto) * time.Microsecond, nil
}

// untilAcked waits, 2 s at most, until the kernel has nothing of c's
// unacknowledged.
func untilAcked(ctx context.Context, c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	// As long as the scenario lasts: the probes back off (one, two, then
	// four RTOs), and a loaded machine adds its own delays; a fixed bound
	// closed the socket under the data, which then carried the FIN.
	for ; ctx.Err() == nil; time.Sleep(time.Millisecond) {
		var info *unix.TCPInfo
		var ierr error
		if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
			return err
		}
		if ierr != nil {
			return fmt.Errorf("TCP_INFO: %w", ierr)
		}
		if info.Unacked == 0 && info.Notsent_bytes == 0 {
			return nil
		}
	}
	return fmt.Errorf("the data was not acknowledged: %w", ctx.Err())
}
