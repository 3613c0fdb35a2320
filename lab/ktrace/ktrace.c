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
	KIND_PATH = 8,
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
	/* KIND_PATH only: */
	__u64 skb;      /* the sk_buff's address: one transmission's steps share it */
	__u32 qlen;     /* the length of the queue the step puts it in, before it */
	__u8 probe;     /* which probe (path.go's probes, by index) */
	__u8 pad[3];
	char name[16];  /* the device or queue discipline */
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

/* lost counts events that found the ring buffer full; submitted, those
 * handed to user space, which compares it with the records it read, so
 * that an event lost between the two is counted too. */
__u64 lost;
__u64 submitted;

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
	__sync_fetch_and_add(&submitted, 1);
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

/* A retransmission, sent (err 0) or only attempted: since Linux 6.13 the
 * tracepoint also runs for an attempt that sent nothing (-EBUSY: the
 * original copy is still in a queue of this host), with its error in
 * reason. */
static __always_inline int retransmit(const struct sock *sk, const struct sk_buff *skb, int err)
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
	e->reason = (__u32)err;
	submit(e);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb_err, const struct sock *sk, const struct sk_buff *skb, int err)
{
	return retransmit(sk, skb, err);
}

/* Before Linux 6.13 the tracepoint runs only for a segment sent. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	return retransmit(sk, skb, 0);
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

/* The path of chosen segments through the kernel (KIND_PATH), as pwru
 * follows a packet, from what this kernel lets a tracer see: BTF-enabled
 * tracepoints on the steps that have one, and netfilter hooks (attached
 * in each traced namespace by the loader) for IP's. A segment is followed
 * by its sk_buff's address from IP's output hook on, where TCP's clone
 * goes down; socket-level steps (the application's calls, the receive
 * buffer, the accept queue) are told by the socket and a sequence number
 * instead. At most follow_max segments are followed per Tracer (0: none,
 * and the loader attaches none of these). */

#define TCPHDR_FIN 0x01
#define TCPHDR_SYN 0x02
#define TCPHDR_ACK 0x10
#define MSG_PEEK 2
#define NF_ACCEPT 1
#define TCP_ESTABLISHED 1
#define TCP_LISTEN 10

/* The probes, numbered as path.go's probes. */
enum probe {
	P_SENDMSG = 0,   /* tp tcp_sendmsg_locked */
	P_TCP_STAMP,     /* the segment's own time stamp, read at P_LOCAL_OUT */
	P_LOCAL_OUT,     /* netfilter NF_INET_LOCAL_OUT */
	P_DEV_QUEUE,     /* tp net_dev_queue */
	P_START_XMIT,    /* tp net_dev_start_xmit */
	P_NETIF_RX,      /* tp netif_rx */
	P_RECEIVE_SKB,   /* tp netif_receive_skb */
	P_PRE_ROUTING,   /* netfilter NF_INET_PRE_ROUTING */
	P_TCP_PROBE,     /* tp tcp_probe */
	P_DATA_READY,    /* tp sk_data_ready, of a connection */
	P_LISTEN_READY,  /* tp sk_data_ready, of a listener */
	P_RECV_LENGTH,   /* tp sock_recv_length */
};

volatile const __u32 follow_max;
/* follow_count counts the segments followed; app_count the socket-level
 * steps told. Each stops at follow_max. pending counts the segments
 * followed that no receiver has taken in yet (a hint: it may drift). */
__u32 follow_count;
__u32 app_count;
__s32 pending_count;

/* followed holds the sk_buffs being followed, by address, with the
 * sequence number of the segment each holds: a freed sk_buff whose
 * address comes back for another segment is not that segment. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} followed SEC(".maps");

/* seg_key names a segment by its tuple, sequence number and flags: what
 * a receiver that gets a new sk_buff for it (through a TUN device and a
 * delay line) finds it by. */
struct seg_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 seq;
	__u16 flags;
	__u16 family;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct seg_key);
	__type(value, __u8);
} unreceived SEC(".maps");

static __always_inline void key_of(struct seg_key *k, const struct event *e)
{
	__builtin_memcpy(k->saddr, e->saddr, 16);
	__builtin_memcpy(k->daddr, e->daddr, 16);
	k->sport = e->sport;
	k->dport = e->dport;
	k->seq = e->seq;
	k->flags = e->tcp_flags & (TCPHDR_SYN | TCPHDR_FIN | TCPHDR_ACK);
	k->family = e->family;
}

static __always_inline struct event *path_event(__u8 probe, __u32 inum)
{
	struct event *e = reserve(KIND_PATH, inum);
	if (e)
		e->probe = probe;
	return e;
}

/* app_step reserves a socket-level step of a traced TCP socket, or
 * nothing once follow_max of them were told. */
static __always_inline struct event *app_step(__u8 probe, const struct sock *sk)
{
	if (app_count >= follow_max)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u32 inum = sk_netns(sk);
	if (!traced(inum))
		return 0;
	__sync_fetch_and_add(&app_count, 1);
	return path_event(probe, inum);
}

/* reverse turns an event's tuple round: a receiver's socket tells the
 * segment's receiver first, but every path event names the segment's
 * sender as its source. */
static __always_inline void reverse(struct event *e)
{
	__u8 a[16];
	__builtin_memcpy(a, e->saddr, 16);
	__builtin_memcpy(e->saddr, e->daddr, 16);
	__builtin_memcpy(e->daddr, a, 16);
	__u16 p = e->sport;
	e->sport = e->dport;
	e->dport = p;
}

/* follow_last_ns is when the last segment was taken to be followed. A
 * followed segment crosses the stack in microseconds (milliseconds on a
 * busy machine): past FOLLOW_WINDOW after the last, no sk_buff is looked
 * up at all, and the steps' programs cost a clock read. */
__u64 follow_last_ns;
#define FOLLOW_WINDOW (100 * 1000000ULL)

static __always_inline bool following(void)
{
	return bpf_ktime_get_ns() - follow_last_ns < FOLLOW_WINDOW;
}

/* skb_step tells a step of a followed sk_buff, with its headers; sk is
 * the socket that has it, where the sk_buff no longer says its
 * namespace (TCP clears its device). A freed sk_buff whose address came
 * back for another segment is forgotten. */
static __always_inline struct event *skb_step_sk(__u8 probe, const struct sk_buff *skb, const struct sock *sk)
{
	if (!following())
		return 0;
	__u64 key = (__u64)skb;
	__u32 *seq = bpf_map_lookup_elem(&followed, &key);
	if (!seq)
		return 0;
	struct event in = {};
	if (!fill_headers(&in, skb) || in.seq != *seq) {
		bpf_map_delete_elem(&followed, &key);
		return 0;
	}
	__u32 inum = sk ? sk_netns(sk) : skb_netns(skb);
	if (!traced(inum))
		return 0;
	struct event *e = path_event(probe, inum);
	if (!e)
		return 0;
	__builtin_memcpy(e, &in, sizeof(in));
	e->boot_ns = bpf_ktime_get_boot_ns();
	e->kind = KIND_PATH;
	e->probe = probe;
	e->netns = inum;
	e->skb = key;
	return e;
}

static __always_inline struct event *skb_step(__u8 probe, const struct sk_buff *skb)
{
	return skb_step_sk(probe, skb, 0);
}

static __always_inline void skb_step_dev(__u8 probe, const struct sk_buff *skb, const struct net_device *dev)
{
	struct event *e = skb_step(probe, skb);
	if (!e)
		return;
	if (dev)
		BPF_CORE_READ_STR_INTO(&e->name, dev, name);
	submit(e);
}

/* wanted: a segment worth following: a SYN, a FIN, data, or the
 * handshake's ACK (a pure ACK of an established socket that has sent and
 * taken in no data yet). */
static __always_inline bool wanted(const struct sk_buff *skb, __u8 flags, __u32 payload)
{
	if (flags & (TCPHDR_SYN | TCPHDR_FIN) || payload > 0)
		return true;
	const struct sock *sk = BPF_CORE_READ(skb, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_ESTABLISHED)
		return false;
	const struct tcp_sock *tp = (const void *)sk;
	return BPF_CORE_READ(tp, data_segs_out) == 0 && BPF_CORE_READ(tp, bytes_received) == 0;
}

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(path_sendmsg, const struct sock *sk, const struct msghdr *msg, const struct sk_buff *skb, int size_goal)
{
	struct event *e = app_step(P_SENDMSG, sk);
	if (!e)
		return 0;
	fill_tuple(e, &sk->__sk_common);
	e->cookie = bpf_get_socket_cookie((void *)sk);
	e->seq = BPF_CORE_READ((const struct tcp_sock *)sk, write_seq);
	e->qlen = BPF_CORE_READ(sk, sk_wmem_queued);
	__builtin_memcpy(e->name, "send buffer", 12);
	e->flags |= EV_HAVE_SEQ;
	submit(e);
	return 0;
}

/* local_out follows a segment IP sends out, if it is wanted and the
 * budget allows: IP's step, and before it TCP's, at the time TCP stamped
 * the segment with as it built it (skb->tstamp: its departure time, on
 * the monotonic clock, which is now or a moment ago unless the socket is
 * paced). */
static __always_inline void local_out(const struct sk_buff *skb)
{
	if (follow_count >= follow_max)
		return;
	__u64 key = (__u64)skb;
	__u32 inum = skb_netns(skb);
	if (!traced(inum))
		return;
	struct event in = {};
	if (!fill_headers(&in, skb))
		return;
	if (!wanted(skb, in.tcp_flags, in.payload))
		return;
	__sync_fetch_and_add(&follow_count, 1);
	follow_last_ns = bpf_ktime_get_ns();
	__u8 one = 1;
	bpf_map_update_elem(&followed, &key, &in.seq, BPF_ANY);
	struct seg_key k = {};
	key_of(&k, &in);
	if (!bpf_map_update_elem(&unreceived, &k, &one, BPF_ANY))
		__sync_fetch_and_add(&pending_count, 1);

	__u64 mono = bpf_ktime_get_ns(), boot = bpf_ktime_get_boot_ns();
	__u64 stamp = BPF_CORE_READ(skb, tstamp);
	if (stamp && stamp <= mono && mono - stamp < 1000000000ULL) {
		struct event *t = path_event(P_TCP_STAMP, inum);
		if (t) {
			__builtin_memcpy(t, &in, sizeof(in));
			t->boot_ns = stamp + (boot - mono);
			t->kind = KIND_PATH;
			t->probe = P_TCP_STAMP;
			t->netns = inum;
			t->skb = key;
			submit(t);
		}
	}
	struct event *e = path_event(P_LOCAL_OUT, inum);
	if (!e)
		return;
	__builtin_memcpy(e, &in, sizeof(in));
	e->boot_ns = boot;
	e->kind = KIND_PATH;
	e->probe = P_LOCAL_OUT;
	e->netns = inum;
	e->skb = key;
	submit(e);
}

SEC("netfilter")
int path_local_out(struct bpf_nf_ctx *ctx)
{
	local_out(ctx->skb);
	return NF_ACCEPT;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(path_dev_queue, struct sk_buff *skb)
{
	struct event *e = skb_step(P_DEV_QUEUE, skb);
	if (!e)
		return 0;
	const struct Qdisc *q = BPF_CORE_READ(skb, dev, qdisc);
	if (q) {
		BPF_CORE_READ_STR_INTO(&e->name, q, ops, id);
		e->qlen = BPF_CORE_READ(q, q.qlen);
	}
	submit(e);
	return 0;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(path_start_xmit, const struct sk_buff *skb, const struct net_device *dev)
{
	skb_step_dev(P_START_XMIT, skb, dev);
	return 0;
}

SEC("tp_btf/netif_rx")
int BPF_PROG(path_netif_rx, struct sk_buff *skb)
{
	skb_step_dev(P_NETIF_RX, skb, BPF_CORE_READ(skb, dev));
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(path_receive_skb, struct sk_buff *skb)
{
	skb_step_dev(P_RECEIVE_SKB, skb, BPF_CORE_READ(skb, dev));
	return 0;
}

/* pre_routing tells IP's step on the way in; a segment that comes in a
 * new sk_buff (through a TUN device) is found by its headers and followed
 * from here. */
/* A segment through a delay line (TUN devices, delays up to a minute)
 * is looked for by its headers that long after the last was followed,
 * while some are still to be received. */
#define PENDING_WINDOW (61 * 1000000000ULL)

static __always_inline void pre_routing(const struct sk_buff *skb)
{
	__u64 now = bpf_ktime_get_ns();
	bool recent = now - follow_last_ns < FOLLOW_WINDOW;
	if (!recent && (pending_count <= 0 || now - follow_last_ns > PENDING_WINDOW))
		return;
	__u64 key = (__u64)skb;
	if (!recent || !bpf_map_lookup_elem(&followed, &key)) {
		if (pending_count <= 0)
			return;
		struct event in = {};
		if (!fill_headers(&in, skb))
			return;
		struct seg_key k = {};
		key_of(&k, &in);
		if (!bpf_map_lookup_elem(&unreceived, &k))
			return;
		bpf_map_update_elem(&followed, &key, &in.seq, BPF_ANY);
		follow_last_ns = now;
	}
	struct event *e = skb_step(P_PRE_ROUTING, skb);
	if (!e)
		return;
	BPF_CORE_READ_STR_INTO(&e->name, skb, dev, name);
	struct seg_key k = {};
	key_of(&k, e);
	if (!bpf_map_delete_elem(&unreceived, &k))
		__sync_fetch_and_add(&pending_count, -1);
	submit(e);
}

SEC("netfilter")
int path_pre_routing(struct bpf_nf_ctx *ctx)
{
	pre_routing(ctx->skb);
	return NF_ACCEPT;
}

/* TCP takes the segment in on an established socket (tcp_rcv_established):
 * its sk_buff's path ends here, its data joins the receive buffer. */
SEC("tp_btf/tcp_probe")
int BPF_PROG(path_tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	struct event *e = skb_step_sk(P_TCP_PROBE, skb, sk);
	if (!e)
		return 0;
	__u64 key = (__u64)skb;
	bpf_map_delete_elem(&followed, &key);
	e->cookie = bpf_get_socket_cookie((void *)sk);
	submit(e);
	return 0;
}

/* sk_data_ready: a connection's data is in its receive buffer, up to
 * rcv_nxt (the reader is woken); a listener's accept queue has a new
 * connection. */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(path_data_ready, const struct sock *sk)
{
	bool listener = BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_LISTEN;
	struct event *e = app_step(listener ? P_LISTEN_READY : P_DATA_READY, sk);
	if (!e)
		return 0;
	fill_tuple(e, &sk->__sk_common);
	e->cookie = bpf_get_socket_cookie((void *)sk);
	if (listener) {
		e->qlen = BPF_CORE_READ(sk, sk_ack_backlog);
		__builtin_memcpy(e->name, "accept queue", 13);
	} else {
		reverse(e);
		e->seq = BPF_CORE_READ((const struct tcp_sock *)sk, rcv_nxt);
		e->qlen = BPF_CORE_READ(sk, sk_backlog.rmem_alloc.counter);
		__builtin_memcpy(e->name, "receive buffer", 15);
		e->flags |= EV_HAVE_SEQ;
	}
	submit(e);
	return 0;
}

/* The application's read returned ret bytes: the sequence numbers up to
 * copied_seq. */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(path_recv_length, struct sock *sk, int ret, int flags)
{
	if (ret <= 0 || flags & MSG_PEEK)
		return 0;
	struct event *e = app_step(P_RECV_LENGTH, sk);
	if (!e)
		return 0;
	fill_tuple(e, &sk->__sk_common);
	reverse(e);
	e->cookie = bpf_get_socket_cookie((void *)sk);
	e->seq = BPF_CORE_READ((const struct tcp_sock *)sk, copied_seq) - ret;
	e->reason = ret;
	e->flags |= EV_HAVE_SEQ;
	submit(e);
	return 0;
}
