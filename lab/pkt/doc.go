// Package pkt reads and runs packetdrill scripts (.pkt files) against the
// real kernel, with package scripted playing the remote side.
//
// Data flows one way: [Parse] turns a script's text into a typed [Script]
// (header options, then timed events: packets each way, system calls with
// their arguments and expected results, backtick shell commands and
// %{ python }% blocks), with errors that name the file and line. [Run]
// then plays the events in order inside a network namespace of its own:
// the real side's system calls are made in Go on kernel sockets, numbered
// as packetdrill numbers file descriptors (3, 4, ...), a call written
// with "..." on a goroutine of its own and checked at its end time;
// inbound packets are sent and outbound ones expected through a
// scripted.Peer with packetdrill's timing rule, under tcplab's floor for
// a busy machine; backtick commands run in the namespace and the
// script's folder; %{ }% blocks run by python3 at the end with the
// tcpi_* values of TCP_INFO read at their time. Each packet's frame goes
// to the peer's pcapng with its script line as the step number. When
// tcplab comes late to an event, the script's clock waits for it, so
// that the lab's own delay is never charged to the kernel. What the
// language has and Run does not play is found before anything runs and
// reported as skipped, with the line and the reason, never as passed.
// [Go] writes a script as a Go test on packages scripted and netns.
package pkt
