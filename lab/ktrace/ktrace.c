//go:build ignore

/* ktrace.c: the kernel's own account of the lab's TCP connections.
 *
 * BTF-enabled tracepoints (tp_btf) on socket state changes, retransmissions,
 * congestion state changes, resets and dropped packets write one struct
 * event each into a ring buffer, for sockets and packets of the network
 * namespaces named in netns_inums only. gen.go compiles this file with
 * bpf2go; the objects it makes are committed. */

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define MAX_NETNS 16
#define RINGBUF_SIZE (1 << 20)

/* The kinds of event; event.go names them (type Kind). */
enum kind {
	KIND_STATE = 1,
	KIND_RETRANSMIT = 2,
	KIND_RETRANSMIT_SYNACK = 3,
	KIND_CONG_STATE = 4,
	KIND_SEND_RESET = 5,
	KIND_RECEIVE_RESET = 6,
	KIND_DROP = 7,
};

/* Flags of struct event. */
#define EV_HAVE_SEQ 1   /* seq, end_seq and tcp_flags are known */
#define EV_HAVE_SOCK 2  /* ca_state and pending are the socket's */

/* event is one record in the ring buffer. Go decodes it by the offsets
 * that bpf2go's ktraceEvent shows (TestEventLayout holds them). */
struct event {
	__u64 boot_ns;  /* bpf_ktime_get_boot_ns */
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;    /* host order */
	__u16 dport;
	__u16 family;   /* AF_INET, AF_INET6 */
	__u8 kind;      /* enum kind */
	__u8 flags;     /* EV_* */
	__u8 old_state; /* KIND_STATE: the state left; resets: the socket's state */
	__u8 new_state; /* KIND_STATE: the state entered; KIND_RETRANSMIT: the
	                 * socket's state; KIND_CONG_STATE: the ca_state entered */
	__u8 ca_state;  /* icsk_ca_state */
	__u8 pending;   /* icsk_pending */
	__u16 tcp_flags;
	__u16 payload;  /* payload bytes of a packet read from its headers */
	__u32 seq;
	__u32 end_seq;
	__u32 reason;   /* skb_drop_reason or sk_rst_reason, as the kernel numbers it */
	__u32 netns;    /* inode of the namespace */
	__u64 cookie;   /* the socket's cookie, as sock_diag reports it; 0 if none */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_SIZE);
} events SEC(".maps");

/* Set by the loader before the program loads. */
volatile const __u32 netns_inums[MAX_NETNS];
volatile const __u32 netns_count;

/* A global of its type puts struct event in the BTF, for bpf2go -type. */
const struct event *unused_event __attribute__((unused));

/* lost counts events that found the ring buffer full. */
__u64 lost;

/* traced: the namespace is one of those to report. netns_count is a
 * constant, so the verifier sees the loop's true bound. */
static __always_inline bool traced(__u32 inum)
{
	if (inum == 0)
		return false;
	for (int i = 0; i < MAX_NETNS; i++) {
		if (i >= netns_count)
			return false;
		if (netns_inums[i] == inum)
			return true;
	}
	return false;
}

/* sk_netns is the inode of the socket's network namespace. */
static __always_inline __u32 sk_netns(const struct sock *sk)
{
	if (!sk)
		return 0;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* submit hands the event to user space. Waking the reader for each event
 * would cost more than all the rest (an irq_work and a context switch):
 * the reader wakes by itself every few milliseconds, and is woken only
 * when a quarter of the ring buffer waits for it. */
static __always_inline void submit(struct event *e)
{
	long flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= RINGBUF_SIZE / 4)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* reserve takes a zeroed event from the ring buffer, or counts it lost. */
static __always_inline struct event *reserve(__u8 kind, __u32 inum)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->boot_ns = bpf_ktime_get_boot_ns();
	e->kind = kind;
	e->netns = inum;
	return e;
}

/* skc_is_inet: the socket is a full inet socket (not a request sock),
 * so that reading struct inet_sock past sock_common is safe. */
static __always_inline bool skc_is_inet(const struct sock_common *skc)
{
	unsigned char state = BPF_CORE_READ(skc, skc_state);
	return state != 12 /* TCP_NEW_SYN_RECV */ && state != 6 /* TCP_TIME_WAIT */;
}

/* fill_tuple copies the socket's addresses and ports: source is this end. */
static __always_inline void fill_tuple(struct event *e, const struct sock_common *skc)
{
	__u16 family = BPF_CORE_READ(skc, skc_family);
	e->family = family;
	e->sport = BPF_CORE_READ(skc, skc_num);
	/* A closing socket gives its port back (skc_num goes to 0) before
	 * its last state change; inet_sport keeps it. */
	if (e->sport == 0 && skc_is_inet(skc))
		e->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)skc, inet_sport));
	e->dport = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->saddr, skc, skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, skc, skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__be32 *)e->saddr, skc, skc_rcv_saddr);
		BPF_CORE_READ_INTO((__be32 *)e->daddr, skc, skc_daddr);
	}
}

static __always_inline void fill_icsk(struct event *e, const struct sock *sk)
{
	const struct inet_connection_sock *icsk = (const void *)sk;
	e->ca_state = BPF_CORE_READ_BITFIELD_PROBED(icsk, icsk_ca_state);
	e->pending = BPF_CORE_READ(icsk, icsk_pending);
	e->flags |= EV_HAVE_SOCK;
}

/* fill_cb reads the segment's sequence numbers from the skb's control
 * buffer, TCP_SKB_CB(skb): a segment in the write queue has no TCP header
 * yet. */
static __always_inline void fill_cb(struct event *e, const struct sk_buff *skb)
{
	const struct tcp_skb_cb *cb = (const void *)__builtin_preserve_access_index(&skb->cb);
	e->seq = BPF_CORE_READ(cb, seq);
	e->end_seq = BPF_CORE_READ(cb, end_seq);
	e->tcp_flags = BPF_CORE_READ(cb, tcp_flags);
	e->flags |= EV_HAVE_SEQ;
}

/* fill_headers reads the tuple and sequence numbers from the packet's own
 * IP and TCP headers, as it came in (source is the sender). It returns
 * false when the packet is not TCP over IPv4 or IPv6. */
static __always_inline bool fill_headers(struct event *e, const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	if (proto == ETH_P_IP) {
		struct iphdr_wire ip;
		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return false;
		if ((ip.ver_ihl >> 4) != 4 || ip.protocol != IPPROTO_TCP)
			return false;
		e->family = AF_INET;
		e->payload = bpf_ntohs(ip.tot_len) - (ip.ver_ihl & 0xf) * 4;
		__builtin_memcpy(e->saddr, &ip.saddr, 4);
		__builtin_memcpy(e->daddr, &ip.daddr, 4);
		/* Before the IP layer sets it, the transport header may be
		 * unset (~0) or equal to the network header. */
		if (th == (__u16)~0 || th <= nh)
			th = nh + (ip.ver_ihl & 0xf) * 4;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr_wire ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return false;
		if (ip6.nexthdr != IPPROTO_TCP)
			return false;
		e->family = AF_INET6;
		e->payload = bpf_ntohs(ip6.payload_len);
		__builtin_memcpy(e->saddr, ip6.saddr, 16);
		__builtin_memcpy(e->daddr, ip6.daddr, 16);
		if (th == (__u16)~0 || th <= nh)
			th = nh + sizeof(ip6);
	} else {
		return false;
	}
	struct tcphdr_wire tcp;
	if (bpf_probe_read_kernel(&tcp, sizeof(tcp), head + th))
		return true;
	e->sport = bpf_ntohs(tcp.source);
	e->dport = bpf_ntohs(tcp.dest);
	e->seq = bpf_ntohl(tcp.seq);
	e->end_seq = bpf_ntohl(tcp.ack_seq); /* the ACK number, for a packet */
	e->tcp_flags = tcp.flags;
	e->payload -= (tcp.doff_res >> 4) * 4;
	e->flags |= EV_HAVE_SEQ;
	return true;
}

/* skb_netns is the namespace of a packet: its socket's, else its device's. */
static __always_inline __u32 skb_netns(const struct sk_buff *skb)
{
	const struct sock *sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return sk_netns(sk);
	const struct net_device *dev = BPF_CORE_READ(skb, dev);
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, const struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u32 inum = sk_netns(sk);
	if (!traced(inum))
		return 0;
	struct event *e = reserve(KIND_STATE, inum);
	if (!e)
		return 0;
	fill_tuple(e, &sk->__sk_common);
	e->cookie = bpf_get_socket_cookie((void *)sk);
	e->old_state = oldstate;
	e->new_state = newstate;
	submit(e);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	__u32 inum = sk_netns(sk);
	if (!traced(inum))
		return 0;
	struct event *e = reserve(KIND_RETRANSMIT, inum);
	if (!e)
		return 0;
	fill_tuple(e, &sk->__sk_common);
	e->cookie = bpf_get_socket_cookie((void *)sk);
	e->new_state = BPF_CORE_READ(sk, __sk_common.skc_state);
	fill_icsk(e, sk);
	fill_cb(e, skb);
	submit(e);
	return 0;
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(tcp_retransmit_synack, const struct sock *sk, const struct request_sock *req)
{
	__u32 inum = sk_netns(sk);
	if (!traced(inum))
		return 0;
	struct event *e = reserve(KIND_RETRANSMIT_SYNACK, inum);
	if (!e)
		return 0;
	fill_tuple(e, &req->__req_common);
	/* A request sock's skc_num is the listener's port too. */
	e->seq = BPF_CORE_READ((const struct tcp_request_sock *)req, snt_isn);
	e->end_seq = e->seq + 1;
	e->tcp_flags = 0x12; /* SYN|ACK */
	e->flags |= EV_HAVE_SEQ;
	submit(e);
	return 0;
}

SEC("tp_btf/tcp_cong_state_set")
int BPF_PROG(tcp_cong_state_set, const struct sock *sk, const __u8 ca_state)
{
	__u32 inum = sk_netns(sk);
	if (!traced(inum))
		return 0;
	struct event *e = reserve(KIND_CONG_STATE, inum);
	if (!e)
		return 0;
	fill_tuple(e, &sk->__sk_common);
	e->cookie = bpf_get_socket_cookie((void *)sk);
	fill_icsk(e, sk); /* ca_state: the state it leaves */
	e->new_state = ca_state;
	submit(e);
	return 0;
}

/* NO_REASON: the kernel gives no reset reason (before Linux 6.10). */
#define NO_REASON 0xffffffff

static __always_inline void send_reset(const struct sock *sk, const struct sk_buff *skb, __u32 reason)
{
	__u32 inum = sk ? sk_netns(sk) : (skb ? skb_netns(skb) : 0);
	if (!traced(inum))
		return;
	struct event *e = reserve(KIND_SEND_RESET, inum);
	if (!e)
		return;
	e->reason = reason;
	if (sk) {
		fill_tuple(e, &sk->__sk_common);
		e->cookie = bpf_get_socket_cookie((void *)sk);
		e->old_state = BPF_CORE_READ(sk, __sk_common.skc_state);
	}
	if (skb) {
		/* The segment that drew the reset: Go turns its tuple
		 * round and works out the reset's sequence number. */
		struct event in = {};
		if (fill_headers(&in, skb)) {
			e->family = in.family;
			__builtin_memcpy(e->saddr, in.daddr, 16);
			__builtin_memcpy(e->daddr, in.saddr, 16);
			e->sport = in.dport;
			e->dport = in.sport;
			e->seq = in.seq;
			e->end_seq = in.end_seq;
			e->tcp_flags = in.tcp_flags;
			e->payload = in.payload;
			e->flags |= in.flags;
		}
	}
	submit(e);
}

/* The loader keeps the one of these two that fits the running kernel's
 * tracepoint: with the reset's reason (Linux 6.10 on), or without. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset, const struct sock *sk, const struct sk_buff *skb, enum sk_rst_reason reason)
{
	send_reset(sk, skb, reason);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset_noreason, const struct sock *sk, const struct sk_buff *skb)
{
	send_reset(sk, skb, NO_REASON);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset, const struct sock *sk)
{
	__u32 inum = sk_netns(sk);
	if (!traced(inum))
		return 0;
	struct event *e = reserve(KIND_RECEIVE_RESET, inum);
	if (!e)
		return 0;
	fill_tuple(e, &sk->__sk_common);
	e->cookie = bpf_get_socket_cookie((void *)sk);
	e->old_state = BPF_CORE_READ(sk, __sk_common.skc_state);
	submit(e);
	return 0;
}

/* drop reports a dropped packet of a traced namespace. Its namespace is
 * the packet's (its socket's or device's); TCP clears the device of a
 * packet it takes in (tcp_v4_rcv), so a packet that an established socket
 * drops (a full receive buffer, a segment outside its window) has neither
 * and is told by the socket that received it, rx_sk, where the kernel
 * names one (Linux 6.12 on). */
static __always_inline void drop(const struct sk_buff *skb, enum skb_drop_reason reason, const struct sock *rx_sk)
{
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return;
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return;
	__u32 inum = skb_netns(skb);
	if (!inum && rx_sk)
		inum = sk_netns(rx_sk);
	if (!traced(inum))
		return;
	struct event in = {};
	if (!fill_headers(&in, skb))
		return;
	struct event *e = reserve(KIND_DROP, inum);
	if (!e)
		return;
	e->family = in.family;
	__builtin_memcpy(e->saddr, in.saddr, 16);
	__builtin_memcpy(e->daddr, in.daddr, 16);
	e->sport = in.sport;
	e->dport = in.dport;
	e->seq = in.seq;
	e->end_seq = in.end_seq;
	e->tcp_flags = in.tcp_flags;
	e->payload = in.payload;
	e->flags |= in.flags;
	e->reason = reason;
	submit(e);
}

/* The loader keeps the one of these two that fits the running kernel's
 * tracepoint: with the receiving socket (Linux 6.12 on), or without. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb_rx_sk, const struct sk_buff *skb, void *location, enum skb_drop_reason reason, const struct sock *rx_sk)
{
	drop(skb, reason, rx_sk);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb, const struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	drop(skb, reason, 0);
	return 0;
}
