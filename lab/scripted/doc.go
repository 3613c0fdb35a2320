// Package scripted puts a scripted peer in front of a real kernel: one side
// of a TCP conversation speaks raw segments that a test describes, so the
// other side's kernel can be made to face what a well-behaved peer never
// sends (a RST inside the window, a SYN on an established connection, data
// after a FIN, a window that stays shut), while that other side stays real:
// Go code calling listen, accept, connect, read, write and close on kernel
// sockets, in the same test.
//
// A [Peer] is an address that belongs to no host. [Open] creates a TUN
// device in a network namespace (by default the caller's, which a test or a
// scenario makes private), gives the device the kernel's address with a
// prefix that covers the peer's, and reads every frame the kernel routes
// there. Nothing owns the peer's address, so nothing but the script ever
// answers for it, as with packetdrill. Data flows one way per direction:
// [Conn.Send] turns a [TCP] template into one IPv4 frame (capture.Serialize)
// written to the device; the frames the kernel sends out of the device are
// read from a packet socket on it, with the kernel's own timestamps (so a
// reader that waited for a CPU does not make the kernel look late),
// decoded (capture.Decoder) and queued, and [Conn.Expect], [Conn.ExpectAt]
// and [Conn.ExpectNone] take them in order and compare each with a
// template. At each deadline the script waits for the reader to catch up
// with what the kernel sent, rather than sleeping.
//
// A template names only what matters: on send, a field left unset takes
// the connection's value (the next sequence number, the acknowledgement of
// everything received, a default window); on expect it is not checked.
// Sequence and acknowledgement numbers are relative to each side's initial
// sequence number. The connection's state (the next sequence number each
// way) is kept apart from the templates and moves only for frames really
// sent or matched. The first frame of the connection that does not match
// fails the step, with a table of only the fields that differ and every
// frame seen while waiting.
//
// Times are checked as packetdrill checks them: a segment expected d after
// the previous event must come within the larger of an absolute bound and a
// share of d ([Tolerance]); each expectation's time is anchored to when the
// script acted, not to when the previous segment happened to come, so that
// errors do not add up.
//
// Calls take the test's [TB] (a *testing.T) and never keep it. With
// [Config.Pcap] set, every frame goes to a pcapng file, commented
// "scripted: step N: ..." or "expected: step N: ...", which Wireshark and
// package capture read.
package scripted
