package lab

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tcplab/tcplab/internal/annotatecmd"
	"github.com/tcplab/tcplab/internal/cli"
	"github.com/tcplab/tcplab/lab/pkt"
	"github.com/tcplab/tcplab/lab/report"
	"github.com/tcplab/tcplab/lab/scripted"
)

// pktCommand implements "pkt": run packetdrill scripts against the real
// kernel, the remote side played by package scripted.
func pktCommand(prog string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pkt", flag.ContinueOnError)
	out := fs.String("out", "out/pkt", "write each script's artifacts under `DIR`/SCRIPT")
	parallel := fs.Int("parallel", 1, "run at most `N` scripts at once, each in a network namespace of its own (0: all)")
	junit := fs.String("junit", "", "also write the results as JUnit XML to `FILE`, one testcase per script (and per family of -ip_version's list)")
	floor := fs.Duration("floor", 25*time.Millisecond, "with -tolerance floor (which giving -floor implies), the least timing tolerance, wider than a script's\n--tolerance_usecs on a loaded machine; 0: packetdrill's rule exactly")
	tolMode := fs.String("tolerance", "packetdrill", "the timing rule: packetdrill (the script's exactly, as packetdrill times it), auto (the script's widened\nby the scheduling noise measured before each script, which the summary says: for a busy machine),\nor floor (the script's, at least -floor)")
	// packetdrill's own flags, --name=value, over the scripts' headers
	// as in packetdrill.
	pdFlags := []struct{ name, usage string }{
		{"ip_version", "packetdrill's `--ip_version`: ipv4, ipv6 or ipv4-mapped-ipv6; a comma-separated list runs each script once per family"},
		{"tolerance_usecs", "packetdrill's `--tolerance_usecs`: the timing tolerance in microseconds (default 4000)"},
		{"tolerance_percent", "packetdrill's `--tolerance_percent`: the tolerance as a share of the gap since the previous event (default 12.5)"},
		{"mtu", "packetdrill's `--mtu`: the device's MTU (default 1500)"},
		{"init_scripts", "packetdrill's `--init_scripts`: commands, comma-separated, run with /bin/sh in each script's namespace and folder before it plays"},
		{"local_ip", "packetdrill's `--local_ip`: the kernel's address on the script's device (default 192.168.0.101/24, fd3d:fa7b:d17d::1/48)"},
		{"remote_ip", "packetdrill's `--remote_ip`: the script's address (default 192.168.0.2, fd3d:fa7b:d17d::2), routed through\nthe device in the script's namespace when outside the kernel's prefix"},
		{"netmask_ip", "packetdrill's `--netmask_ip`: the IPv4 netmask of --local_ip's prefix (default 255.255.0.0)"},
		{"gateway_ip", "packetdrill's `--gateway_ip`: taken and checked; the script's address is routed through the device,\nwhich needs no gateway"},
		{"bind_port", "packetdrill's `--bind_port`: the port a socket bound to ... gets, the kernel's (default 8080)"},
		{"connect_port", "packetdrill's `--connect_port`: the port a connect to ... goes to, the script's (default 8080)"},
		{"tcp_ts_tick_usecs", "packetdrill's `--tcp_ts_tick_usecs`: the microseconds of a tick of the kernel's TS val, whose TS values are then\nchecked against the script's, within the timing tolerance (default 0: not checked)"},
	}
	for _, f := range pdFlags {
		fs.String(f.name, "", f.usage)
	}
	// and the ones that take no value.
	pdBools := []struct{ name, usage string }{
		{"tcp_ts_ecr_scaled", "packetdrill's `--tcp_ts_ecr_scaled`: a TS ecr of the script's that echoes none of the kernel's TS values is\ntaken to the kernel's clock from the first it sent, as far from it as from the script's first"},
		{"strict_segments", "packetdrill's `--strict_segments`: an expected packet must come as one segment, not as several that add up to it"},
		{"send_omit_free", "packetdrill's `--send_omit_free`, which its run_all.py passes: taken (each zerocopy send here writes from a buffer\nof its own, never reused)"},
	}
	for _, f := range pdBools {
		fs.Bool(f.name, false, f.usage)
	}
	// packetdrill's -D, in the order given, after the scripts' own
	// --define lines, which they overwrite.
	var defines []string
	addDefine := func(v string) error { defines = append(defines, v); return nil }
	fs.Func("D", "packetdrill's `-D NAME=VALUE`: in the scripts' system calls, Fast Open cookies and ICMP types and codes,\nthe word NAME reads as VALUE (a symbol, a number or a \"string\"), over a script's own --define=NAME=VALUE; give it once per name", addDefine)
	fs.Func("define", "packetdrill's `--define NAME=VALUE`, the same as -D", addDefine)
	cpus := fs.String("cpus", "one", "the CPUs the scripts run on: one (the first this process may use, as packetdrill's single thread\nruns on one: a timer the kernel arms for the next tick then fires on it) or all")
	toGo := fs.Bool("go", false, "print each script as a Go test using package scripted instead of running it")
	dryRun := fs.Bool("dry_run", false, "packetdrill's `--dry_run`: parse and check each script, and say whether tcplab plays it or\nskips it (the line and the reason), without running it; exit 0 when all parse")
	help := cli.Help{
		Usage: prog + " pkt [flags] FILE.pkt...",
		About: "Run packetdrill scripts as packetdrill does on Linux: each in a network namespace of its own, the\n" +
			"kernel at 192.168.0.101 and the script at 192.168.0.2 (port 8080), backtick commands in the script's\n" +
			"namespace and folder. A packet or call that differs fails the script with its line, expected and\n" +
			"actual; a construct tcplab does not play yet skips it with the reason. Each script's artifacts go to\n" +
			"DIR/SCRIPT/{capture.pcapng (each packet commented with its script line), walkthrough.md, ladder.svg,\n" +
			"result.json}.\n" +
			"Exit status: 0 all passed, 1 a script failed or was skipped, 2 usage, 130 interrupted.",
		Examples: []string{
			prog + " pkt lab/pkt/testdata/server_basic.pkt",
			prog + " pkt -parallel 4 -junit pkt.xml scripts/*.pkt",
			prog + " pkt -go lab/pkt/testdata/client_basic.pkt > client_test.go",
		},
	}
	if err := cli.Parse(fs, args, help, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: pkt: %w (see %s pkt -h)", ErrUsage, err, prog)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: pkt needs the scripts to run: %s pkt FILE.pkt...", ErrUsage, prog)
	}
	if *parallel < 0 {
		return fmt.Errorf("%w: -parallel %d: use 0 (all at once) or a number of scripts at a time", ErrUsage, *parallel)
	}
	if *cpus != "one" && *cpus != "all" {
		return fmt.Errorf("%w: -cpus %s: use one or all", ErrUsage, *cpus)
	}
	if *floor < 0 {
		return fmt.Errorf("%w: -floor %v: use 0 (packetdrill's rule) or a positive duration", ErrUsage, *floor)
	}
	if *junit != "" {
		if dir := filepath.Dir(*junit); !isDir(dir) {
			return fmt.Errorf("%w: -junit %s: no directory %s; create it or choose another file", ErrUsage, *junit, dir)
		}
		if isDir(*junit) {
			return fmt.Errorf("%w: -junit %s is a directory; name the file to write, such as %s", ErrUsage, *junit, filepath.Join(*junit, "junit.xml"))
		}
	}
	var opts []pkt.Option
	floorSet, modeSet := false, false
	fs.Visit(func(f *flag.Flag) {
		floorSet = floorSet || f.Name == "floor"
		modeSet = modeSet || f.Name == "tolerance"
		for _, p := range pdFlags {
			if p.name == f.Name {
				opts = append(opts, pkt.Option{Name: f.Name, Value: f.Value.String()})
			}
		}
		for _, p := range pdBools {
			if p.name == f.Name && f.Value.String() == "true" {
				opts = append(opts, pkt.Option{Name: f.Name})
			}
		}
	})
	for _, d := range defines {
		opts = append(opts, pkt.Option{Name: "define", Value: d})
	}
	// -ip_version given a list runs each script once per family, the
	// family in each result's name.
	families := []string{""}
	for i, o := range opts {
		if o.Name == "ip_version" && strings.Contains(o.Value, ",") {
			families = strings.Split(o.Value, ",")
			opts = append(opts[:i:i], opts[i+1:]...)
			break
		}
	}
	seen := map[string]bool{}
	for _, fam := range families {
		if seen[fam] {
			return fmt.Errorf("%w: --ip_version lists %s twice; name each family once", ErrUsage, fam)
		}
		seen[fam] = true
		check := opts
		if fam != "" {
			check = append(opts[:len(opts):len(opts)], pkt.Option{Name: "ip_version", Value: fam})
		}
		if err := pkt.CheckOptions(check); err != nil {
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
	}
	if *toGo && len(families) > 1 {
		return fmt.Errorf("%w: -go writes one family: give --ip_version one of %s", ErrUsage, strings.Join(families, ", "))
	}
	// Every script is read before any runs: a missing one is a usage
	// error. One that does not parse fails, as under packetdrill, and
	// the others run all the same: its syntax error is its unparsed.
	var scripts []*pkt.Script
	var dirs, labels []string
	var unparsed []*pkt.SyntaxError
	scriptDirs := dirNames(*out, fs.Args())
	for i, name := range fs.Args() {
		s, err := pkt.ParseFile(name)
		var serr *pkt.SyntaxError
		switch {
		case errors.As(err, &serr):
			s = &pkt.Script{Path: name}
		case err != nil:
			return fmt.Errorf("%w: %w", ErrUsage, err)
		}
		// The command line's flags come after the script's header:
		// packetdrill lets them overwrite it.
		s.Options = append(s.Options, opts...)
		for _, fam := range families {
			unparsed = append(unparsed, serr)
			if fam == "" {
				scripts, dirs, labels = append(scripts, s), append(dirs, scriptDirs[i]), append(labels, s.Path)
				continue
			}
			c := *s
			c.Options = append(s.Options[:len(s.Options):len(s.Options)], pkt.Option{Name: "ip_version", Value: fam})
			scripts = append(scripts, &c)
			dirs = append(dirs, filepath.Join(scriptDirs[i], fam))
			labels = append(labels, familyLabel(s.Path, fam))
		}
	}
	cfg := pkt.Config{Floor: *floor}
	if *floor == 0 {
		cfg.Floor = -1
	}
	// -floor alone asks for the floor's rule.
	if floorSet && !modeSet {
		*tolMode = "floor"
	}
	if floorSet && *tolMode != "floor" {
		return fmt.Errorf("%w: -floor goes with -tolerance floor, not %s", ErrUsage, *tolMode)
	}
	switch *tolMode {
	case "floor":
	case "packetdrill":
		cfg.Floor = -1
	case "auto":
		cfg.Auto = true
	default:
		return fmt.Errorf("%w: -tolerance %s: use floor, packetdrill or auto", ErrUsage, *tolMode)
	}
	if *dryRun {
		broken := 0
		for i, s := range scripts {
			if unparsed[i] != nil {
				broken++
				if _, err := fmt.Fprintf(stdout, "%s: does not parse: %v\n", labels[i], unparsed[i]); err != nil {
					return err
				}
				continue
			}
			verdict := "plays it"
			if u := pkt.Check(s); u != nil {
				verdict = fmt.Sprintf("skips it at line %d: %s", u.Line, u.Reason)
				if u.Bad {
					verdict = fmt.Sprintf("fails it at line %d: %s", u.Line, u.Reason)
				}
			}
			if _, err := fmt.Fprintf(stdout, "%s: parses; tcplab %s\n", labels[i], verdict); err != nil {
				return err
			}
		}
		if broken > 0 {
			return fmt.Errorf("%w: %d of %d scripts do not parse", ErrFailed, broken, len(scripts))
		}
		return nil
	}
	if *toGo {
		for i, s := range scripts {
			if unparsed[i] != nil {
				return unparsed[i]
			}
			src, err := pkt.Go(s, cfg.Floor)
			if err != nil {
				return err
			}
			if _, err := stdout.Write(src); err != nil {
				return err
			}
		}
		return nil
	}
	// The scripts run on one CPU, as packetdrill's do (see
	// scripted.OneCPU), and the tick is measured there.
	if *cpus == "one" {
		_, undo, err := scripted.OneCPU()
		if err != nil {
			return fmt.Errorf("%w; or give -cpus all", err)
		}
		defer undo()
	}
	// The kernel's tick, once for all the scripts that run (-go and
	// --dry_run, above, run none): each starts just after one, and
	// -tolerance auto allows for it.
	tick, err := scripted.MeasureTick(8)
	if err != nil {
		return err
	}
	cfg.Tick = tick
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("cannot write the artifacts: %w; choose a writable directory with -out DIR", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	results := runScripts(ctx, scripts, unparsed, dirs, labels, cfg, *parallel, stderr)
	failed, skipped := 0, 0
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCRIPT\tRESULT\tTIME\tTOLERANCE\tARTIFACTS")
	for _, r := range results {
		switch r.Status {
		case pkt.Failed:
			failed++
		case pkt.Skipped:
			skipped++
		}
		tol := "-"
		if r.Tolerance > 0 {
			tol = r.Tolerance.String()
		}
		switch {
		case r.Widened > 0:
			tol += " (noise +" + r.Noise.String() + ", during +" + r.Widened.Round(time.Microsecond).String() + ")"
		case r.Noise > 0:
			tol += " (noise +" + r.Noise.String() + ")"
		}
		dir := r.dir
		if dir == "" {
			dir = "-" // a script that did not parse has none
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2fs\t%s\t%s\n", r.label, r.Status, r.Duration.Seconds(), tol, dir)
	}
	tw.Flush()
	noun := "scripts"
	if len(results) == 1 {
		noun = "script"
	}
	fmt.Fprintf(stdout, "\n%d %s, %d failed, %d skipped, %.2fs wall time\n", len(results), noun, failed, skipped, time.Since(start).Seconds())
	if cfg.Auto {
		fmt.Fprintln(stdout, "-tolerance auto: each script's tolerance is its own widened by the latest timer wake-up of 1 ms measured in its namespace before it played, at tcplab's priority and at nice 0 (noise); an event later than that, while a thread at nice 0 waited as long for a CPU, is allowed that much more (during: the most any event was)")
		if cfg.Tick > time.Millisecond {
			fmt.Fprintf(stdout, "-tolerance auto: this kernel's tick is %v (%d Hz) where packetdrill's timings are a 1000 Hz kernel's, and its timer wheel may fire a timer that much later: each event is allowed as much more as the wheel adds to a timer as long as its gap since the event before (%v at 40 ms, %v at 300 ms)\n",
				cfg.Tick, time.Second/cfg.Tick, scripted.TickLate(40*time.Millisecond, cfg.Tick), scripted.TickLate(300*time.Millisecond, cfg.Tick))
		}
	}
	for _, r := range results {
		if r.Status == pkt.Passed {
			continue
		}
		word := "skipped"
		if r.Status == pkt.Failed {
			word = "failed"
		}
		fmt.Fprintf(stdout, "\n%s %s\n", r.label, word)
		if r.Event != "" {
			fmt.Fprintf(stdout, "%s:%d: %s\n", r.Path, r.Line, r.Event)
		}
		fmt.Fprintf(stdout, "%s:%d: %s\n", r.Path, r.Line, r.Reason)
		if r.Status == pkt.Failed && r.Tolerance > 0 {
			fmt.Fprintf(stdout, "(timing tolerance %v: %s)\n", r.Tolerance, r.Why)
		}
	}
	also := ""
	if *junit != "" {
		if err := report.WriteJUnit(*junit, pktJUnit(results)); err != nil {
			also = fmt.Sprintf("; -junit: %v", err)
		}
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w: what was captured is kept in %s%s", ErrInterrupted, *out, also)
	case failed > 0 || skipped > 0:
		return fmt.Errorf("%w: %d failed, %d skipped of %d scripts%s", ErrFailed, failed, skipped, len(results), also)
	case also != "":
		return fmt.Errorf("the scripts passed, but the JUnit report was not written%s", also)
	}
	return nil
}

// familyLabel names a script's run in one address family of several,
// as the summary and the JUnit testcase show it: "x.pkt [ipv6]".
func familyLabel(path, family string) string { return path + " [" + family + "]" }

// dirNames gives each script its artifacts' folder under out: its base
// name without .pkt, numbered when two scripts share one.
func dirNames(out string, files []string) []string {
	seen := map[string]int{}
	dirs := make([]string, len(files))
	for i, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pkt")
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s-%d", name, n)
		}
		dirs[i] = filepath.Join(out, name)
	}
	return dirs
}

// pktResult is a script's result and where its artifacts are.
type pktResult struct {
	*pkt.Result
	dir   string // empty for a script that did not parse: it has none
	label string // the script's path, and its family when several run
	warn  string // what went wrong writing an artifact that the verdict does not count
}

// runScripts runs the scripts, parallel at a time (0: all), and returns
// their results in the scripts' order; one that did not parse (its
// unparsed is not nil) fails at the line of its syntax error, and runs
// not.
func runScripts(ctx context.Context, scripts []*pkt.Script, unparsed []*pkt.SyntaxError, dirs, labels []string, cfg pkt.Config, parallel int, progress io.Writer) []pktResult {
	if parallel == 0 || parallel > len(scripts) {
		parallel = len(scripts)
	}
	results := make([]pktResult, len(scripts))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, s := range scripts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var r pktResult
			if e := unparsed[i]; e != nil {
				r = pktResult{Result: &pkt.Result{Path: s.Path, Status: pkt.Failed, Line: e.Line, Reason: "the script does not parse: " + e.Msg}}
			} else {
				r = runScript(ctx, s, dirs[i], cfg)
			}
			r.label = labels[i]
			results[i] = r
			mu.Lock()
			if r.warn != "" {
				fmt.Fprintf(progress, "%s: %s\n", s.Path, r.warn)
			}
			fmt.Fprintf(progress, "%s: %s (%.2fs)\n", r.label, r.Status, r.Duration.Seconds())
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

// runScript runs one script and writes its artifacts in dir.
func runScript(ctx context.Context, s *pkt.Script, dir string, cfg pkt.Config) pktResult {
	fail := func(err error) pktResult {
		return pktResult{Result: &pkt.Result{Path: s.Path, Status: pkt.Failed, Reason: err.Error()}, dir: dir}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	for _, name := range []string{"capture.pcapng", "walkthrough.md", "ladder.svg", "result.json"} {
		os.Remove(filepath.Join(dir, name))
	}
	pcap := filepath.Join(dir, "capture.pcapng")
	f, err := os.Create(pcap)
	if err != nil {
		return fail(err)
	}
	cfg.Pcap = f
	r := pkt.Run(ctx, s, cfg)
	if err := f.Close(); err != nil && r.Status == pkt.Passed {
		r.Status, r.Reason = pkt.Failed, fmt.Sprintf("write %s: %v", pcap, err)
	}
	res := pktResult{Result: r, dir: dir}
	// A script skipped, or failed before it played (a wrong option, a
	// bad name), has no capture: the file is empty.
	if st, err := os.Stat(pcap); r.Status == pkt.Skipped || err == nil && st.Size() == 0 {
		os.Remove(pcap)
	} else {
		// The walkthrough and the ladder are annotate's, of the capture.
		if err := annotatecmd.Run("tcplab", []string{"-ladder", filepath.Join(dir, "ladder.svg"), "-walkthrough", filepath.Join(dir, "walkthrough.md"), pcap}, io.Discard); err != nil {
			res.warn = fmt.Sprintf("annotate %s: %v", pcap, err)
		}
	}
	b, err := json.MarshalIndent(pktJSON(r), "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "result.json"), append(b, '\n'), 0o644)
	}
	if err != nil && r.Status == pkt.Passed {
		r.Status, r.Reason = pkt.Failed, fmt.Sprintf("write result.json: %v", err)
	}
	return res
}

// pktJSON is result.json: the verdict, where and why, the tolerance
// applied and every step with its times.
func pktJSON(r *pkt.Result) any {
	type step struct {
		Line      int     `json:"line"`
		Event     string  `json:"event"`
		Scheduled float64 `json:"scheduled_s"`
		Actual    float64 `json:"actual_s"`
		Note      string  `json:"note"`
	}
	steps := make([]step, len(r.Steps))
	for i, s := range r.Steps {
		steps[i] = step{s.Line, s.Event, s.Scheduled.Seconds(), s.Actual.Seconds(), s.Note}
	}
	return struct {
		Script    string  `json:"script"`
		Result    string  `json:"result"`
		Line      int     `json:"line,omitempty"`
		Event     string  `json:"event,omitempty"`
		Reason    string  `json:"reason,omitempty"`
		Tolerance float64 `json:"tolerance_s,omitempty"`
		Why       string  `json:"tolerance_from,omitempty"`
		Noise     float64 `json:"noise_s,omitempty"`
		Widened   float64 `json:"widened_by_noise_s,omitempty"`
		AfterTick float64 `json:"started_after_tick_s,omitempty"`
		Seconds   float64 `json:"seconds"`
		Steps     []step  `json:"steps"`
	}{r.Path, r.Status.String(), r.Line, r.Event, r.Reason, r.Tolerance.Seconds(), r.Why, r.Noise.Seconds(), r.Widened.Seconds(), r.AfterTick.Seconds(), r.Duration.Seconds(), steps}
}

// pktJUnit is the JUnit report of a pkt run: one testcase per script,
// and per address family when several ran ("x.pkt [ipv6]").
func pktJUnit(results []pktResult) *report.JUnit {
	s := report.JUnitSuite{Name: "tcplab pkt"}
	for _, r := range results {
		jc := report.JUnitCase{Name: r.label, Classname: "tcplab.pkt", Time: r.Duration.Seconds(), SystemOut: r.dir}
		msg := fmt.Sprintf("%s:%d: %s", r.Path, r.Line, strings.SplitN(r.Reason, "\n", 2)[0])
		switch r.Status {
		case pkt.Failed:
			jc.Failure = &report.JUnitProblem{Message: msg, Type: "script", Text: r.Event + "\n" + r.Reason}
		case pkt.Skipped:
			jc.Skipped = &report.JUnitProblem{Message: msg}
		}
		s.Cases = append(s.Cases, jc)
	}
	return &report.JUnit{Name: "tcplab pkt", Suites: []report.JUnitSuite{s}}
}
