package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/scripted"
)

// rstOffset is how far into the kernel's receive window the script puts
// its first RST: inside the window, not at RCV.NXT.
const rstOffset = 1000

// RSTChallenge shows RFC 5961's defence against blind resets: a RST
// inside the window but not at RCV.NXT gets a challenge ACK and the
// connection lives on; a RST exactly at RCV.NXT resets it.
func RSTChallenge() *lab.Scenario {
	return &lab.Scenario{
		Name:      "rst-challenge",
		Summary:   "a scripted client's RST inside the window but not at RCV.NXT gets a challenge ACK and the connection lives on; a RST at RCV.NXT resets it (RFC 5961 3.2, RFC 9293 3.10.7.4)",
		SummaryZH: "脚本客户端发出一个在窗口内但不等于RCV.NXT的RST: 内核回一个挑战ACK, 连接照常; 正好等于RCV.NXT的RST才重置连接 (RFC 5961 3.2, RFC 9293 3.10.7.4)",
		Topology:  lab.Scripted,
		Server: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, 64)
			n, err := io.ReadFull(c, buf[:4])
			if err != nil || string(buf[:n]) != "ping" {
				return fmt.Errorf("read after the challenge ACK: %q, %v; want ping: the connection must live on", buf[:n], err)
			}
			_, err = c.Read(buf)
			if !errors.Is(err, syscall.ECONNRESET) {
				return fmt.Errorf("read after the RST at RCV.NXT: %v, want ECONNRESET", err)
			}
			env.Record("server: read after the RST at RCV.NXT: %v", err)
			return nil
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			conn := env.Scripted().Dial(scriptPort(env))
			conn.Send(env, scripted.TCP{Flags: scripted.SYN, Options: scripted.Options{MSS: scripted.Uint16(1460)}})
			conn.Expect(env, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1)}, time.Second)
			conn.Send(env, scripted.TCP{Flags: scripted.ACK})
			// A blind attacker's RST: in the window, not at RCV.NXT.
			conn.Send(env, scripted.TCP{Flags: scripted.RST, Seq: scripted.Uint32(conn.NextSeq() + rstOffset)})
			conn.Expect(env, scripted.TCP{Flags: scripted.ACK, Seq: scripted.Uint32(conn.NextAck()), Ack: scripted.Uint32(conn.NextSeq()), Len: scripted.Int(0)}, time.Second)
			conn.Send(env, scripted.TCP{Flags: scripted.PSH | scripted.ACK, Payload: []byte("ping")})
			conn.Expect(env, scripted.TCP{Flags: scripted.ACK, Ack: scripted.Uint32(conn.NextSeq()), Len: scripted.Int(0)}, time.Second)
			// The peer's own RST: exactly at RCV.NXT.
			conn.Send(env, scripted.TCP{Flags: scripted.RST, Seq: scripted.Uint32(conn.NextSeq())})
			conn.ExpectNone(env, 200*time.Millisecond)
			return nil
		},
		Steps: func(lab.Options) []expect.Step {
			return []expect.Step{
				expect.C2S(expect.SYN).SeqNum(0).Explain(
					"The script, the client, sends a SYN to the kernel's listening socket.",
					"脚本(客户端)向内核的监听套接字发送SYN。"),
				expect.S2C(synAck).SeqNum(0).AckNum(1).Explain(
					"The kernel answers with SYN/ACK.",
					"内核回SYN/ACK。"),
				expect.C2S(ack).SeqNum(1).AckNum(1).Length(0).Explain(
					"The script completes the handshake; accept() returns in the kernel's server.",
					"脚本完成三次握手, 服务端的accept()返回。"),
				expect.C2S(expect.RST).SeqNum(1+rstOffset).Length(0).Explain(
					"The script sends a RST whose sequence number is inside the kernel's receive window but 1000 bytes past RCV.NXT, as a blind attacker who guessed roughly would (RFC 5961 3.2).",
					"脚本发出一个RST, 序列号在内核的接收窗口内, 但比RCV.NXT大1000, 就像一个大致猜中序列号的盲攻击者 (RFC 5961 3.2)。"),
				expect.S2C(ack).SeqNum(1).AckNum(1).Length(0).Explain(
					"The kernel does not reset the connection: it answers with a challenge ACK that carries RCV.NXT (ack 1). A real peer that had sent a RST would answer it with a RST at exactly that number; an attacker never sees it (RFC 5961 3.2, RFC 9293 3.10.7.4). The capture's states judge the RST as the kernel does: only a RST at RCV.NXT counts, so both ends stay ESTABLISHED and the ending calls this one ignored. Its labels, like Wireshark's analysis, take the RST's number as the next: the challenge ACK is a dup-ack, the next data out-of-order.",
					"内核没有重置连接, 而是回一个挑战ACK, 其ack号就是RCV.NXT (1)。真正发了RST的对端会用正好这个序列号再发一个RST; 攻击者看不到这个ACK (RFC 5961 3.2, RFC 9293 3.10.7.4)。抓包推断的状态像内核一样判断这个RST: 只有等于RCV.NXT的RST才算数, 所以两端都保持ESTABLISHED, 连接结局把它记为被忽略。标签则与Wireshark的分析一样, 把RST的序列号当作下一个: 挑战ACK标为dup-ack, 接下来的数据标为out-of-order。"),
				expect.C2S(pshAck).SeqNum(1).Length(4).Explain(
					"The script sends 4 bytes, \"ping\": the connection is still open and the server reads them.",
					"脚本发送4字节\"ping\": 连接仍然打开, 服务端读到它们。"),
				expect.S2C(ack).AckNum(5).Length(0).Explain(
					"The kernel acknowledges them.",
					"内核确认这4字节。"),
				expect.C2S(expect.RST).SeqNum(5).Length(0).Explain(
					"The script sends a RST exactly at RCV.NXT (seq 5): the kernel resets the connection without a word, and the server's read() fails with ECONNRESET (RFC 9293 3.10.7.4, RFC 5961 3.2).",
					"脚本发出序列号正好等于RCV.NXT (5) 的RST: 内核不回任何包就重置连接, 服务端的read()返回ECONNRESET (RFC 9293 3.10.7.4, RFC 5961 3.2)。"),
			}
		},
	}
}
