package sockstat

import (
	"encoding/binary"
	"time"
)

// InfiniteSsthresh is the slow-start threshold of a connection that has
// not left its initial slow start (TCP_INFINITE_SSTHRESH); ss does not
// print it, nor does a Socket's JSON.
const InfiniteSsthresh = 0x7fffffff

// TCPInfo is the kernel's struct tcp_info for one socket (linux/tcp.h),
// with times as time.Duration, windows in segments (SndCwnd, SndSsthresh)
// or bytes (SndWnd, RcvWnd, RcvSpace), rates in bytes per second. Fields
// the running kernel does not know stay zero: Len says how many bytes it
// sent.
type TCPInfo struct {
	State       State
	CAState     CAState
	Retransmits uint8 // consecutive retransmissions of the head of the queue (icsk_retransmits)
	Probes      uint8 // unanswered zero-window or keep-alive probes
	Backoff     uint8 // how many times the RTO has been doubled
	Options     Options
	SndWScale   uint8 // the peer's window scale, applied to the windows it advertises
	RcvWScale   uint8 // this end's window scale

	DeliveryRateAppLimited bool
	FastOpenClientFail     uint8

	RTO    time.Duration // retransmission timeout
	ATO    time.Duration // delayed-ACK timeout
	SndMSS uint32
	RcvMSS uint32

	Unacked uint32 // segments sent and not yet acknowledged (packets_out)
	Sacked  uint32 // of those, selectively acknowledged
	Lost    uint32 // of those, thought lost
	Retrans uint32 // of those, retransmitted and not yet acknowledged
	Fackets uint32

	LastDataSent time.Duration // since the last data was sent
	LastAckSent  time.Duration // not maintained by Linux: always zero
	LastDataRecv time.Duration // since the last data was received
	LastAckRecv  time.Duration // since the last ACK was received

	PMTU        uint32
	RcvSsthresh uint32
	RTT         time.Duration // smoothed round-trip time (srtt)
	RTTVar      time.Duration // its mean deviation
	SndSsthresh uint32        // slow-start threshold, segments; InfiniteSsthresh in initial slow start
	SndCwnd     uint32        // congestion window, segments
	AdvMSS      uint32
	Reordering  uint32

	RcvRTT       time.Duration // the receiver's estimate of the RTT
	RcvSpace     uint32
	TotalRetrans uint32 // segments retransmitted over the connection's life

	PacingRate    uint64 // bytes per second
	MaxPacingRate uint64 // bytes per second; ^uint64(0) for no limit
	BytesAcked    uint64 // includes the SYN's one byte
	BytesReceived uint64
	SegsOut       uint32
	SegsIn        uint32

	NotsentBytes uint32
	MinRTT       time.Duration
	DataSegsIn   uint32
	DataSegsOut  uint32

	DeliveryRate uint64 // bytes per second

	BusyTime      time.Duration // time with data in flight
	RwndLimited   time.Duration // time limited by the receiver's window
	SndbufLimited time.Duration // time limited by the send buffer

	Delivered   uint32
	DeliveredCE uint32

	BytesSent    uint64 // data bytes sent, retransmissions included
	BytesRetrans uint64
	DSACKDups    uint32
	ReordSeen    uint32
	RcvOOOPack   uint32
	SndWnd       uint32 // the peer's advertised window, scaled, bytes
	RcvWnd       uint32 // this end's advertised window, scaled, bytes
	Rehash       uint32

	TotalRTO           uint16
	TotalRTORecoveries uint16
	TotalRTOTime       time.Duration

	// Len is the length of the struct the kernel sent; fields that start
	// at or beyond it are zero.
	Len int
}

// tcpInfoLen is the length of the part of struct tcp_info that TCPInfo
// decodes (through tcpi_total_rto_time, Linux 6.7).
const tcpInfoLen = 248

// DecodeTCPInfo decodes struct tcp_info from b, in the host's byte order,
// as the kernel sends it in an INET_DIAG_INFO attribute (or getsockopt
// TCP_INFO). A b shorter than today's struct comes from an older kernel:
// the fields it lacks are zero. Bytes beyond the fields TCPInfo knows are
// ignored.
func DecodeTCPInfo(b []byte) TCPInfo {
	var t TCPInfo
	t.Len = len(b)
	var full [tcpInfoLen]byte
	copy(full[:], b)
	d := full[:]
	ne := binary.NativeEndian
	u32 := func(off int) uint32 { return ne.Uint32(d[off:]) }
	u64 := func(off int) uint64 { return ne.Uint64(d[off:]) }
	us := func(off int) time.Duration { return time.Duration(u32(off)) * time.Microsecond }
	ms := func(off int) time.Duration { return time.Duration(u32(off)) * time.Millisecond }

	t.State = State(d[0])
	t.CAState = CAState(d[1])
	t.Retransmits = d[2]
	t.Probes = d[3]
	t.Backoff = d[4]
	t.Options = Options(d[5])
	// Bit fields: the first declared takes the low bits (little endian;
	// tcplab runs on little-endian machines).
	t.SndWScale = d[6] & 0x0f
	t.RcvWScale = d[6] >> 4
	t.DeliveryRateAppLimited = d[7]&1 != 0
	t.FastOpenClientFail = d[7] >> 1 & 3

	t.RTO = us(8)
	t.ATO = us(12)
	t.SndMSS = u32(16)
	t.RcvMSS = u32(20)
	t.Unacked = u32(24)
	t.Sacked = u32(28)
	t.Lost = u32(32)
	t.Retrans = u32(36)
	t.Fackets = u32(40)
	t.LastDataSent = ms(44)
	t.LastAckSent = ms(48)
	t.LastDataRecv = ms(52)
	t.LastAckRecv = ms(56)
	t.PMTU = u32(60)
	t.RcvSsthresh = u32(64)
	t.RTT = us(68)
	t.RTTVar = us(72)
	t.SndSsthresh = u32(76)
	t.SndCwnd = u32(80)
	t.AdvMSS = u32(84)
	t.Reordering = u32(88)
	t.RcvRTT = us(92)
	t.RcvSpace = u32(96)
	t.TotalRetrans = u32(100)
	t.PacingRate = u64(104)
	t.MaxPacingRate = u64(112)
	t.BytesAcked = u64(120)
	t.BytesReceived = u64(128)
	t.SegsOut = u32(136)
	t.SegsIn = u32(140)
	t.NotsentBytes = u32(144)
	t.MinRTT = us(148)
	t.DataSegsIn = u32(152)
	t.DataSegsOut = u32(156)
	t.DeliveryRate = u64(160)
	t.BusyTime = time.Duration(u64(168)) * time.Microsecond
	t.RwndLimited = time.Duration(u64(176)) * time.Microsecond
	t.SndbufLimited = time.Duration(u64(184)) * time.Microsecond
	t.Delivered = u32(192)
	t.DeliveredCE = u32(196)
	t.BytesSent = u64(200)
	t.BytesRetrans = u64(208)
	t.DSACKDups = u32(216)
	t.ReordSeen = u32(220)
	t.RcvOOOPack = u32(224)
	t.SndWnd = u32(228)
	t.RcvWnd = u32(232)
	t.Rehash = u32(236)
	t.TotalRTO = ne.Uint16(d[240:])
	t.TotalRTORecoveries = ne.Uint16(d[242:])
	t.TotalRTOTime = ms(244)
	return t
}
