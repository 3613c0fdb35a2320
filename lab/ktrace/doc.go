// Package ktrace is the kernel's own account of the lab's TCP connections:
// every socket state change, retransmission (and why), congestion state
// change, reset sent or received (and why) and dropped packet (and why),
// told by the kernel's tracepoints as they happen.
//
// Open loads the BPF programs of ktrace.c (compiled by bpf2go; the object
// is committed, so building needs no clang) on BTF-enabled tracepoints:
// sock:inet_sock_set_state, tcp:tcp_retransmit_skb,
// tcp:tcp_retransmit_synack, tcp:tcp_cong_state_set, tcp:tcp_send_reset,
// tcp:tcp_receive_reset and skb:kfree_skb. Each program reads the socket
// with CO-RE, keeps only sockets and packets of the network namespaces the
// Config names (by the namespace's inode, a constant of the program, so
// the lab never sees the host's traffic) and writes one record into a
// ring buffer, ordered across CPUs; a record that finds the buffer full is
// counted (Tracer.Lost), like a capture's drops; a tracepoint whose
// programs the kernel skips because BPF is busy on the CPU is counted by
// a sentinel program on it (Tracer.Blackouts). A goroutine decodes the
// records into Events on the Tracer's channel, their boot-clock times
// turned into wall-clock time by one offset measured at Open. Drop and
// reset reasons are named from the running kernel's BTF (enum
// skb_drop_reason, enum sk_rst_reason), whose numbers change between
// kernels.
//
// What the kernel reports is what it does, which is not always RFC 9293's
// diagram: a socket that enters TIME_WAIT is replaced by a timewait
// socket without a tracepoint, so its last state change reads FIN_WAIT_2
// -> CLOSED (or CLOSING -> CLOSED); a socket's first change, CLOSED ->
// SYN_SENT, comes before it has a local port.
//
// With Config.Follow, a Tracer also follows the first segments the traced
// sockets send (SYNs, FINs, data, the handshake's ACK) through the kernel,
// step by step (Path events, path.go), as pwru follows a packet: the
// application's write (tcp:tcp_sendmsg_locked), TCP's build of the segment
// (the departure time it stamps on the sk_buff, skb->tstamp, read at IP's
// hook), IP's output and input (netfilter hooks, attached in each
// namespace of Config.Hosts), the device's queue and driver
// (net:net_dev_queue, net:net_dev_start_xmit), the receiving CPU's backlog
// and softirq (net:netif_rx, net:netif_receive_skb), TCP's input on an
// established socket (tcp:tcp_probe), the receive buffer and a listener's
// accept queue (sock:sk_data_ready) and the application's read
// (sock:sock_recv_length). A segment is followed by its sk_buff's address
// from IP on, checked against its sequence number at each step; through a
// TUN device, where another sk_buff takes it in, it is found again by its
// headers. Config.Follow bounds the segments followed; a quarter second
// after the last is taken, the path's programs are detached, so a bulk
// transfer's later segments cost nothing. fentry and kprobes would reach
// further, but kernels refuse them more often (the kernel this was built
// on refuses fentry and has no kprobes): tracepoints and netfilter hooks
// are what a BTF kernel lets a tracer use.
//
// Tracing needs root (CAP_BPF and CAP_PERFMON) in the initial user
// namespace and a kernel with BTF; Open says in one line what is missing,
// with an error that wraps ErrUnsupported. Attach ties events to a
// capture's frames by tuple and sequence number.
package ktrace
