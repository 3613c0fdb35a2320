package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
)

// BulkBytes is the size of the bulk scenario's POST body: 1 GiB.
const BulkBytes = 1 << 30

// bulkSnaplen keeps the headers only: Ethernet 14 + IPv4 20 + TCP with
// options 60 bytes fit in 96; 128 leaves room for IP options.
const bulkSnaplen = 128

// bulkMinSegments is the fewest segments a capture of anyone's peers must
// carry to pass as bulk: 1 GiB over loopback takes tens of thousands even
// with 64 KiB segments.
const bulkMinSegments = 1000

// Bulk sends 1 GiB from the client to the server at full speed over the
// namespace's loopback, captured headers-only: every packet must be
// captured, and every byte acknowledged.
func Bulk() *lab.Scenario {
	return &lab.Scenario{
		Name:      "bulk",
		Summary:   "a 1 GiB POST at full speed over loopback, captured headers-only without a drop; every byte acknowledged",
		SummaryZH: "以全速经loopback POST 1 GiB, 只抓包头, 没有一个丢包; 每个字节都被确认",
		Snaplen:   bulkSnaplen,
		HighRate:  true,
		Timeout:   60 * time.Second,
		Server:    peer.Server(nil),
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			start := time.Now()
			if _, err := c.Write(bulkHead()); err != nil {
				return err
			}
			buf := make([]byte, 1<<20)
			for sent := 0; sent < BulkBytes; sent += len(buf) {
				if _, err := c.Write(buf); err != nil {
					return fmt.Errorf("after %d bytes: %w", sent, err)
				}
			}
			if err := peer.ReadResponse(bufio.NewReader(c)); err != nil {
				return err
			}
			d := time.Since(start)
			gbps := float64(BulkBytes) * 8 / d.Seconds() / 1e9
			env.Metric("bytes", BulkBytes)
			env.Metric("seconds", d.Seconds())
			env.Metric("gbit_per_s", gbps)
			env.Record(env.Text("client: sent %d bytes and read the response in %.2f s: %.2f Gbit/s", "客户端: 发送 %d 字节并读到回应, 用时 %.2f 秒: %.2f Gbit/s"), BulkBytes, d.Seconds(), gbps)
			return c.Close()
		},
		Steps: func(opt lab.Options) []expect.Step {
			total := len(bulkHead()) + BulkBytes
			flow := expect.Either(expect.C2S(ack), expect.C2S(pshAck), expect.S2C(ack).Length(0))
			// Judging anyone's capture, the byte counts are unknown: a bulk
			// transfer is then one of at least bulkMinSegments segments,
			// which no exchange of requests and answers comes near.
			min := 1
			if opt.AnyPeers {
				min = bulkMinSegments
			}
			return append(append(expect.Handshake(),
				expect.OneOf(expect.Seq(flow.AtLeast(min))).Explain(
					"The client sends the request and its 1 GiB body as fast as loopback carries it; the server's kernel acknowledges as it goes (and announces window updates as its application reads).",
					"客户端以回环接口的最高速度发送请求和1 GiB的数据, 服务端边接收边确认"),
				// The last data is acknowledged on its own, or by the
				// response when the delayed ACK has not fired yet.
				acking(expect.S2C(ack), 1+total, opt).Length(0).Optional().Explain(
					"The server's kernel acknowledges the last byte: every byte sent is acknowledged on the wire.",
					"服务端确认最后一个字节: 发送的每个字节都在线上被确认"),
				sized(acking(expect.S2C(pshAck), 1+total, opt), len(peer.Response), opt).Explain(
					"The server answers once it has read the whole body.", "服务端读完全部数据后响应"),
				expect.C2S(ack).Length(0).Optional().Explain("The client acknowledges the response.", "客户端回ack"),
			), append(expect.ClientCloses(), lateDuplicate())...)
		},
	}
}

// lateDuplicate is an old duplicate that reaches the wire after the
// close: a retransmission of data the server has acknowledged (the
// kernel's tail-loss probe, made before the client's FIN but held in the
// host's queues behind it on a loaded machine), and the closed server's
// RST in answer. The kernel's account of soak round 152 (load average
// 25 to 30) has the probe 1.9 ms before the FIN and its frame after the
// last ACK. TCP expects old duplicates to arrive late (RFC 9293 3.4.1:
// it is why TIME_WAIT lasts), and a host's queues are part of the
// network; data the server had not acknowledged (no spurious
// retransmission) or new data after the close still fail.
func lateDuplicate() expect.Step {
	dup := expect.Either(expect.C2S(ack), expect.C2S(pshAck)).WithData().With(capture.Retransmission, capture.SpuriousRetransmission)
	return expect.OneOf(expect.Seq(
		dup.Explain("An old duplicate: the client's kernel resent data the server had acknowledged (a tail-loss probe made before the FIN), and the host's queues delivered it after the close. TCP expects such late duplicates; the data is discarded.",
			"一个旧的重复段: 客户端内核在fin之前重传了服务端已确认的数据 (尾部丢失探测), 主机的队列在连接关闭之后才把它送出. TCP预料到这种迟到的重复段; 数据被丢弃"),
		expect.S2C(expect.RST).Length(0).Optional().Explain("The server's socket is closed: it answers the duplicate with RST.",
			"服务端的socket已经关闭: 它用rst回答这个重复段"),
	)).Optional().Explain("After the close, at most an old duplicate of acknowledged data, late from the host's queues, and the RST that answers it.",
		"关闭之后, 最多还有一个已确认数据的旧重复段 (在主机队列里耽搁了), 以及回答它的rst")
}

// bulkHead is the blog post's POST request head announcing a 1 GiB body.
func bulkHead() []byte {
	h := string(peer.Request("POST", 0, 'a'))
	return []byte(strings.Replace(h, "Content-Length: 0\r\n", fmt.Sprintf("Content-Length: %d\r\n", BulkBytes), 1))
}
