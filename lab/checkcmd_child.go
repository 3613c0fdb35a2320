package lab

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/capture/live"
	"github.com/tcplab/tcplab/lab/netns"
	"github.com/tcplab/tcplab/lab/sockstat"
)

// checkChildEnv carries the orders of `check -- COMMAND` from the parent
// to the child it re-executes in a network namespace; InChild is true
// when it is set, and RunChild then runs the command instead of a
// scenario.
const checkChildEnv = "TCPLAB_CHECK_CHILD"

// The descriptors the parent hands the child of `check -- COMMAND`: the
// capture file it made (the child writes the pcapng in it), and the pipe
// on which the child writes its commandOutcome as JSON when it is done.
const (
	checkCaptureFD = 3
	checkOutcomeFD = 4
)

// checkOrders is what the child of `check -- COMMAND` is asked to run.
type checkOrders struct {
	Command []string `json:"command"` // path and arguments
}

// commandOutcome is what the child of `check -- COMMAND` tells the parent.
type commandOutcome struct {
	Started     bool   `json:"started"`          // COMMAND started
	Exit        int    `json:"exit"`             // its exit status; -1 when a signal ended it
	Signal      string `json:"signal,omitempty"` // the signal that ended it
	Interrupted bool   `json:"interrupted"`      // SIGINT or SIGTERM came while it ran
	Frames      int    `json:"frames"`           // frames written
	Received    int    `json:"received"`         // libpcap's count of frames seen
	Dropped     int    `json:"dropped"`          // frames the kernel dropped
	Note        string `json:"note,omitempty"`   // why the capture stopped early
	Error       string `json:"error,omitempty"`  // the capture or COMMAND could not be had
	// NoNamespace says that Error is the namespace's: it was made, but
	// without the capabilities to bring lo up or capture.
	NoNamespace bool `json:"no_namespace,omitempty"`
}

// commandSettle is how long the loopback must stay quiet after COMMAND
// exited before the capture stops. The final ACK of a close goes out as
// soon as the FIN arrives; a delayed ACK within TCP_DELACK_MAX, 200 ms
// on Linux: the wait outlasts it.
const commandSettle = 250 * time.Millisecond

// commandSettleMax bounds the wait for a quiet loopback and for sockets
// with segments still in flight (a FIN not yet acknowledged, data
// awaiting retransmission): long enough for a few of Linux's shortest
// retransmission timeouts (200 ms), short enough for a CI step.
const commandSettleMax = 3 * time.Second

// probeWait bounds how long the child waits for the capture to see its
// probe before it gives up: the capture never started.
const probeWait = 5 * time.Second

// runCheckChild runs `check -- COMMAND`'s command in this process's
// network namespace and captures its loopback; see commandRun. It returns
// this process's exit status: 0 when the outcome was written.
func runCheckChild() int {
	// The command gets neither: it could write into the capture, and a
	// process it leaves behind would hold the outcome pipe open.
	syscall.CloseOnExec(checkCaptureFD)
	syscall.CloseOnExec(checkOutcomeFD)
	out := os.NewFile(checkOutcomeFD, "outcome")
	var oc commandOutcome
	var o checkOrders
	if err := json.Unmarshal([]byte(os.Getenv(checkChildEnv)), &o); err != nil || len(o.Command) == 0 {
		oc.Error = fmt.Sprintf("bad orders from the parent: %q", os.Getenv(checkChildEnv))
	} else {
		oc = commandRun(o, os.NewFile(checkCaptureFD, "capture"))
	}
	if out == nil {
		fmt.Fprintln(os.Stderr, "tcplab check child: no outcome pipe")
		return 3
	}
	if err := json.NewEncoder(out).Encode(oc); err != nil {
		fmt.Fprintf(os.Stderr, "tcplab check child: %v\n", err)
		return 3
	}
	return 0
}

// commandRun brings lo up, captures it into file from before the command
// starts (a probe proves the capture is running) until the loopback has
// settled after the command exited, and says how it went. SIGINT and
// SIGTERM are passed on to the command (a second one kills it); the
// capture is written either way.
func commandRun(o checkOrders, file *os.File) commandOutcome {
	var oc commandOutcome
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	// Left notified: a signal that comes after the command ended is moot,
	// and the SIGTERM this process sends its own group at the end must
	// not end it.
	if file == nil {
		oc.Error = "no capture file from the parent"
		return oc
	}
	if err := netns.SetupLoopback(); err != nil {
		oc.Error, oc.NoNamespace = err.Error(), errors.Is(err, syscall.EPERM)
		if oc.NoNamespace {
			oc.Error += restrictedHint
		}
		return oc
	}
	lc, err := live.Open(live.Config{Interface: "lo"})
	if err != nil {
		oc.Error = err.Error()
		return oc
	}
	w, err := capture.NewWriter(file, lc.LinkType())
	if err != nil {
		lc.Close()
		oc.Error = err.Error()
		return oc
	}
	rd := newLoReader(lc, w)
	go rd.read()
	stopCapture := func() {
		// The kernel's counters, before Close takes them away.
		if st, err := lc.Stats(); err == nil {
			oc.Received, oc.Dropped = st.Received, st.Dropped
		}
		lc.Close()
		<-rd.done
		oc.Frames = rd.frames
		if err := errors.Join(rd.err, w.Flush()); err != nil && oc.Error == "" {
			oc.Error = "write the capture: " + err.Error()
		}
	}
	if err := rd.waitReady(sigs); err != nil {
		stopCapture()
		oc.Error, oc.Interrupted = err.Error(), errors.Is(err, ErrInterrupted)
		return oc
	}

	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = commandEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		stopCapture()
		oc.Error = fmt.Sprintf("start %s: %v", o.Command[0], err)
		return oc
	}
	oc.Started = true
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
wait:
	for {
		select {
		case s := <-sigs:
			if !oc.Interrupted {
				oc.Interrupted = true
				cmd.Process.Signal(s)
			} else {
				cmd.Process.Kill()
			}
		case <-waited:
			break wait
		}
	}
	oc.Exit = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		oc.Signal = ws.Signal().String()
	}
	oc.Note = settleAfter(rd, time.Now())
	rd.drain()
	stopCapture()
	// Whatever the command left running has no business here any more;
	// it is in this process's group (netns.Command made the group).
	if syscall.Getpgrp() == os.Getpid() {
		syscall.Kill(0, syscall.SIGTERM)
	}
	return oc
}

// restrictedHint follows the error of a user namespace made without
// capabilities, as Ubuntu's AppArmor makes them for unconfined programs
// (24.04 and later, GitHub's ubuntu-latest runners among them).
const restrictedHint = "; the kernel gave the new namespace no capabilities: allow them with " +
	"sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04 and later), or run as root"

// commandEnv is the command's environment: this process's, without the
// variables that would make a tcplab or a test binary among the
// command's processes think it is a lab child.
func commandEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if name == checkChildEnv || name == childEnv || name == netns.EnvVar {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// settleAfter waits, from the command's exit at exited, until the loopback has
// been quiet for commandSettle and no socket of the namespace has a
// segment in flight, for commandSettleMax at most. It returns why it
// stopped early, or "".
func settleAfter(rd *loReader, exited time.Time) string {
	// Without sockstat the quiet wire alone decides.
	ss, err := sockstat.New(sockstat.Config{})
	if err == nil {
		defer ss.Close()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		quietFrom := exited
		if last := rd.lastFrame(); last.After(quietFrom) {
			quietFrom = last
		}
		busy := 0
		if time.Since(quietFrom) >= commandSettle {
			if ss == nil {
				return ""
			}
			if busy = inFlight(ss); busy == 0 {
				return ""
			}
		}
		if time.Since(exited) >= commandSettleMax {
			if busy > 0 {
				return fmt.Sprintf("%d sockets still had segments in flight %v after the command exited; the capture stopped there", busy, commandSettleMax)
			}
			return fmt.Sprintf("the loopback was still busy %v after the command exited (processes it left behind?); the capture stopped there", commandSettleMax)
		}
		<-tick.C
	}
}

// inFlight counts the sockets of the namespace for which the kernel has
// a segment yet to send or to see acknowledged: a handshake or a FIN
// under way, data awaiting acknowledgement or a window probe.
func inFlight(ss *sockstat.Sampler) int {
	socks, err := ss.Sample(sockstat.Filter{})
	if err != nil {
		return 0
	}
	n := 0
	for _, s := range socks {
		switch {
		case s.State == sockstat.SynSent, s.State == sockstat.SynRecv, s.State == sockstat.NewSynRecv,
			s.State == sockstat.FinWait1, s.State == sockstat.Closing, s.State == sockstat.LastAck,
			s.Timer == sockstat.TimerOn, s.Timer == sockstat.TimerPersist:
			n++
		}
	}
	return n
}

// loReader reads a live capture of lo into a pcapng writer, from the
// moment it sees the probe that proves the capture runs.
type loReader struct {
	lc    *live.Capture
	w     *capture.Writer
	token []byte // the probe's payload
	ready chan struct{}
	done  chan struct{}

	mu     sync.Mutex
	last   time.Time // when the last frame was read
	drainT time.Time // drain asked at; zero until then
	frames int
	err    error
}

func newLoReader(lc *live.Capture, w *capture.Writer) *loReader {
	token := make([]byte, 16)
	rand.Read(token)
	return &loReader{lc: lc, w: w, token: append([]byte("tcplab probe "), token...),
		ready: make(chan struct{}), done: make(chan struct{})}
}

// read reads frames until the capture is closed, or until a read that
// began after drain was asked finds nothing: the kernel's ring is empty.
// Frames before the probe, and the probe, are not written: they are
// the reader's, not the command's.
func (r *loReader) read() {
	defer close(r.done)
	ready := false
	for {
		began := time.Now()
		data, ci, err := r.lc.ReadPacketData()
		if errors.Is(err, capture.ErrTimeout) {
			r.mu.Lock()
			drained := !r.drainT.IsZero() && began.After(r.drainT)
			r.mu.Unlock()
			if drained {
				return
			}
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
			}
			return
		}
		if bytes.Contains(data, r.token) {
			if !ready {
				ready = true
				close(r.ready)
			}
			continue
		}
		if !ready {
			continue
		}
		werr := r.w.WritePacket(ci, data, "")
		r.mu.Lock()
		r.last = time.Now()
		r.frames++
		if werr != nil && r.err == nil {
			r.err = werr
		}
		r.mu.Unlock()
	}
}

// lastFrame returns when the last frame was read.
func (r *loReader) lastFrame() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// drain asks the reader to stop once the kernel's ring is empty, and
// waits for it, a second at most (a loopback that never falls silent).
func (r *loReader) drain() {
	r.mu.Lock()
	r.drainT = time.Now()
	r.mu.Unlock()
	select {
	case <-r.done:
	case <-time.After(time.Second):
	}
}

// waitReady sends probes, a UDP datagram from 127.0.0.1 to itself, until
// the capture has seen one: from then on every frame on lo is captured.
func (r *loReader) waitReady(sigs <-chan os.Signal) error {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return fmt.Errorf("probe the capture: %w", err)
	}
	defer c.Close()
	self := c.LocalAddr().(*net.UDPAddr)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(probeWait)
	for {
		if _, err := c.WriteToUDP(r.token, self); err != nil {
			return fmt.Errorf("probe the capture: %w", err)
		}
		select {
		case <-r.ready:
			return nil
		case <-r.done:
			return fmt.Errorf("the capture on lo ended before it started: %v", r.err)
		case <-sigs:
			return fmt.Errorf("%w before the command started", ErrInterrupted)
		case <-deadline:
			return fmt.Errorf("the capture on lo saw none of its probes in %v", probeWait)
		case <-tick.C:
		}
	}
}
