package scenarios

import (
	"context"
	"errors"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/scripted"
)

// synOptionsMSS is the only option of the script's SYN/ACK: the default
// MSS of RFC 1122 4.2.2.6 (and RFC 9293 3.7.1).
const synOptionsMSS = 536

// SYNOptions shows that an option is used only when both SYNs carry it:
// the kernel's client offers MSS, window scale, SACK-permitted and
// timestamps; the scripted server's SYN/ACK carries an MSS alone, and the
// kernel's segments then carry no timestamps.
func SYNOptions() *lab.Scenario {
	return &lab.Scenario{
		Name:      "syn-options",
		Summary:   "the kernel's client offers MSS, window scale, SACK-permitted and timestamps; a scripted server answers with an MSS of 536 alone, and the kernel's segments carry no timestamps after it (RFC 7323 2.2 and 3.2, RFC 2018 2, RFC 9293 3.7.1)",
		SummaryZH: "内核客户端的SYN带MSS, 窗口扩大, SACK许可和时间戳; 脚本服务端的SYN/ACK只带MSS 536, 之后内核的包都不再带时间戳 (RFC 7323 2.2和3.2, RFC 2018 2, RFC 9293 3.7.1)",
		Topology:  lab.ScriptedServer,
		Server: func(ctx context.Context, env *lab.Env) error {
			conn := env.Scripted().Listen(scriptPort(env))
			conn.Expect(env, scripted.TCP{Flags: scripted.SYN, Seq: scripted.Uint32(0), Len: scripted.Int(0), Options: scripted.Options{
				Present: scripted.OptMSS | scripted.OptWindowScale | scripted.OptSACKPermitted | scripted.OptTimestamps,
			}}, time.Second)
			conn.Send(env, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Options: scripted.Options{MSS: scripted.Uint16(synOptionsMSS)}})
			noTS := scripted.Options{Absent: scripted.OptTimestamps}
			conn.Expect(env, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(1), Ack: scripted.Uint32(1), Len: scripted.Int(0), Options: noTS}, time.Second)
			conn.Expect(env, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Seq: scripted.Uint32(1), Payload: []byte("hello"), Options: noTS}, time.Second)
			conn.Expect(env, scripted.TCP{Flags: scripted.FIN | scripted.ACK, Seq: scripted.Uint32(6), Options: noTS}, time.Second)
			conn.Send(env, scripted.TCP{Flags: scripted.FIN | scripted.ACK})
			conn.Expect(env, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(2), Options: noTS}, time.Second)
			return nil
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			if _, err := c.Write([]byte("hello")); err != nil {
				c.Close()
				return err
			}
			return c.Close()
		},
		Steps: func(lab.Options) []expect.Step {
			return []expect.Step{
				expect.C2S(expect.SYN).SeqNum(0).Checking(expect.LinuxSYNOptions).Explain(
					"The kernel's client calls connect(): its SYN offers MSS 1460, window scale, SACK-permitted and timestamps (RFC 9293 3.7.1, RFC 7323 2.2 and 3.2, RFC 2018 2).",
					"内核客户端调用connect(): 它的SYN带MSS 1460, 窗口扩大, SACK许可和时间戳 (RFC 9293 3.7.1, RFC 7323 2.2和3.2, RFC 2018 2)。"),
				expect.S2C(synAck).SeqNum(0).AckNum(1).Checking(mssOnly(synOptionsMSS)).Explain(
					"The script, the server, answers with a SYN/ACK whose only option is MSS 536: no window scale, no SACK-permitted, no timestamps.",
					"脚本(服务端)回SYN/ACK, 唯一的选项是MSS 536: 没有窗口扩大, 没有SACK许可, 没有时间戳。"),
				expect.C2S(ack).SeqNum(1).AckNum(1).Length(0).Checking(noTimestamps).Explain(
					"The kernel completes the handshake. Its ACK carries no timestamps: they are used only when both SYNs carried them (RFC 7323 3.2); nor will it scale windows or send SACK blocks (RFC 7323 2.2, RFC 2018 2).",
					"内核完成握手。它的ACK不带时间戳: 只有两个SYN都带时间戳时才使用 (RFC 7323 3.2); 也不会扩大窗口或发送SACK块 (RFC 7323 2.2, RFC 2018 2)。"),
				expect.C2S(pshAck).SeqNum(1).Length(5).Checking(noTimestamps).Explain(
					"The client writes 5 bytes: no timestamps either.",
					"客户端写5字节: 同样不带时间戳。"),
				expect.C2S(finAck).SeqNum(6).Checking(noTimestamps).Explain(
					"The client closes at once: its FIN.",
					"客户端立即关闭: 发出FIN。"),
				expect.S2C(finAck).SeqNum(1).AckNum(7).Explain(
					"The script acknowledges the data and the FIN and closes too.",
					"脚本确认数据和FIN, 同时也关闭。"),
				expect.C2S(ack).SeqNum(7).AckNum(2).Length(0).Checking(noTimestamps).Explain(
					"The kernel acknowledges the script's FIN and waits in TIME_WAIT.",
					"内核确认脚本的FIN, 进入TIME_WAIT。"),
			}
		},
	}
}

// mssOnly checks that a segment's only option is an MSS of mss.
func mssOnly(mss uint16) func(*capture.Segment) error {
	return func(s *capture.Segment) error {
		o := &s.Options
		var errs []error
		if o.MSS != mss {
			errs = append(errs, errors.New("MSS is not the script's"))
		}
		if o.WindowScale >= 0 || o.SACKPermitted || o.HasTimestamps {
			errs = append(errs, errors.New("options besides the MSS"))
		}
		return errors.Join(errs...)
	}
}

// noTimestamps checks that a segment carries no timestamps option.
func noTimestamps(s *capture.Segment) error {
	if s.Options.HasTimestamps {
		return errors.New("timestamps option present")
	}
	return nil
}
