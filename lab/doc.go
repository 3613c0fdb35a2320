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
// Beside the capture runs a kernel source, chosen as the recording
// starts: the kernel's own events of the run's namespaces (lab/ktrace),
// where the process can trace them (root, BTF), or else samples of both
// ends' sockets after segments (lab/sockstat), and the run says once why.
// joinKernel ties the events to the frames (ktrace.Attach), on the
// capture's clock, in one place; the artifacts show them under each
// segment, and the run fails where the wire's analysis contradicts them.
// A step may require the kernel's account of its segment
// (expect.Step.Kernel): judgeSteps gives the judge the events by frame,
// or says why it cannot (a run that only sampled). The oracle command
// runs scenarios across seeded path conditions and tallies, label by
// label, the wire's analysis against those events.
//
// Check judges a capture file of any program (properties of each
// connection, a scenario's steps, or both). `check -- COMMAND` makes that
// capture itself: it re-executes the current binary in a namespace the
// same way, and the child opens the capture on lo, proves it runs with a
// probe datagram, runs COMMAND, and captures until the loopback is quiet
// after COMMAND exited and no socket has a segment in flight; the parent
// judges the file with Check and adds COMMAND's exit status.
//
// Main gives a program of your own the commands of tcplab (annotate, list,
// run, check, oracle, version) over your scenarios; package labtest runs a scenario inside go
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
//	internal/capgen    large synthetic captures for benchmarks and memory tests
//	capture/live   libpcap capture (the only cgo)
//	lab/expect     expected steps and the matcher (pure Go)
//	lab/netns      namespaces: the run's own, other hosts beside it, LANs between them, TUN devices
//	lab/report     walkthrough, ladder, index, result.json, commented pcapng (pure Go)
//	lab/impair     nftables drops
//	lab/path       a path's delay, loss and rate: netem/tbf, or a TUN delay line
//	lab/sockstat   the kernel's view of each TCP socket (netlink INET_DIAG, tcp_info)
//	lab/ktrace     the kernel's own account of each segment (eBPF tracepoints)
//	internal/annotatecmd   the annotate command, for cmd/tcplab and Main
//	lab/scripted   a scripted peer: raw segments to and from a real kernel, behind a TUN device
//	lab/pkt        packetdrill scripts: parsed, played on lab/scripted, written as Go (tcplab pkt)
//	lab            Scenario, Env, Run, Main
//	lab/peer, lab/labtest   the blog post's peers; Run inside go test
//	scenarios      tcplab's own scenarios
//	cmd/tcplab     flags
package lab
