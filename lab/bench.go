package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// recordWithout runs the scenario's peers with tcpdump capturing, or with
// nothing capturing, for comparison with the lab's own capture: the
// result has no segments to judge, only the peers' outcome, their metrics
// and tcpdump's drops.
func recordWithout(parent context.Context, sc *Scenario, opt Options, dir string, nw *network, progress func(string)) (*recording, error) {
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
		if dump, err = startTcpdump(ctx, nw.iface, filepath.Join(dir, "tcpdump.pcap"), sc.Snaplen, portOf(addr)); err != nil {
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

// tcpdump is a tcpdump process capturing the scenario's interface.
type tcpdump struct {
	cmd    *exec.Cmd
	stderr *bufio.Scanner
	lines  chan string
}

// startTcpdump starts tcpdump on iface with the lab's settings (immediate
// mode, the same snap length and an 8 MiB buffer) and waits until it
// listens.
func startTcpdump(ctx context.Context, iface, path string, snaplen, port int) (*tcpdump, error) {
	if snaplen <= 0 {
		snaplen = 262144
	}
	cmd := exec.Command("tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-B", "8192",
		"-s", strconv.Itoa(snaplen), "-w", path, "tcp", "port", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start tcpdump: %w (apt-get install tcpdump)", err)
	}
	t := &tcpdump{cmd: cmd, stderr: bufio.NewScanner(pipe), lines: make(chan string, 16)}
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
				return nil, errors.New("tcpdump exited before it listened")
			}
			if strings.Contains(line, "listening on") {
				return t, nil
			}
		case <-ctx.Done():
			cmd.Process.Kill()
			cmd.Wait()
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
	if drops < 0 {
		return 0, errors.New("tcpdump did not report its drops")
	}
	return drops, nil
}
