// Package sockstat reads the kernel's view of TCP sockets, as `ss -ti`
// shows it: each socket's state, addresses, queues and struct tcp_info
// (congestion window, slow-start threshold, smoothed RTT, RTO, unacked
// and retransmitted segments, byte counters) and its congestion control
// algorithm.
//
// A [Sampler] owns one NETLINK_SOCK_DIAG socket, opened in the network
// namespace it was made for ([Config.NetNS], or the calling thread's): a
// netlink socket stays in the namespace it was created in, so after
// [New] the Sampler can be used from any goroutine, and a runner can
// sample a scenario's namespace without moving its own threads. Each
// [Sampler.Sample] asks the kernel for the sockets a [Filter] selects, with
// INET_DIAG_INFO and INET_DIAG_CONG, in one of two ways. For connections
// named by their addresses ([Filter.Tuples]) it sends one
// SOCK_DIAG_BY_FAMILY lookup per end, all in one write, and the kernel
// finds each in its hash table as it would for an arriving packet: about
// 10 µs for a connection, cheap enough to call for each captured segment.
// Otherwise it sends a dump request per address family (AF_INET, then
// AF_INET6, where dual-stack sockets live) with the Filter's state mask
// and a bytecode filter on ports, so that the kernel copies only the
// sockets asked for; but the kernel walks its whole table of connections
// to find them, milliseconds on a large machine. The answers are decoded
// into [Socket]s (addresses of dual-stack sockets unmapped), checked
// against the Filter once more, and returned. Data flows one way: kernel
// -> Sampler -> []Socket; the package keeps nothing between samples, so a
// runner can call Sample whenever it sees a segment rather than on a
// timer.
//
// struct tcp_info grew over kernel versions. [DecodeTCPInfo] decodes as
// many fields as the kernel sent and leaves the later ones zero;
// [TCPInfo.Len] says how many bytes there were.
//
// [Diff] compares two samples of one socket and [Changes.Text] writes the
// difference for a walkthrough ("cwnd 10 -> 20, srtt 0.05 ms") in English
// or Chinese. A Socket marshals to JSON with the names ss users know
// (state, cwnd, ssthresh, rtt_ms, rto_ms, send_q, recv_q, accept_q,
// backlog, ...) for result.json.
//
// Why not github.com/vishvananda/netlink's SocketDiagTCPInfo, which the
// module already uses for links and qdiscs: it cannot ask for
// INET_DIAG_CONG, takes neither a state mask nor a bytecode filter nor
// the address of one socket (so every Sample would be a dump of every
// socket of the namespace, decoded), and allocates per socket. The request is small enough to write with
// golang.org/x/sys/unix; the layouts are those of linux/inet_diag.h and
// linux/tcp.h.
package sockstat
