package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/report"
)

// Main is the main function of a program that runs scenarios: tcplab's
// own, or yours with your own scenarios. It runs the scenario a parent
// asked for when this process is one of Run's children (see InChild);
// otherwise it runs the command line (list, run, check, help) with the
// same flags and artifacts as tcplab, and exits with its status: 0 pass,
// 1 fail, 2 usage, 130 interrupted.
//
//	func main() { lab.Main(myscenarios.Teardown()) }
func Main(list ...*Scenario) {
	if InChild() {
		os.Exit(RunChild(list))
	}
	os.Exit(Command(filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr, list))
}

// Exit statuses of Command.
const (
	ExitPass        = 0
	ExitFail        = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// Command runs one command line of a scenario program called prog over
// the scenarios list, writing to stdout and stderr, and returns its exit
// status.
func Command(prog string, args []string, stdout, stderr io.Writer, list []*Scenario) int {
	usage := fmt.Sprintf(commandUsage, prog)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	var err error
	switch args[0] {
	case "list":
		err = listCommand(args[1:], stdout, list)
	case "run":
		err = runCommand(args[1:], stdout, stderr, list)
	case "check":
		err = checkCommand(args[1:], stdout, list)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return ExitPass
	default:
		err = fmt.Errorf("%w: unknown command %q; run '%s help' for the list", ErrUsage, args[0], prog)
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return ExitPass
	}
	return ExitStatus(prog, err, stderr)
}

// ExitStatus prints err, when not nil, as prog's one-line error on stderr
// and returns the exit status it calls for.
func ExitStatus(prog string, err error, stderr io.Writer) int {
	if err == nil {
		return ExitPass
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	switch {
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	case errors.Is(err, ErrUsage):
		return ExitUsage
	}
	return ExitFail
}

const commandUsage = `%[1]s: TCP scenarios on a private loopback

Commands:
  %[1]s list                            list the scenarios
  %[1]s run [NAME...] [-out DIR] [-parallel N] [-keepalive-idle D] [-lang en|zh] [-no-sandbox]
       [-server CMD -port N] [-client CMD]  run scenarios: capture, annotate, match;
                                        -server/-client put your own program in place of a peer
  %[1]s check -scenario NAME FILE       match a capture of any program against a scenario's sequence
  %[1]s help                            show this help
`

// ErrUsage marks a command-line mistake: exit status 2.
var ErrUsage = errors.New("usage")

// listCommand implements "list".
func listCommand(args []string, stdout io.Writer, all []*Scenario) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: list takes no arguments", ErrUsage)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, sc := range all {
		fmt.Fprintf(tw, "%s\t%s\n", sc.Name, sc.Summary)
	}
	return tw.Flush()
}

// pick returns the scenarios named, or all of them when none is.
func pick(all []*Scenario, names []string) ([]*Scenario, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []*Scenario
	for _, n := range names {
		sc := Find(all, n)
		if sc == nil {
			var known []string
			for _, s := range all {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("%w: unknown scenario %q; known: %s", ErrUsage, n, strings.Join(known, ", "))
		}
		out = append(out, sc)
	}
	return out, nil
}

// ErrFailed is returned when a scenario or a check did not pass: exit
// status 1.
var ErrFailed = errors.New("failed")

// runCommand implements "run".
func runCommand(args []string, stdout, stderr io.Writer, all []*Scenario) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("out", "out", "write artifacts under `DIR`/SCENARIO")
	parallel := fs.Int("parallel", 0, "run at most `N` scenarios at once (0: all)")
	idle := fs.Duration("keepalive-idle", time.Second, "keep-alive idle time; 8s is the blog post's")
	lang := fs.String("lang", "en", "language of the walkthrough: en or zh")
	server := fs.String("server", "", "run your own server `CMD` (a shell command) in the namespace instead of the scenario's; it must listen on -port")
	client := fs.String("client", "", "run your own client `CMD` (a shell command; $TCPLAB_SERVER is the server's address) in the namespace instead of the scenario's")
	port := fs.Int("port", Port, "the server's `PORT`")
	captureWith := fs.String("capture", "tcplab", "what captures: tcplab, or tcpdump or none to measure what capturing costs (make bench)")
	noSandbox := fs.Bool("no-sandbox", false, "capture on the host's lo, filtered on each scenario's port, instead of a private namespace")
	if err := parseInterspersed(fs, args); err != nil {
		return fmt.Errorf("%w: run: %w", ErrUsage, err)
	}
	language, err := expect.ParseLang(*lang)
	if err != nil {
		return fmt.Errorf("%w: -lang: %w", ErrUsage, err)
	}
	if *idle <= 0 {
		return fmt.Errorf("%w: -keepalive-idle must be positive", ErrUsage)
	}
	capt, err := ParseCaptureMode(*captureWith)
	if err != nil {
		return fmt.Errorf("%w: -capture: %w", ErrUsage, err)
	}
	if *port <= 0 || *port > 65535 {
		return fmt.Errorf("%w: -port %d: use 1-65535", ErrUsage, *port)
	}
	list, err := pick(all, fs.Args())
	if err != nil {
		return err
	}
	opt := Options{KeepAliveIdle: *idle, Lang: language, ServerCommand: *server, ClientCommand: *client, Port: *port, Capture: capt}
	for _, peer := range []struct {
		flag string
		opt  Options
	}{{"-client", Options{ClientCommand: *client}}, {"-server", Options{ServerCommand: *server}}} {
		if !peer.opt.External() && !peer.opt.ExternalClient() {
			continue
		}
		if len(fs.Args()) == 0 {
			return fmt.Errorf("%w: %s needs the scenario to run: name it after the flags", ErrUsage, peer.flag)
		}
		for _, sc := range list {
			if err := externalPeers(sc, peer.opt, all); err != nil {
				return fmt.Errorf("%w: %w", ErrUsage, err)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	results, err := Run(ctx, list, Config{Out: *out, Parallel: *parallel, NoSandbox: *noSandbox, Progress: stderr, Options: opt})
	if err != nil {
		return err
	}
	if err := report.WriteIndex(*out, results); err != nil {
		fmt.Fprintf(stderr, "index: %v\n", err)
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSEGMENTS\tRESULT\tTIME\tARTIFACTS")
	failed, interrupted := 0, 0
	for _, r := range results {
		verdict := "pass"
		switch {
		case r.Interrupted:
			verdict, interrupted = "interrupted", interrupted+1
		case !r.Pass:
			verdict, failed = "FAIL", failed+1
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.2fs\t%s\n", r.Scenario, r.Segments, verdict, r.Seconds, r.Dir)
	}
	tw.Flush()
	tally := fmt.Sprintf("%d failed", failed)
	if interrupted > 0 {
		tally += fmt.Sprintf(", %d interrupted", interrupted)
	}
	noun := "scenarios"
	if len(results) == 1 {
		noun = "scenario"
	}
	fmt.Fprintf(stdout, "\n%d %s, %s, %.2fs wall time; open %s\n", len(results), noun, tally, time.Since(start).Seconds(),
		filepath.Join(*out, report.IndexFile))
	for _, r := range results {
		if f := r.Failure(); f != "" {
			fmt.Fprintf(stdout, "\n%s", f)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: what was captured is kept in %s", ErrInterrupted, *out)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d scenarios", ErrFailed, failed, len(results))
	}
	return nil
}

// ErrInterrupted is returned when SIGINT or SIGTERM stopped a run: exit
// status 130, as a shell reports a command killed by SIGINT.
var ErrInterrupted = errors.New("interrupted")

// checkCommand implements "check -scenario NAME FILE": match an existing
// capture against a scenario's expected segments.
func checkCommand(args []string, stdout io.Writer, all []*Scenario) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("scenario", "", "scenario whose expected segments the capture must show")
	idle := fs.Duration("keepalive-idle", time.Second, "keep-alive idle time the capture was made with")
	strict := fs.Bool("strict", false, "fail on connections the scenario does not mention")
	if err := parseInterspersed(fs, args); err != nil {
		return fmt.Errorf("%w: check: %w", ErrUsage, err)
	}
	if *name == "" || fs.NArg() != 1 {
		return fmt.Errorf("%w: tcplab check -scenario NAME FILE", ErrUsage)
	}
	list, err := pick(all, []string{*name})
	if err != nil {
		return err
	}
	v, err := CheckFile(fs.Arg(0), list[0], Options{KeepAliveIdle: *idle}, expect.Options{IgnoreOtherStreams: !*strict})
	if err != nil {
		return err
	}
	if !v.Pass {
		for i := range v.Mismatches {
			fmt.Fprintln(stdout, v.Mismatches[i].Error())
		}
		return fmt.Errorf("check %w: %s does not show the %s sequence", ErrFailed, fs.Arg(0), *name)
	}
	fmt.Fprintf(stdout, "%s: the %s sequence matches (%d steps)\n", fs.Arg(0), *name, len(list[0].Steps(Options{KeepAliveIdle: *idle})))
	return nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, as users type them.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(pos)
}
