package lab

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/tcplab/tcplab/lab/expect"
)

// Scenario is one TCP conversation between a real server and a real client,
// and the segments it must put on the wire.
type Scenario struct {
	Name    string // short name, used on the command line and for out/NAME
	Summary string // one line
	// SummaryZH is the summary in Chinese, for -lang zh; the English one
	// stands in when it is empty.
	SummaryZH string
	// Server runs the server side. It must call Env.Listen once; the client
	// starts when it has.
	Server func(ctx context.Context, env *Env) error
	// Client runs the client side; it connects to Env.Addr.
	Client func(ctx context.Context, env *Env) error
	// Steps are the expected segments, in order per connection.
	Steps func(opt Options) []expect.Step
	// Setup, when set, runs in the scenario's namespace before the server
	// starts (to install impairments, say); the function it returns undoes
	// it after the capture.
	Setup func(ctx context.Context, env *Env) (undo func(), err error)
	// NeedsNamespace marks a scenario that changes its network namespace
	// (Setup): it refuses to run with -no-sandbox, on the host.
	NeedsNamespace bool
	// Topology is the network the peers meet on: one loopback (the
	// default), two hosts on a LAN, or a scripted peer facing the kernel
	// (Scripted, ScriptedServer). Anything but Loopback needs the
	// namespace as NeedsNamespace does.
	Topology Topology
	// Offload keeps the LAN's segmentation and receive offloads (TSO, GSO,
	// GRO) on, as on a real host, where they are off by default so that
	// each segment on the wire is a frame of the capture; Env.SetOffload
	// turns them on or off during the run.
	Offload bool
	// Path, when set, puts the two hosts on either side of a router whose
	// path has these conditions, in the form of -path (package lab/path),
	// "delay=20ms" say; Options.Path overrides it.
	Path string
	// AcceptsServer marks a scenario whose client can face a server of
	// the user's (Options.ServerCommand); its Steps then say what any
	// correct server must do. AcceptsClient is the same for a client of
	// the user's (Options.ClientCommand).
	AcceptsServer, AcceptsClient bool
	// ClientSummary (and ClientSummaryZH, in Chinese) is the summary when
	// a client of the user's stands in for the scenario's: %s is its
	// command. Without it, the summary says only that the user's client
	// ran.
	ClientSummary, ClientSummaryZH string
	// Snaplen is the capture's snap length; zero keeps whole packets. A
	// bulk transfer captures headers only.
	Snaplen int
	// HighRate marks a scenario that puts tens of thousands of packets a
	// second on the wire: its capture is batched, into a ring large enough
	// to hold the whole transfer, and read at the lowest CPU priority, so
	// that capturing takes as little as it can from the traffic.
	HighRate bool
	// Timeout bounds the whole scenario; zero means 15 s.
	Timeout time.Duration
	// Wait is how long the scenario waits on timers by design (a
	// keep-alive idle, say), for reporting how much the lab adds.
	Wait func(opt Options) time.Duration
}

// Options are the knobs a user turns for all scenarios of a run.
type Options struct {
	// KeepAliveIdle is the idle time before the first keep-alive probe;
	// zero means 1 s. The blog post's server uses 8 s.
	KeepAliveIdle time.Duration `json:"keepalive_idle,omitempty"`
	// Lang is the language of the run: of the walkthrough, the diagrams,
	// the events and the progress it prints.
	Lang expect.Lang `json:"lang,omitempty"`
	// ServerCommand, when set, is a shell command that runs the user's own
	// server in the namespace, in place of the scenario's; it must listen
	// on Port.
	ServerCommand string `json:"server_command,omitempty"`
	// ClientCommand, when set, is a shell command that runs the user's own
	// client in the namespace, in place of the scenario's, once the server
	// listens; TCPLAB_SERVER holds the server's address. Its first
	// connection is judged.
	ClientCommand string `json:"client_command,omitempty"`
	// Port is the server's port; zero means 8000 (the blog post's).
	Port int `json:"port,omitempty"`
	// Capture chooses what captures: the lab (the default), tcpdump, or
	// nothing, to measure what capturing costs.
	Capture CaptureMode `json:"capture,omitempty"`
	// IPv6 runs the scenario over ::1 instead of 127.0.0.1.
	IPv6 bool `json:"ipv6,omitempty"`
	// AnyPeers says that the capture being judged may come from anyone's
	// programs (tcplab check): a scenario's steps then take lengths and
	// numbers from what the capture shows, not from its own peers, and
	// say only what any correct peer does, as with ServerCommand or
	// ClientCommand.
	AnyPeers bool `json:"any_peers,omitempty"`
	// Path, when set, runs every scenario across a router whose path has
	// these conditions (-path; package lab/path), in place of the
	// scenario's own Path.
	Path string `json:"path,omitempty"`
	// Seed seeds the random decisions of a path's delay line (loss,
	// jitter, reordering, duplication), so that a run can be replayed;
	// zero means 1.
	Seed uint64 `json:"seed,omitempty"`
	// Kernel says how the run learns what the kernel did with its
	// sockets: its own events where it can trace them (the zero value),
	// or samples of the sockets after segments. Run sets KernelSamples
	// when this process cannot trace, so that no scenario tries again.
	Kernel KernelMode `json:"kernel,omitempty"`
	// TracePath names the frames whose path through the kernel the run
	// shows (-trace-path), in place of the default ones: each
	// connection's SYN and its first data segment each way.
	TracePath []int `json:"trace_path,omitempty"`
	// NoTracePath follows no segment through the kernel (-trace-path
	// off): the path's programs are not even attached.
	NoTracePath bool `json:"no_trace_path,omitempty"`

	// afterConversation, for tests, runs when the wait for the end of the
	// conversation is over, before the captures close.
	afterConversation func()
}

// CaptureMode says what captures a run.
type CaptureMode string

// The ways a run can capture, for measuring what capturing costs:
// CaptureLab is the lab's own (the default, also meant by ""),
// CaptureTcpdump runs tcpdump in the namespace instead, CaptureNone runs
// the peers alone.
const (
	CaptureLab     CaptureMode = "tcplab"
	CaptureTcpdump CaptureMode = "tcpdump"
	CaptureNone    CaptureMode = "none"
)

// ParseCaptureMode returns the mode called s.
func ParseCaptureMode(s string) (CaptureMode, error) {
	switch m := CaptureMode(s); m {
	case CaptureLab, CaptureTcpdump, CaptureNone:
		return m, nil
	case "":
		return CaptureLab, nil
	}
	return "", fmt.Errorf("unknown capture %q: use tcplab, tcpdump or none", s)
}

// External reports whether the server is the user's command.
func (o Options) External() bool { return o.ServerCommand != "" }

// AnyServer reports whether the server may be anyone's: the user's
// command, or whatever made a capture that is checked.
func (o Options) AnyServer() bool { return o.External() || o.AnyPeers }

// AnyClient is AnyServer for the client.
func (o Options) AnyClient() bool { return o.ExternalClient() || o.AnyPeers }

// ExternalClient reports whether the client is the user's command.
func (o Options) ExternalClient() bool { return o.ClientCommand != "" }

// ServerAddr returns the server's address on the scenario's loopback,
// "127.0.0.1:PORT" or "[::1]:PORT", for port.
func (o Options) ServerAddr(port int) string {
	host := "127.0.0.1"
	if o.IPv6 {
		host = "::1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// ServerPort returns the server's port, with its default.
func (o Options) ServerPort() int {
	if o.Port <= 0 {
		return Port
	}
	return o.Port
}

// Idle returns the keep-alive idle time, with its default.
func (o Options) Idle() time.Duration {
	if o.KeepAliveIdle <= 0 {
		return time.Second
	}
	return o.KeepAliveIdle
}

// summary returns the scenario's summary in lang, or in English when it
// has none in lang.
func (sc *Scenario) summary(opt Options) string {
	zh := opt.Lang == expect.Chinese
	if opt.ExternalClient() {
		switch {
		case zh && sc.ClientSummaryZH != "":
			return fmt.Sprintf(sc.ClientSummaryZH, opt.ClientCommand)
		case sc.ClientSummary != "" && (!zh || sc.ClientSummaryZH == ""):
			return fmt.Sprintf(sc.ClientSummary, opt.ClientCommand)
		case zh:
			return fmt.Sprintf("你的客户端 (%s) 代替场景的客户端", opt.ClientCommand)
		}
		return fmt.Sprintf("your client (%s) in place of the scenario's", opt.ClientCommand)
	}
	if zh && sc.SummaryZH != "" {
		return sc.SummaryZH
	}
	return sc.Summary
}

func (sc *Scenario) timeout() time.Duration {
	if sc.Timeout <= 0 {
		return 15 * time.Second
	}
	return sc.Timeout
}

// peerLogs names the logs a run with these options leaves beside the
// artifacts: server.log for the user's server, client.log for the user's
// client.
func (o Options) peerLogs() []string {
	var logs []string
	if o.External() {
		logs = append(logs, ServerLog)
	}
	if o.ExternalClient() {
		logs = append(logs, ClientLog)
	}
	return logs
}

// Text returns en or zh, whichever is in the run's language (English when
// zh is empty): what a scenario records (Env.Record) or tells the watcher
// (Env.Progress, Env.Sleep) is in the language of the run. Either may be
// a format.
func (o Options) Text(en, zh string) string {
	if o.Lang == expect.Chinese && zh != "" {
		return zh
	}
	return en
}
