package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/internal/safefile"
)

// recordWithout runs the scenario's peers with tcpdump capturing, or with
// nothing capturing, for comparison with the lab's own capture: the
// result has no segments to judge, only the peers' outcome, their metrics
// and tcpdump's drops.
func recordWithout(parent context.Context, sc *Scenario, opt Options, dir *safefile.Dir, nw *network, progress func(string)) (*recording, error) {
	addr := nw.serverAddr
	start := time.Now()
	timeout := sc.timeout()
	if sc.Wait != nil {
		timeout += sc.Wait(opt)
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	rec := &recording{}
	var dump *tcpdump
	if opt.Capture == CaptureTcpdump {
		var err error
		if dump, err = startTcpdump(ctx, nw.iface, dir, sc.Snaplen, portOf(addr)); err != nil {
			return nil, err
		}
	}
	env := newEnv(addr, opt, progress)
	env.client, env.clientIP = nw.client, nw.clientIP
	rec.err = runPeers(ctx, sc, env, timeout)
	rec.events, rec.metrics = env.Events(), env.Metrics()
	if dump != nil {
		// Let the last segments reach tcpdump, as the lab's capture does.
		time.Sleep(quiet)
		drops, err := dump.stop()
		rec.drops = drops
		rec.err = errors.Join(rec.err, err)
	}
	rec.elapsed = time.Since(start)
	return rec, nil
}

// tcpdumpFile is what tcpdump captured, in the scenario's directory.
const tcpdumpFile = "tcpdump.pcap"

// tcpdump is a tcpdump process capturing the scenario's interface.
type tcpdump struct {
	cmd    *exec.Cmd
	stderr *bufio.Scanner
	lines  chan string
	file   *safefile.File
}

// startTcpdump starts tcpdump on iface with the lab's settings (immediate
// mode, the same snap length and an 8 MiB buffer) and waits until it
// listens. It writes to its standard output, a file made in dir, so that
// tcpdump opens no path of its own there.
func startTcpdump(ctx context.Context, iface string, dir *safefile.Dir, snaplen, port int) (*tcpdump, error) {
	if snaplen <= 0 {
		snaplen = 262144
	}
	f, err := dir.Create(tcpdumpFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-B", "8192",
		"-s", strconv.Itoa(snaplen), "-w", "-", "tcp", "port", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = f.File
	pipe, err := cmd.StderrPipe()
	if err != nil {
		f.Discard()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		f.Discard()
		return nil, fmt.Errorf("start tcpdump: %w (apt-get install tcpdump)", err)
	}
	t := &tcpdump{cmd: cmd, stderr: bufio.NewScanner(pipe), lines: make(chan string, 16), file: f}
	go func() {
		defer close(t.lines)
		for t.stderr.Scan() {
			t.lines <- t.stderr.Text()
		}
	}()
	for {
		select {
		case line, ok := <-t.lines:
			if !ok {
				cmd.Wait()
				f.Discard()
				return nil, errors.New("tcpdump exited before it listened")
			}
			if strings.Contains(line, "listening on") {
				return t, nil
			}
		case <-ctx.Done():
			cmd.Process.Kill()
			cmd.Wait()
			f.Discard()
			return nil, errors.New("tcpdump did not start in time")
		}
	}
}

var tcpdumpDrops = regexp.MustCompile(`(\d+) packets? dropped by kernel`)

// stop interrupts tcpdump and returns the kernel drops it reports.
func (t *tcpdump) stop() (int, error) {
	t.cmd.Process.Signal(syscall.SIGINT)
	drops := -1
	for line := range t.lines {
		if m := tcpdumpDrops.FindStringSubmatch(line); m != nil {
			drops, _ = strconv.Atoi(m[1])
		}
	}
	t.cmd.Wait()
	if err := t.file.Commit(); err != nil {
		return drops, err
	}
	if drops < 0 {
		return 0, errors.New("tcpdump did not report its drops")
	}
	return drops, nil
}
