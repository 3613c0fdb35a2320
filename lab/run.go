package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/safefile"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/netns"
	"github.com/tcplab/tcplab/lab/report"
)

// Result is the outcome of one scenario run, as its result.json stores it.
type Result = report.Result

// Config is what the user asked of a run.
type Config struct {
	// Out is the directory for the artifacts, one subdirectory per
	// scenario; empty means "out".
	Out string
	// Parallel bounds how many scenarios run at once; zero runs all at
	// once (each has its own namespace, so they cannot collide).
	Parallel int
	Options  Options
	// NoSandbox captures on the host's lo with a filter on the scenario's
	// port instead of in a private namespace. Scenarios then get distinct
	// ports from BasePort up.
	NoSandbox bool
	BasePort  int
	// Progress receives a line for each thing worth telling while the
	// scenarios run; nil discards them.
	Progress io.Writer
	// ChildArgs are the arguments of the re-executed binary that runs a
	// scenario in its namespace: none for a program whose main calls Main
	// or RunChild first; for a test binary, the -test.run pattern that
	// reaches the call that started the run (package labtest sets it).
	ChildArgs []string
}

// Port is the server port of scenarios in their private namespace, the
// port of the blog post's HTTP server.
const Port = 8000

// childEnv carries the child's orders from Run to RunChild.
const childEnv = "TCPLAB_LAB_CHILD"

// childDirFD is the descriptor, in the child, of the scenario's directory
// that Run opened: the child writes the artifacts in it (package
// safefile), never through a path another user could redirect meanwhile.
const childDirFD = 3

type childOrders struct {
	Scenario string  `json:"scenario"`
	Dir      string  `json:"dir"`
	Options  Options `json:"options"`
}

// InChild reports whether this process is a child started by Run (or by
// check -- COMMAND); a main function or TestMain calls RunChild when it is.
func InChild() bool { return os.Getenv(childEnv) != "" || os.Getenv(checkChildEnv) != "" }

// ChildScenario returns the name of the scenario this child process is to
// run, or "" when it is not a child.
func ChildScenario() string {
	var o childOrders
	if json.Unmarshal([]byte(os.Getenv(childEnv)), &o) != nil {
		return ""
	}
	return o.Scenario
}

// RunChild runs the one scenario Run asked for, inside the namespace, and
// writes its artifacts and result.json. It returns the process exit
// status: 0 when result.json was written, whatever the verdict. In a
// child of check -- COMMAND it runs the command and captures it instead.
func RunChild(list []*Scenario) int {
	if os.Getenv(checkChildEnv) != "" {
		return runCheckChild()
	}
	var o childOrders
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &o); err != nil {
		fmt.Fprintf(os.Stderr, "tcplab child: bad orders: %v\n", err)
		return 3
	}
	sc := Find(list, o.Scenario)
	if sc == nil {
		fmt.Fprintf(os.Stderr, "tcplab child: unknown scenario %q\n", o.Scenario)
		return 3
	}
	dir, err := safefile.FromFile(os.NewFile(childDirFD, o.Dir), o.Dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcplab child: the scenario's directory: %v\n", err)
		return 3
	}
	defer dir.Close()
	if err := netns.SetupLoopback(); err != nil {
		fmt.Fprintf(os.Stderr, "tcplab child: %v\n", err)
		return 3
	}
	progress := func(s string) { fmt.Fprintln(os.Stderr, s) }
	addr := o.Options.ServerAddr(o.Options.ServerPort())
	// The parent forwards SIGINT and SIGTERM: stop the peers, keep and
	// annotate what was captured, and say the run was interrupted.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := runScenario(ctx, sc, dir, o.Options, addr, "tcp", report.SandboxNetns, progress)
	if err := report.WriteResult(dir, &r); err != nil {
		fmt.Fprintf(os.Stderr, "tcplab child: %v\n", err)
		return 3
	}
	return 0
}

// Find returns the scenario called name, or nil.
func Find(list []*Scenario, name string) *Scenario {
	for _, sc := range list {
		if sc.Name == name {
			return sc
		}
	}
	return nil
}

// Run runs the scenarios and returns their results in the order given. An
// error means the lab itself could not run (no namespace, an output
// directory it cannot make); a scenario's failure is in its Result.
//
// The output directory is opened once, a symlink on its path followed
// only when root or the user running owns it (package safefile); each
// scenario's directory in it is emptied of the files an earlier run left
// (report.Artifacts, the peers' logs), and every file is made inside it
// without following a symlink.
func Run(ctx context.Context, list []*Scenario, cfg Config) ([]Result, error) {
	if cfg.Out == "" {
		cfg.Out = "out"
	}
	if cfg.BasePort == 0 {
		cfg.BasePort = 18000
	}
	if cfg.NoSandbox {
		// The host's namespace holds the host's sockets too: sample the
		// run's own rather than trace everyone's.
		cfg.Options.Kernel = KernelSamples
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary to re-execute: %w", err)
	}
	if !cfg.NoSandbox {
		if err := netns.Check(); err != nil {
			return nil, err
		}
	}
	out, err := safefile.OpenDir(cfg.Out, true)
	if err != nil {
		return nil, fmt.Errorf("the artifacts' directory: %w", err)
	}
	defer out.Close()
	var progressMu sync.Mutex
	say := func(name, s string) {
		if cfg.Progress == nil {
			return
		}
		progressMu.Lock()
		defer progressMu.Unlock()
		fmt.Fprintf(cfg.Progress, "%-16s %s\n", name, s)
	}
	par := cfg.Parallel
	if par <= 0 {
		par = len(list)
	}
	sem := make(chan struct{}, max(par, 1))
	results := make([]Result, len(list))
	// A run that cannot trace the kernel, or follow segments through it,
	// says so once, not per scenario.
	var untraced, unfollowed sync.Once
	var wg sync.WaitGroup
	for i, sc := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = runOne(ctx, exe, out, sc, i, list, cfg, func(s string) { say(sc.Name, s) })
			verdict := "PASS"
			switch {
			case results[i].Interrupted:
				verdict = "INTERRUPTED"
			case !results[i].Pass:
				verdict = "FAIL"
			}
			say(sc.Name, fmt.Sprintf(cfg.Options.Text("%s in %.2fs", "%s, 用时 %.2f 秒"), verdict, results[i].Seconds))
			if why := results[i].KernelUntraced; why != "" && cfg.Progress != nil {
				untraced.Do(func() {
					progressMu.Lock()
					defer progressMu.Unlock()
					fmt.Fprintf(cfg.Progress, kernelNotice+"\n", why)
				})
			}
			if why := results[i].KernelPathUnavailable; why != "" && cfg.Progress != nil {
				unfollowed.Do(func() {
					progressMu.Lock()
					defer progressMu.Unlock()
					fmt.Fprintf(cfg.Progress, pathNotice+"\n", why)
				})
			}
		}()
	}
	wg.Wait()
	return results, nil
}

// runOne runs the i-th scenario of list, sc, with its artifacts in its
// directory in out, which it first empties of an earlier run's.
func runOne(ctx context.Context, exe string, out *safefile.Dir, sc *Scenario, i int, list []*Scenario, cfg Config, progress func(string)) Result {
	r := Result{Scenario: sc.Name, Summary: sc.summary(cfg.Options), Dir: filepath.Join(out.Path(), sc.Name)}
	dir, err := out.Sub(sc.Name, true)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer dir.Close()
	if err := dir.Clear(append(report.Artifacts[:], ServerLog, ClientLog, tcpdumpFile)...); err != nil {
		r.Error = fmt.Sprintf("cannot remove an earlier run's artifacts: %v", err)
		return r
	}
	switch peersErr := externalPeers(sc, cfg.Options, list); {
	case ctx.Err() != nil:
		r.Interrupted, r.Error = true, "interrupted before it started"
	case peersErr != nil:
		r.Error = peersErr.Error()
	case cfg.NoSandbox && (sc.NeedsNamespace || sc.Topology != Loopback || sc.Path != "" || cfg.Options.Path != ""):
		r.Sandbox, r.Error = report.SandboxHostLo, "this scenario needs a network namespace of its own and cannot run with -no-sandbox"
	case cfg.NoSandbox:
		progress(cfg.Options.Text("started", "开始"))
		port := cfg.BasePort + i
		if cfg.Options.Port > 0 {
			port = cfg.Options.Port
		}
		addr := cfg.Options.ServerAddr(port)
		r = runScenario(ctx, sc, dir, cfg.Options, addr, fmt.Sprintf("tcp port %d", port), report.SandboxHostLo, progress)
	default:
		progress(cfg.Options.Text("started", "开始"))
		// The child writes result.json itself.
		return runChild(ctx, exe, cfg.ChildArgs, sc, dir, cfg.Options, progress)
	}
	if err := report.WriteResult(dir, &r); err != nil {
		r.Fail(err)
	}
	return r
}

// runChild runs one scenario in a child process in its own namespace.
func runChild(ctx context.Context, exe string, args []string, sc *Scenario, dir *safefile.Dir, opt Options, progress func(string)) Result {
	fail := func(err error) Result {
		return Result{Scenario: sc.Name, Summary: sc.summary(opt), Error: err.Error(), Sandbox: report.SandboxNetns, Dir: dir.Path()}
	}
	orders, _ := json.Marshal(childOrders{Scenario: sc.Name, Dir: dir.Path(), Options: opt})
	cmd, err := netns.Command(ctx, exe, args...)
	if err != nil {
		return fail(err)
	}
	cmd.Env = append(cmd.Env, childEnv+"="+string(orders))
	cmd.ExtraFiles = []*os.File{dir.File()} // childDirFD
	// When the run is stopped, ask the child to finish (it writes what it
	// captured so far) rather than kill it; kill it if it takes too long.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("start scenario in a network namespace: %w", err))
	}
	var last string
	sc2 := bufio.NewScanner(stderr)
	for sc2.Scan() {
		progress(sc2.Text())
		last = sc2.Text()
	}
	err = cmd.Wait()
	r, rerr := report.ReadResult(dir)
	if rerr != nil {
		msg := fmt.Sprintf("scenario process ended (%v) without a result", err)
		if last != "" {
			msg += ": " + last
		}
		return fail(errors.New(msg))
	}
	return *r
}

// matchOptions returns how a run's segments are matched: a client of the
// user's may open more connections than its first, which is the one judged.
func matchOptions(opt Options) expect.Options {
	return expect.Options{IgnoreOtherStreams: opt.ExternalClient()}
}

// runScenario records one scenario, judges it and writes its artifacts.
func runScenario(ctx context.Context, sc *Scenario, dir *safefile.Dir, opt Options, addr, filter string, sandbox report.Sandbox, progress func(string)) Result {
	r := Result{Scenario: sc.Name, Summary: sc.summary(opt), Sandbox: sandbox, Dir: dir.Path()}
	if sc.Wait != nil {
		r.WaitSeconds = sc.Wait(opt).Seconds()
	}
	start := time.Now()
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	mode := opt.Capture
	if mode == "" {
		mode = CaptureLab
	}
	r.Capture = string(mode)
	nw, closeNetwork, err := newNetwork(ctx, sc, opt, addr, filter)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer closeNetwork()
	r.Network, r.Path, r.Mechanism, r.Seed = nw.kind, nw.path, string(nw.mechanism), nw.seed
	if mode != CaptureLab {
		rec, err := recordWithout(ctx, sc, opt, dir, nw, progress)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		r.Drops, r.Events, r.Metrics = rec.drops, rec.events, rec.metrics
		if rec.err != nil {
			r.Error = rec.err.Error()
		}
		r.Pass = r.Error == "" && r.Drops == 0
		return r
	}
	rec, err := record(ctx, sc, opt, dir, nw, progress)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Frames, r.Drops, r.Events, r.Interrupted = len(rec.packets), rec.drops, rec.events, rec.interrupted
	nw.markScripted(rec.packets)
	r.Metrics = rec.metrics
	if rec.err != nil {
		r.Error = rec.err.Error()
	}
	for i := range rec.packets {
		if rec.packets[i].TCP {
			r.Segments++
		}
	}
	steps := sc.Steps(opt)
	v := expect.Match(sc.Name, steps, rec.packets, matchOptions(opt))
	var account *kernelAccount
	if rec.kernel != nil {
		account = rec.kernel.account(rec.packets, opt.Lang)
	}
	account.judgeSteps(sc.Name, &v, rec.packets)
	r.Mismatches = v.Mismatches
	if rec.noConversation {
		// The error says why; the steps it left unmatched say nothing more.
		r.Mismatches = nil
	}
	r.Pass = v.Pass && r.Error == "" && r.Drops == 0
	r.Seconds = time.Since(start).Seconds()
	run := &report.Run{Result: &r, Steps: steps, Verdict: &v, Packets: rec.packets, Link: rec.link, Lang: opt.Lang, Logs: opt.peerLogs()}
	if account != nil {
		account.result(&r, run)
		if err := account.judge(&r, rec.packets, sc.HighRate); err != nil && !rec.noConversation {
			r.Fail(err)
		}
	}
	if len(nw.others) > 0 {
		run.Points = []capture.Point{{Name: nw.name(), Link: rec.link}}
		for i, pt := range nw.others {
			run.Points = append(run.Points, capture.Point{Name: pt.name, Link: rec.links[i]})
		}
		run.Others = rec.others
		if seen := nw.router.packets(len(run.Points)); seen != nil {
			run.Points = append(run.Points, capture.Point{Name: "router (delay line)", Link: layers.LinkTypeRaw})
			run.Others = append(run.Others, seen)
		}
	}
	if err := report.Write(dir, run); err != nil {
		r.Fail(err)
	}
	return r
}
