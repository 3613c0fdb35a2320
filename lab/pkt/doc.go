// Package pkt reads and runs packetdrill scripts (.pkt files) against the
// real kernel, with package scripted playing the remote side.
//
// Data flows one way: [Parse] turns a script's text into a typed [Script]
// (header options, then timed events: packets each way, system calls with
// their arguments and expected results, backtick shell commands and
// %{ python }% blocks), with errors that name the file and line. [Run]
// then plays the events in order inside one network namespace: the real
// side's system calls are made in Go on kernel sockets, numbered as
// packetdrill numbers file descriptors (3, 4, ...); inbound packets are
// sent and outbound ones expected through a scripted.Peer, with
// packetdrill's timing rule; each event's line goes with its frame into
// the peer's pcapng. What the language has and this runner does not do is
// reported as skipped, with the line and the reason, never as passed.
package pkt
