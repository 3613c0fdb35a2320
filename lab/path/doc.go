// Package path gives the link between a scenario's client and server the
// conditions of a real network path: delay, jitter, loss, reordering,
// duplication and a limited rate, per direction.
//
// A [Path] is what a user asks for: [Parse] reads the -path option
// ("delay=20ms,loss=1%,rate=10mbit", with c2s: and s2c: prefixes for one
// direction) and [Path.String] writes it back. Two mechanisms make it
// happen, and [Choose] picks one and names it ([Mechanism], for
// result.json):
//
//   - the kernel's qdiscs, through netlink: netem where the kernel has it
//     ([ApplyNetem]), or tbf for a path that only limits the rate
//     ([ApplyTBF]). [Probe] finds out which qdiscs the running kernel
//     offers by creating each on an interface and removing it again.
//   - a [Line]: a delay line in user space, for kernels without netem. It
//     is the wire between two network namespaces: a TUN device in the
//     client's namespace and one in the server's, each opened from a
//     thread that joined that namespace for the time of the open, so the
//     line itself can run in any namespace (the router's). Each packet the
//     client's kernel routes into its TUN is read by the line, delayed,
//     lost, reordered, duplicated or queued by the conditions of its
//     direction, and written into the server's TUN, where the server's
//     kernel receives it as if from a wire; the answers flow back the same
//     way.
//
// A Line's decisions come from a PCG generator per direction seeded from
// [LineConfig.Seed], drawn in a fixed order per packet, so the same seed
// and the same packet sequence give the same decisions (a run can be
// replayed with -seed). Its memory is bounded: each direction holds at
// most [LineConfig.Limit] packets in preallocated buffers, in one min-heap
// ordered by departure time served by one goroutine; packets beyond the
// limit are dropped and counted, as netem's limit does. That goroutine
// sleeps on a timerfd armed at the next departure, which wakes it within
// tens of microseconds, where a Go timer can be a millisecond late. The Line's model,
// per direction and packet: loss first; then serialisation at Rate behind
// the packets before it; then Delay ± Jitter, where jitter never lets a
// packet overtake the one before it (netem reorders with jitter unless it
// has a rate; tcplab's reordering comes only from Reorder, so that a
// capture's out-of-order segments have one cause); a reordered packet
// skips the delay and leaves as soon as it is serialised; a duplicate is
// a second copy that goes through the same steps but is never lost or
// duplicated again.
package path
