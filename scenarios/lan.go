package scenarios

import (
	"fmt"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
)

// On the LAN, the MSS each SYN announces is the MTU less the IP and TCP
// headers: 1500 - 20 - 20 over IPv4, 1500 - 40 - 20 over IPv6.
const (
	lanMTU   = 1500
	lanMSS4  = lanMTU - 40
	lanMSS6  = lanMTU - 60
	lanTSOpt = 12 // the timestamps option, padded, on every segment after the SYNs
)

// LAN is the blog post's walkthrough where the post ran it: between two
// hosts on a LAN, the client at 192.168.0.2 and the server at
// 192.168.0.101:8000, joined by Ethernet with an MTU of 1500 bytes. The
// same 15 steps, with what changes off the loopback: Ethernet frames and
// the ARP exchange before the first one, an MSS of 1460, and the POST cut
// into segments of at most 1448 bytes.
func LAN() *lab.Scenario {
	sc := Walkthrough()
	sc.Name = "lan"
	sc.Summary = "the blog post's walkthrough between two hosts on a LAN (client 192.168.0.2, server 192.168.0.101:8000): Ethernet, ARP, MTU 1500, MSS 1460, the POST cut into 1448-byte segments"
	sc.SummaryZH = "博客文章的完整会话, 在局域网的两台主机之间 (客户端192.168.0.2, 服务端192.168.0.101:8000): 以太网, ARP, MTU 1500, MSS 1460, POST被切成1448字节的段"
	sc.Topology = lab.LAN
	sc.Steps = lanSteps
	return sc
}

// lanSteps are the walkthrough's steps with the handshake's MSS checked
// and explained for the LAN, and a remark on the segment sizes.
func lanSteps(opt lab.Options) []expect.Step {
	mss := lanMSS4
	server, client := lab.LANServerIPv4, lab.LANClientIPv4
	if opt.IPv6 {
		mss, server, client = lanMSS6, lab.LANServerIPv6, lab.LANClientIPv6
	}
	check := func(s *capture.Segment) error {
		if err := expect.LinuxSYNOptions(s); err != nil {
			return err
		}
		if s.Options.MSS != uint16(mss) {
			return fmt.Errorf("MSS %d, want %d: the LAN's MTU %d less the IP and TCP headers", s.Options.MSS, mss, lanMTU)
		}
		return nil
	}
	steps := walkthroughFlow(opt, true)
	// Handshake's SYN and SYN/ACK, told as two hosts see them.
	steps[0] = expect.C2S(expect.SYN).SeqNum(0).Checking(check).Explain(
		fmt.Sprintf("The client at %s calls connect() to %s:8000. Its kernel first asks by ARP which MAC address has %s (the frames before this one), then sends the SYN in an Ethernet frame to that address (%s). The SYN announces MSS %d: the LAN's MTU of %d bytes less the IP and TCP headers; on the loopback it was 65483.",
			client, server, server, lab.LANServerMAC, mss, lanMTU),
		fmt.Sprintf("客户端(%s)调用connect连接%s:8000. 它的内核先用ARP询问%s的MAC地址(这一帧之前的几帧), 再把SYN装进以太网帧发给这个地址(%s). SYN通告MSS %d: 局域网的MTU %d字节减去IP和TCP头; 在回环接口上是65483.",
			client, server, server, lab.LANServerMAC, mss, lanMTU))
	steps[1] = expect.S2C(expect.SYN|ack).SeqNum(0).AckNum(1).Checking(check).Explain(
		fmt.Sprintf("The server's kernel at %s answers with SYN+ACK, ack = the client's sequence number + 1, and announces the same MSS %d: neither side will send a segment longer than that.", server, mss),
		fmt.Sprintf("服务端(%s)的内核回SYN+ACK, ack号=客户端序列号+1, 也通告MSS %d: 双方发送的段都不会超过它.", server, mss))
	note := expect.Note(
		fmt.Sprintf("Off the loopback the request no longer fits in one segment: every data segment carries at most %d bytes (MSS %d less the %d-byte timestamps option), so the client's %d-byte POST crosses the LAN as a dozen Ethernet frames, which the capture shows one by one. "+
			"The server's small buffer counts the memory each frame takes, not only its payload, so a segment that the window allows may still not fit: the server's kernel drops it, and the client sends it again a few milliseconds later (a retransmission, its tail-loss probe).",
			mss-lanTSOpt, mss, lanTSOpt, walkBody),
		fmt.Sprintf("离开回环接口后, 请求不能放在一个段里: 每个数据段最多%d字节(MSS %d减去%d字节的时间戳选项), 所以客户端%d字节的POST在局域网上是十几个以太网帧, 抓包里一个一个都能看到. "+
			"服务端很小的接收缓冲区按每一帧占用的内存计算, 而不只是数据, 所以窗口允许的段也可能放不下: 服务端内核丢弃它, 客户端几毫秒后重发(重传, 即尾部丢失探测).",
			mss-lanTSOpt, mss, lanTSOpt, walkBody))
	return append(steps[:4:4], append([]expect.Step{note}, steps[4:]...)...)
}
