// Package impair makes the kernel drop chosen TCP segments in the current
// network namespace, so that a scenario can show loss and its recovery on
// real sockets.
//
// A Rule says what a user asks for: which segments to a destination port to
// drop (the Nth segment that carries data, a share of them at random, the
// first SYN). Install turns the rules into an nftables table "tcplab"
// (family inet) with one chain on the input hook, written over netlink with
// github.com/google/nftables, and returns the running Installed, whose
// Stats read the rules' counters and whose Remove deletes the table.
//
// The drop happens on the receiver's input hook, after the capture point:
// on lo a packet is handed to packet sockets (libpcap) when it is
// transmitted, before IP input runs netfilter, so the capture still shows
// the segment the receiver never got. That is what a capture on a real
// network shows when a router downstream loses the packet.
//
// "The Nth" is counted in the kernel by an nftables numgen counter placed
// after the rule's match: expressions of a rule run in order and stop at the
// first that does not match, so the counter advances once per segment that
// matched, and the rule drops the segments whose count is in its set. No
// user-space process sits in the data path.
//
// The table lives in the network namespace of the calling process (all of
// its threads: tcplab runs scenarios in child processes started in their
// own namespace). Installing needs CAP_NET_ADMIN there, and Linux 6.2 or
// later for "carries data" (an nftables load from the inner header, @ih).
package impair
