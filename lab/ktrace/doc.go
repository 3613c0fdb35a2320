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
// counted (Tracer.Lost), like a capture's drops. A goroutine decodes the
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
// Tracing needs root (CAP_BPF and CAP_PERFMON) in the initial user
// namespace and a kernel with BTF; Open says in one line what is missing,
// with an error that wraps ErrUnsupported. Attach ties events to a
// capture's frames by tuple and sequence number.
package ktrace
