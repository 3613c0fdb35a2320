// Package lab runs TCP scenarios and judges them.
//
// A Scenario says what a real server and a real client do on kernel
// sockets (its Server and Client get an Env: where to listen and connect,
// the run's options, ways to report progress and events) and which
// segments must appear on the wire, as expect.Steps. Run starts each
// scenario in a private network namespace (package lab/netns) by
// re-executing the current binary; inside, the child captures lo with
// package capture/live while the peers talk, annotating each frame as it
// comes with one capture.Annotator, so that the end of the conversation is
// known as soon as the segments match. It then judges the packets with
// expect.Match and writes the artifacts with package report. The parent
// collects the Results.
//
// Main gives a program of your own the commands of tcplab (list, run,
// check) over your scenarios; package labtest runs a scenario inside go
// test.
//
// A scenario whose Topology is Scripted or ScriptedServer has one side
// played by a script (package lab/scripted) from an address behind a TUN
// device in its namespace, the other by the kernel; the lab captures that
// device instead of lo, and marks each frame the script sent (needs
// root).
//
// The packages are layered in the order data flows, and none imports one
// above it (TestLayers holds this):
//
//	capture        decode, annotate, read and write pcap/pcapng (pure Go)
//	internal/safefile  files made in a folder without following planted symlinks
//	capture/live   libpcap capture (the only cgo)
//	lab/expect     expected steps and the matcher (pure Go)
//	lab/netns      namespaces: the run's own, other hosts beside it, LANs between them, TUN devices
//	lab/report     walkthrough, ladder, index, result.json, commented pcapng (pure Go)
//	lab/impair     nftables drops
//	lab/path       a path's delay, loss and rate: netem/tbf, or a TUN delay line
//	lab/sockstat   the kernel's view of each TCP socket (netlink INET_DIAG, tcp_info)
//	lab/ktrace     the kernel's own account of each segment (eBPF tracepoints)
//	lab/scripted   a scripted peer: raw segments to and from a real kernel, behind a TUN device
//	lab            Scenario, Env, Run, Main
//	lab/peer, lab/labtest   the blog post's peers; Run inside go test
//	scenarios      tcplab's own scenarios
//	cmd/tcplab     flags
package lab
