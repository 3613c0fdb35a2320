package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strings"
	"sync"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/report"
	"github.com/tcplab/tcplab/lab/scripted"
)

// The topologies of a scenario with a scripted side (package
// lab/scripted): one side is a script that speaks raw segments from an
// address no host owns, behind a TUN device in the scenario's namespace,
// and the other is the kernel, with real sockets. The kernel's address is
// 192.168.0.101, the script's 192.168.0.2, as in the blog post; the lab
// captures the device (raw IP), so the capture, its labels, the
// walkthrough, the ladder and result.json come as for any scenario, each
// frame the script sent marked "scripted" with its step. Where
// /dev/net/tun is root's (even in a user namespace) and the run is not
// root's, a veth pair stands in for the TUN device (scripted.Open).
const (
	// Scripted makes the script the client: the kernel's server listens
	// on Env.Addr (192.168.0.101:PORT), and the Client side plays the
	// script, env.Scripted().Dial(port).
	Scripted Topology = "scripted"
	// ScriptedServer makes the script the server, at Env.Addr
	// (192.168.0.2:PORT): the Server side plays the script,
	// env.Scripted().Listen(port), and the kernel's client connects to
	// Env.Addr as on any topology.
	ScriptedServer Topology = "scripted-server"
)

// scriptedInterface is the scripted peer's device, where the lab captures.
const scriptedInterface = "tcplab-s0"

// isScripted reports whether t has a scripted side.
func isScripted(t Topology) bool { return t == Scripted || t == ScriptedServer }

// newScriptedNetwork opens the scripted peer of sc in the calling
// process's namespace, for a server on the port of addr.
func newScriptedNetwork(sc *Scenario, opt Options, addr string) (*network, func(), error) {
	if opt.IPv6 {
		return nil, nil, fmt.Errorf("%s has a scripted peer, which speaks IPv4 only: run it without -6", sc.Name)
	}
	if sc.Path != "" || opt.Path != "" {
		return nil, nil, fmt.Errorf("%s has a scripted peer, which decides itself when each segment comes: run it without -path", sc.Name)
	}
	log := &scriptLog{sent: map[string][]string{}}
	p, err := scripted.Open(scripted.Config{Name: scriptedInterface, Log: log.add})
	if err != nil {

		return nil, nil, err
	}
	server := p.KernelAddr()
	if sc.Topology == ScriptedServer {
		server = p.Addr()
	}
	n := &network{
		serverAddr: netip.AddrPortFrom(server, uint16(portOf(addr))).String(),
		iface:      scriptedInterface, filter: "tcp", kind: string(sc.Topology),
		peer: p, script: log,
	}
	return n, func() { p.Close() }, nil
}

// scriptLog keeps what the script called each frame it sent, by the
// frame's bytes, which the capture of the device sees unchanged.
type scriptLog struct {
	mu   sync.Mutex
	sent map[string][]string // frame -> "step N: ...", in the order sent
}

// add is the scripted peer's Log.
func (l *scriptLog) add(frame []byte, comment string) {
	step, ok := strings.CutPrefix(comment, "scripted: ")
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[string(frame)] = append(l.sent[string(frame)], step)
}

// markScripted marks each captured frame that the scripted peer of nw
// sent, with the script's step (report.Scripted); on any other network
// it does nothing.
func (n *network) markScripted(pkts []capture.Packet) {
	if n.peer == nil {
		return
	}
	n.script.mu.Lock()
	defer n.script.mu.Unlock()
	for i := range pkts {
		p := &pkts[i]
		data := p.Data[min(n.peer.LinkHeaderLen(), len(p.Data)):]
		steps := n.script.sent[string(data)]
		switch {
		case len(steps) > 0:
			n.script.sent[string(data)] = steps[1:]
			p.Info.AncillaryData = append(p.Info.AncillaryData, report.Scripted(steps[0]))
		case p.TCP && p.Segment.Src.Addr() == n.peer.Addr():
			// Nothing but the script speaks for its address.
			p.Info.AncillaryData = append(p.Info.AncillaryData, report.Scripted(""))
		}
	}
}

// Scripted returns the run's scripted peer, for the side of a scenario
// whose Topology is Scripted or ScriptedServer that the script plays;
// nil on any other topology. With ScriptedServer it also lets the
// kernel's client start: the peer answers for its address from the moment
// it opened.
func (e *Env) Scripted() *scripted.Peer {
	if e.peerServes {
		e.markReady()
	}
	return e.peer
}

// Helper is testing.TB's: a scripted peer's calls take an Env as their
// TB.
func (e *Env) Helper() {}

// Fatalf records the failure of the side that called it, as the error it
// returns, and ends that side's goroutine (runtime.Goexit), as
// testing.T's Fatalf does: a scripted peer's calls fail this way when
// the kernel does not send what the script expects.
func (e *Env) Fatalf(format string, args ...any) {
	e.mu.Lock()
	e.fatals = append(e.fatals, fmt.Sprintf(format, args...))
	e.mu.Unlock()
	runtime.Goexit()
}

// runSide runs one side of a scenario in a goroutine of its own, so that
// a Fatalf there ends that side alone, and returns its error: what it
// returned, or what Fatalf recorded.
func runSide(ctx context.Context, side func(context.Context, *Env) error, env *Env) error {
	done := make(chan error, 1)
	go func() {
		returned := false
		defer func() {
			if !returned {
				done <- env.takeFatal()
			}
		}()
		err := side(ctx, env)
		returned = true
		done <- err
	}()
	return <-done
}

// takeFatal returns what Fatalf recorded and not yet returned.
func (e *Env) takeFatal() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	msgs := e.fatals
	e.fatals = nil
	if len(msgs) == 0 {
		return errors.New("ended by runtime.Goexit without Fatalf")
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// leaveOutScripted returns the scenarios of list that can run here, with
// opt and noSandbox (-no-sandbox): those with a scripted side only when
// the run asks nothing a scripted peer cannot do. It tells w of each it
// leaves out. Without root they run too: where /dev/net/tun is root's,
// the peer stands behind a veth pair in the scenario's own namespace.
func leaveOutScripted(list []*Scenario, opt Options, noSandbox bool, w io.Writer) []*Scenario {
	return leaveOut(list, scriptedReason(opt, noSandbox), w)
}

// scriptedReason says why a run with opt and noSandbox cannot have a
// scripted side; nil when it can.
func scriptedReason(opt Options, noSandbox bool) error {
	switch {
	case opt.IPv6:
		return errors.New("a scripted peer speaks IPv4 only (-6)")
	case opt.Path != "":
		return errors.New("a scripted peer takes no -path")
	case noSandbox:
		return errors.New("a scripted peer needs the scenario's own namespace (-no-sandbox)")
	}
	return nil
}

// leaveOut is leaveOutScripted for the reason err (nil: none).
func leaveOut(list []*Scenario, err error, w io.Writer) []*Scenario {
	if err == nil {
		return list
	}
	var out []*Scenario
	for _, sc := range list {
		if isScripted(sc.Topology) {
			fmt.Fprintf(w, "%-16s left out: %v\n", sc.Name, err)
			continue
		}
		out = append(out, sc)
	}
	return out
}
