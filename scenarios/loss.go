package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/impair"
	"github.com/tcplab/tcplab/lab/peer"
)

// The loss scenario's transfer: the client POSTs the blog post's request in
// pieces of lossPiece bytes, one write each. On lo (MTU 65536) every write
// leaves as one segment, so "the Nth data segment" is "the Nth piece".
const (
	lossBody   = 10000
	lossPiece  = 1000
	lossPieceN = 5 // the piece the server's kernel never gets
	// lossClientPort is the client's own port, fixed so that Setup can
	// name it in the rule that drops the server's response.
	lossClientPort = 40000
	// The server's receive window is pinned at lossWindow, with a buffer
	// of lossRcvBuf (Linux doubles it): see pinWindow.
	lossWindow = 65535
	lossRcvBuf = 256 << 10
)

// lossPieces splits the blog post's POST request into the writes of the client.
func lossPieces() [][]byte {
	req := peer.Request("POST", lossBody, 'a')
	var pieces [][]byte
	for len(req) > 0 {
		n := min(lossPiece, len(req))
		pieces = append(pieces, req[:n])
		req = req[n:]
	}
	return pieces
}

// lossRules is the key under which Setup hands the installed nftables
// rules to the client, which reports what they dropped.
type lossRules struct{}

// retransmitted returns the labels of a segment that carries bytes sent
// before.
func retransmitted() []capture.Label {
	return []capture.Label{capture.Retransmission, capture.FastRetransmission, capture.SpuriousRetransmission, capture.OutOfOrder}
}

// Loss shows the two ways TCP finds out that a segment was lost. Setup
// installs two nftables rules on the input hook, after the capture point:
// one drops the fifth piece of the client's request, which the pieces
// after it expose at once (the server's duplicate ACKs carry SACK blocks);
// the other drops the server's response, the last segment before the
// client waits, which nothing can expose but the server's retransmission
// timer.
//
// The server pins its receive window (pinWindow), so that its ACKs differ
// only in what they acknowledge and Wireshark's duplicate-ACK rule applies
// on every run.
func Loss() *lab.Scenario {
	return &lab.Scenario{
		Name:           "loss",
		Summary:        "a piece of the request and then the response are dropped on arrival: SACK duplicate ACKs and a quick retransmission, then a retransmission by timer",
		SummaryZH:      "请求的一段和之后的响应在到达时被丢弃: 带SACK的重复ack和快速重传, 然后是超时重传",
		NeedsNamespace: true,
		// The response waits for the server's retransmission timer: about
		// 200 ms, Linux's minimum RTO.
		Wait: func(lab.Options) time.Duration { return 200 * time.Millisecond },
		Setup: func(ctx context.Context, env *lab.Env) (func(), error) {
			server, err := netip.ParseAddrPort(env.Addr)
			if err != nil {
				return nil, err
			}
			in, err := impair.Install(impair.DropNth(server.Port(), lossPieceN), impair.DropNth(lossClientPort, 1))
			if err != nil {
				return nil, err
			}
			env.SetValue(lossRules{}, in)
			return func() { in.Remove() }, nil
		},
		Server: peer.Server(pinWindow),
		Client: func(ctx context.Context, env *lab.Env) error {
			c, err := env.ConnectFrom(ctx, lossClientPort)
			if err != nil {
				return err
			}
			defer c.Close()
			// Go sets TCP_NODELAY: each write leaves at once, as a segment
			// of its own.
			for _, p := range lossPieces() {
				if _, err := c.Write(p); err != nil {
					return fmt.Errorf("write request: %w", err)
				}
			}
			start := time.Now()
			if err := peer.ReadResponse(bufio.NewReader(c)); err != nil {
				return err
			}
			env.Record(env.Text("the response came %v after the request was written", "请求写出 %v 后回应到达"), time.Since(start).Round(time.Millisecond))
			recordDrops(env, lossRules{})
			return c.Close()
		},
		Steps: lossSteps,
	}
}

// lossSteps are the segments of Loss, with the tolerances that the
// kernel's timing calls for, each explained where it is.
func lossSteps(lab.Options) []expect.Step {
	pieces := lossPieces()
	lost := 1 + (lossPieceN-1)*lossPiece // relative seq of the lost piece
	total := 0
	for _, p := range pieces {
		total += len(p)
	}

	clientData := expect.C2S(pshAck).Without(retransmitted()...).Explain(
		"The client's kernel sends one piece of the request, as the application wrote it.",
		"客户端发送请求的一段数据")
	serverACK := expect.S2C(ack).Length(0).Without(capture.DupACK).Checking(noSACK).Explain(
		"The server's kernel acknowledges what it has received in order.",
		"服务端确认按序收到的数据")
	// On a busy machine the server's kernel may process a piece after
	// the next one is already on the wire, or acknowledge two at once: so
	// pieces and ACKs interleave freely.
	flow := func(min, max int) expect.Step {
		return expect.Either(clientData, serverACK).Times(min, max)
	}
	pastHole := clientData.Explain(
		"A piece past the hole reaches the server: out of order, since the bytes before it are missing. (Wireshark labels a segment lost only when the capture missed it; here the capture saw the lost piece, so there is no \"previous segment not captured\".)",
		"空洞之后的数据到达服务端, 顺序不对 (抓包看到了丢失的那段, 所以没有\"previous segment not captured\")")
	lateACK := serverACK.Explain(
		"The server's kernel acknowledges a piece from before the hole, after the client has sent more: on a busy machine the receiving side runs a little behind.",
		"服务端确认空洞之前的数据, 稍晚一点")
	// A duplicate ACK: the same ack number again, the hole's start, with
	// a SACK block for the bytes after the hole. The window is the same
	// too, as Wireshark requires of a duplicate: see pinWindow.
	dupACK := expect.S2C(ack).Length(0).AckNum(lost).With(capture.DupACK).Checking(sackAfterHole(lossPiece)).Explain(
		"The server's kernel got bytes beyond a hole: it acknowledges at once, with the same ack number as before (a duplicate ACK, still asking for the lost piece), and a SACK block that names the bytes it holds past the hole.",
		"服务端收到了空洞之后的数据, 立即回一个重复的ack(ack号不变, 仍然要丢失的那段), 并用SACK块告诉客户端它已经收到了哪些数据")
	again := expect.C2S(pshAck).SeqNum(lost).Length(lossPiece)

	steps := append(expect.Handshake(),
		expect.Note(fmt.Sprintf("The client writes the blog post's POST request (%d bytes) in pieces of %d bytes, one write() each. On lo, whose MTU is 65536, each write leaves as one segment.", total, lossPiece),
			fmt.Sprintf("客户端把POST请求(%d字节)分成每段%d字节, 每段调用一次write(), 每段就是一个tcp包", total, lossPiece)),
		flow(lossPieceN-1, -1).Explain("The first pieces arrive in order and are acknowledged.", "前几段数据按序到达并被确认"),
		expect.C2S(pshAck).SeqNum(lost).Length(lossPiece).Without(retransmitted()...).Kernel(expect.Dropped("NETFILTER_DROP")).Explain(
			fmt.Sprintf("Piece %d leaves the client and the capture on lo records it, but an nftables rule on the server's input hook drops it: the server's kernel never gets these bytes, and says why it dropped them: NETFILTER_DROP.", lossPieceN),
			fmt.Sprintf("第%d段数据被抓包记录下来了, 但是服务端入口的nftables规则把它丢掉了, 服务端没有收到, 内核记下的丢包原因是NETFILTER_DROP", lossPieceN)),
		expect.Either(pastHole, lateACK).AtLeast(1).Explain(
			"The next piece reaches the server, past the hole.", "下一段到达服务端, 在空洞之后"),
		dupACK,
		// Linux uses RACK: a piece sent before a piece that the SACK
		// names, longer ago than a round trip (microseconds on lo), is
		// lost. So the client usually retransmits on the first duplicate
		// ACK; when RACK waits out its reordering window, or the machine
		// is busy, more pieces and duplicate ACKs come first.
		expect.Either(pastHole, dupACK).AnyNumber().Explain(
			"More pieces past the hole, and more duplicate ACKs, each with a SACK block that grows.", "更多空洞之后的数据和重复ack"),
		// How Wireshark names the retransmission depends on timing alone:
		// within the connection's first round trip of the highest segment
		// (tens of microseconds on lo) it is "out-of-order"; after two or
		// more duplicate ACKs within 20 ms, "fast retransmission"; else a
		// plain "retransmission". On lo the first is the rule and the
		// others happen when the machine is busy.
		expect.OneOf(
			expect.Seq(again.With(capture.OutOfOrder).Explain(
				"The client's kernel retransmits the lost piece at once, within microseconds of the duplicate ACK: Wireshark cannot tell a retransmission this quick from a reordered segment and labels it out-of-order.",
				"客户端马上重传丢失的那段, 因为太快了, Wireshark把它标成乱序(out-of-order)")),
			expect.Seq(again.With(capture.Retransmission).Explain(
				"The client's kernel retransmits the lost piece: a retransmission (a fast retransmission in Wireshark's words when two or more duplicate ACKs came just before it).",
				"客户端重传丢失的那段数据 (如果前面有两个以上的重复ack, Wireshark叫它快速重传)")),
		).Kernel(expect.Resent(expect.FastRetransmit), expect.NoDrop()).Explain(
			"SACK told the client exactly which bytes are missing, and Linux's RACK loss detection judged the piece lost because a piece sent after it has arrived: the client retransmits it without waiting for a timer. Its kernel says so: a fast retransmit, sent in the Recovery state.",
			"SACK告诉客户端到底缺了哪些数据, Linux的RACK算法发现后发的数据已经到了, 判定这一段丢失, 不等定时器就重传. 客户端内核也这么说: 快速重传 (在Recovery状态下发出)"),
		// Pieces sent just before the retransmission may be answered
		// after it is on the wire, when the server's side runs behind.
		expect.Either(pastHole, dupACK).AnyNumber().Explain(
			"Pieces and duplicate ACKs that crossed the retransmission.", "与重传交错的数据和重复ack"),
		expect.S2C(ack).Length(0).Without(capture.DupACK).Checking(noSACK).Explain(
			"The hole is filled: the server's kernel acknowledges everything it holds at once, the SACKed pieces included, and its ACK carries no SACK block any more.",
			"空洞被填上了, 服务端一次确认所有收到的数据, 包括SACK过的, 不再带SACK块"),
		flow(0, -1).Explain("The rest of the request flows normally.", "请求的其余部分正常传输"),
		expect.S2C(pshAck).SeqNum(1).Length(len(peer.Response)).Without(retransmitted()...).Kernel(expect.Dropped("NETFILTER_DROP")).Explain(
			"The server has the whole request and answers. The capture records the response, and the rule on the client's input hook drops it: the client's kernel never gets it (NETFILTER_DROP).",
			"服务端收到完整请求后回复响应, 抓包记录下来了, 但是客户端入口的规则把它丢掉了 (NETFILTER_DROP)"),
		expect.Note("Now nothing moves: the response was the last segment in flight, and no later segment can make the client send a duplicate ACK. Only the server's retransmission timer can tell: Linux fires a tail loss probe or its RTO, about 200 ms here.",
			"现在链路上什么都没有了: 响应是最后一个包, 后面没有数据能让客户端发重复ack, 只能等服务端的重传定时器 (这里大约200毫秒)"),
		// The kernel tells which timer: Linux arms the tail loss probe
		// before the RTO, at two smoothed round trips plus the peer's
		// longest delayed ACK (200 ms) when one segment is in flight, as
		// here; so the probe fires first, at about 200 ms, and the RTO
		// only when no probe can be sent.
		expect.S2C(pshAck).SeqNum(1).Length(len(peer.Response)).With(capture.Retransmission).Kernel(expect.Resent(expect.TailLossProbe, expect.RTO), expect.NoDrop()).Explain(
			"The server's timer fires and its kernel sends the response again: a retransmission, long after the original. The kernel names the timer: the tail loss probe, which Linux arms before the RTO so that a lost last segment is resent without the RTO's collapse of the congestion window (an RTO where no probe could be sent).",
			"服务端定时器到期, 重传响应. 内核说出是哪个定时器: 尾部丢失探测 (TLP), Linux在RTO之前先设它, 这样丢了的最后一个包不用等RTO就能重传 (发不了探测时才是RTO)"),
		// The client closes as soon as it has read the response; its
		// delayed ACK is then usually merged into its FIN.
		expect.C2S(ack).Length(0).AckNum(1+len(peer.Response)).Optional().Explain(
			"The client acknowledges the response.", "客户端确认响应"),
	)
	return append(steps, expect.ClientCloses()...)
}

// sackAfterHole checks that a duplicate ACK carries a SACK block that
// starts one piece past its ack number: the bytes just after the lost
// piece.
func sackAfterHole(piece int) func(*capture.Segment) error {
	return func(s *capture.Segment) error {
		o := &s.Options
		for _, b := range o.SACK[:o.NSACK] {
			if int(b.Left-s.Ack) == piece {
				return nil
			}
		}
		return fmt.Errorf("no SACK block starting %d bytes past ack %d (%d blocks)", piece, s.Ack, o.NSACK)
	}
}

// noSACK checks that an ACK carries no SACK block: the receiver holds no
// bytes past a hole.
func noSACK(s *capture.Segment) error {
	if n := s.Options.NSACK; n != 0 {
		return fmt.Errorf("%d SACK blocks: a hole is left", n)
	}
	return nil
}

// pinWindow keeps the server's advertised window at 65535 bytes for the
// whole connection. Wireshark (after RFC 5681) calls an ACK a duplicate
// only when it repeats the window too, and Linux moves its receive window
// as data arrives and as the application reads, at moments that depend on
// scheduling: in about one run in twenty-five the first SACK-bearing ACK
// also opened the window by a kilobyte and was labelled a window update.
// A window clamp that fits in 16 bits makes the server announce window
// scale 0, so its window field cannot grow past 65535; a receive buffer
// far larger than the request keeps the free space above that, so the
// window cannot shrink below it either. Both are set on the listener, for
// the accepted connection to have them from its SYN/ACK on.
func pinWindow(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, lossRcvBuf); err != nil {
		return fmt.Errorf("SO_RCVBUF: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP, lossWindow); err != nil {
		return fmt.Errorf("TCP_WINDOW_CLAMP: %w", err)
	}
	return nil
}

// ruleText says what an nftables rule drops, in the run's language.
func ruleText(env *lab.Env, r impair.Rule) string {
	if env.Options.Lang != expect.Chinese {
		return r.String()
	}
	kind := "数据包"
	if r.Kind == impair.SYN {
		kind = "SYN"
	}
	if len(r.Nth) == 0 {
		return fmt.Sprintf("丢弃发往端口 %d 的 %d%% 的%s", r.Port, r.Percent, kind)
	}
	nums := make([]string, len(r.Nth))
	for i, n := range r.Nth {
		nums[i] = "#" + strconv.Itoa(n)
	}
	return fmt.Sprintf("丢弃发往端口 %d 的第 %s 个%s", r.Port, strings.Join(nums, ", "), kind)
}

// recordDrops records, for each nftables rule that Setup installed and
// kept in env under key, how many packets it dropped of those it matched.
func recordDrops(env *lab.Env, key any) {
	installed, ok := env.Value(key).(*impair.Installed)
	if !ok {
		return
	}
	if st, err := installed.Stats(); err == nil {
		for i, r := range installed.Rules() {
			env.Record(env.Text("nftables: %s: dropped %d of %d", "nftables: %s: 匹配 %[3]d 个, 丢弃了 %[2]d 个"), ruleText(env, r), st[i].Dropped, st[i].Matched)
		}
	}
}
