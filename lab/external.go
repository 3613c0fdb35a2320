package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/internal/safefile"
)

// external is a server the user gave as a command line, started inside the
// scenario's namespace in place of the scenario's own server.
type external struct {
	command string
	cmd     *exec.Cmd
	output  *peerLog // its stdout and stderr: server.log, and the tail for error messages
	exited  chan struct{}
	err     error
}

// tailSize bounds what the lab keeps in memory of a peer command's output,
// for its error messages: the end of it. The whole goes to the log file as
// it comes, however much the command prints.
const tailSize = 64 << 10

// peerLog is the log file of a peer command (server.log, client.log): the
// command line, what it printed, as it printed it, then how it ended. It
// keeps the last tailSize bytes in memory.
type peerLog struct {
	mu    sync.Mutex
	file  *safefile.File // nil when it could not be made: the tail is kept all the same
	tail  []byte
	last  byte // the last byte written, to end the output with a newline
	wrote bool
	err   error // the first error of the file
}

// newPeerLog starts the log name in dir of the command.
func newPeerLog(dir *safefile.Dir, name, command string) *peerLog {
	l := &peerLog{}
	l.file, l.err = dir.Create(name)
	if l.err == nil {
		_, l.err = fmt.Fprintf(l.file, "$ %s\n", command)
	}
	return l
}

// Write writes p to the file and keeps the end of it; it never fails, so
// that the command's output is never cut short by its log.
func (l *peerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if l.file != nil && l.err == nil {
		_, l.err = l.file.Write(p)
	}
	l.last, l.wrote = p[len(p)-1], true
	if len(p) >= tailSize {
		l.tail = append(l.tail[:0], p[len(p)-tailSize:]...)
	} else {
		if len(l.tail)+len(p) > 2*tailSize {
			l.tail = append(l.tail[:0], l.tail[len(l.tail)-(tailSize-len(p)):]...)
		}
		l.tail = append(l.tail, p...)
	}
	return len(p), nil
}

// Tail returns the end of the output, at most tailSize bytes.
func (l *peerLog) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.tail[max(0, len(l.tail)-tailSize):])
}

// Close ends the log with the command's exit status and puts it in place.
func (l *peerLog) Close(status error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return l.err
	}
	end := ""
	if l.wrote && l.last != '\n' {
		end = "\n"
	}
	if l.err == nil {
		_, l.err = fmt.Fprintf(l.file, "%s[%s]\n", end, errString(status))
	}
	if l.err != nil {
		l.file.Discard()
		return l.err
	}
	return l.file.Commit()
}

// ServerLog and ClientLog are the files, in a scenario's directory, that
// keep what the user's own server or client printed, and how it ended.
const (
	ServerLog = "server.log"
	ClientLog = "client.log"
)

// exitedEarly returns an error when the server ended before the lab
// stopped it, with its status and last line: a crash after it listened.
func (e *external) exitedEarly() error {
	select {
	case <-e.exited:
		if e.err == nil {
			return nil // a server that serves once and ends is fine
		}
		return fmt.Errorf("server %q exited (%s) during the scenario: %s", e.command, errString(e.err), lastLine(e.output.Tail()))
	default:
		return nil
	}
}

// startExternal starts command with sh -c, in a process group of its own,
// with its output in dir's server.log, and waits until something listens
// on port (read from /proc/net/tcp, so the wait puts nothing on the wire).
// When it returns an error the server is stopped and its log written.
func startExternal(ctx context.Context, dir *safefile.Dir, command string, port int, ipv6 bool, progress func(string)) (*external, error) {
	e := &external{command: command, exited: make(chan struct{}), output: newPeerLog(dir, ServerLog, command)}
	e.cmd = exec.Command("/bin/sh", "-c", command)
	e.cmd.Stdout, e.cmd.Stderr = e.output, e.output
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		err = fmt.Errorf("start server %q: %w", command, err)
		e.output.Close(err)
		return nil, err
	}
	go func() { e.err = e.cmd.Wait(); close(e.exited) }()
	progress(fmt.Sprintf("started server %q; waiting for it to listen on port %d", command, port))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if v4, v6, any6 := listeners(port); v4 || v6 || any6 {
			// A server bound to one family's loopback cannot take the
			// other's connections: say so rather than let the client
			// meet a bare "connection refused".
			switch {
			case !ipv6 && !v4 && !any6:
				e.finish()
				return nil, fmt.Errorf("server %q listens on port %d over IPv6 only: run with -6, or bind it to 127.0.0.1 or [::]", command, port)
			case ipv6 && !v6 && !any6:
				e.finish()
				return nil, fmt.Errorf("server %q listens on port %d over IPv4 only: run without -6, or bind it to ::1 or [::]", command, port)
			}
			return e, nil
		}
		select {
		case <-e.exited:
			e.finish()
			return nil, fmt.Errorf("server %q exited (%v) before listening on port %d: %s", command, e.err, port, lastLine(e.output.Tail()))
		case <-ctx.Done():
			e.finish()
			return nil, fmt.Errorf("server %q did not listen on port %d in time; does it use that port? (-port)", command, port)
		case <-tick.C:
		}
	}
}

// stop ends the server's whole process group: SIGTERM, then SIGKILL if it
// lingers.
func (e *external) stop() {
	pid := e.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(2 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-e.exited
	}
}

// finish stops the server and writes its log, server.log, with how it
// ended; it returns the log's error.
func (e *external) finish() error {
	e.stop()
	return e.output.Close(e.err)
}

// listeners reports what listens on port: an IPv4 socket (v4), an IPv6
// socket on a given address such as ::1 (v6), or one on [::], which takes
// IPv4 connections too unless it was made IPv6-only (any6). It reads
// /proc/net/tcp and tcp6, so looking puts nothing on the wire.
func listeners(port int) (v4, v6, any6 bool) {
	want := fmt.Sprintf(":%04X", port)
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st ...; st 0A is LISTEN.
			if len(fields) <= 3 || !strings.HasSuffix(fields[1], want) || fields[3] != "0A" {
				continue
			}
			switch host := strings.TrimSuffix(fields[1], want); {
			case path == "/proc/net/tcp":
				v4 = true
			case strings.Trim(host, "0") == "":
				any6 = true
			default:
				v6 = true
			}
		}
		f.Close()
	}
	return v4, v6, any6
}

// lastLine returns the last three lines of a command's output (its tail),
// joined
// with " | " so that an error stays on one line (server.log and client.log
// have all of it).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	out := strings.Join(lines, " | ")
	if out == "" {
		return "no output"
	}
	return out
}

// runClientCommand runs the user's client command in the namespace once
// the server listens, with TCPLAB_SERVER set to the server's address, and
// records how it ended.
func runClientCommand(ctx context.Context, env *Env, command string, dir *safefile.Dir) error {
	log := newPeerLog(dir, ClientLog, command)
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), "TCPLAB_SERVER="+env.Addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = log, log
	err := cmd.Run()
	if lerr := log.Close(err); lerr != nil {
		env.Record("%s: %v", ClientLog, lerr)
	}
	env.Record(env.Text("client %q exited (%v): %s", "客户端 %q 退出 (%v): %s"), command, errString(err), lastLine(log.Tail()))
	if err != nil {
		return fmt.Errorf("client %q: %v: %s", command, err, lastLine(log.Tail()))
	}
	return nil
}

// errString formats an exit error, nil included.
func errString(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// externalPeers says why sc cannot run with the user's own server or
// client that opt names, if it cannot, and which scenarios of list can.
func externalPeers(sc *Scenario, opt Options, list []*Scenario) error {
	names := func(ok func(*Scenario) bool) string {
		var n []string
		for _, s := range list {
			if ok(s) {
				n = append(n, s.Name)
			}
		}
		if len(n) == 0 {
			return "none of these scenarios can"
		}
		return strings.Join(n, ", ") + " can"
	}
	if opt.External() && !sc.AcceptsServer {
		return fmt.Errorf("scenario %s cannot run against your own server (-server); %s", sc.Name, names(func(s *Scenario) bool { return s.AcceptsServer }))
	}
	if opt.ExternalClient() && !sc.AcceptsClient {
		return fmt.Errorf("scenario %s cannot run with your own client (-client); %s", sc.Name, names(func(s *Scenario) bool { return s.AcceptsClient }))
	}
	return nil
}

// errNoExternal is returned by Env.Listen when the server is the user's
// own command, which listens by itself.
var errNoExternal = errors.New("the server is your own command (-server): the scenario's server must not listen")

// portOf returns the port of "host:port".
func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.Atoi(addr[i+1:])
	return p
}
