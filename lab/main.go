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
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tcplab/tcplab/internal/cli"
	"github.com/tcplab/tcplab/internal/safefile"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/path"
	"github.com/tcplab/tcplab/lab/property"
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
		err = listCommand(prog, args[1:], stdout, list)
	case "run":
		err = runCommand(prog, args[1:], stdout, stderr, list)
	case "check":
		err = checkCommand(prog, args[1:], stdout, list)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return ExitPass
	default:
		err = fmt.Errorf("%w: unknown command %q; run '%s help' for the list", ErrUsage, args[0], prog)
	}
	if errors.Is(err, flag.ErrHelp) {
		// The command printed its own help.
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
func listCommand(prog string, args []string, stdout io.Writer, all []*Scenario) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	help := cli.Help{Usage: prog + " list", About: "List the scenarios, each with what it shows.", Examples: []string{prog + " list"}}
	if err := cli.Parse(fs, args, help, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
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
func runCommand(prog string, args []string, stdout, stderr io.Writer, all []*Scenario) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	out := fs.String("out", "out", "write artifacts under `DIR`/SCENARIO")
	parallel := fs.Int("parallel", 0, "run at most `N` scenarios at once (0: all)")
	idle := fs.Duration("keepalive-idle", time.Second, "keep-alive idle time; 8s is the blog post's")
	lang := fs.String("lang", "en", "language of the walkthrough: en or zh")
	server := fs.String("server", "", "run your own server `CMD` (a shell command) in the namespace instead of the scenario's; it must listen on -port")
	client := fs.String("client", "", "run your own client `CMD` (a shell command; $TCPLAB_SERVER is the server's address) in the namespace instead of the scenario's")
	port := fs.Int("port", Port, "the server's `PORT`; with -no-sandbox, scenarios get ports from 18000 up unless it is given")
	captureWith := fs.String("capture", "tcplab", "what captures: tcplab, or tcpdump or none to measure what capturing costs (make bench)")
	junit := fs.String("junit", "", "also write the results as JUnit XML to `FILE`, for CI")
	ipv6 := fs.Bool("6", false, "run over IPv6: the server on [::1]")
	noSandbox := fs.Bool("no-sandbox", false, "capture on the host's lo, filtered on each scenario's port, instead of a private namespace")
	pathDesc := fs.String("path", "", "run the scenarios across a router whose path has these one-way `CONDITIONS`: delay=20ms,jitter=2ms,loss=1%,reorder=2%,duplicate=1%,rate=10mbit; c2s: or s2c: before a key sets one direction")
	seed := fs.Uint64("seed", 1, "seed of the path's random decisions (loss, jitter, reordering, duplication), to replay a run")
	help := cli.Help{
		Usage: prog + " run [flags] [SCENARIO...]",
		About: "Run the scenarios named, or all of them, each in a network namespace of its own: the peers talk,\n" +
			"the lab captures, annotates and matches the segments against the scenario's steps, and writes\n" +
			"DIR/SCENARIO/{capture.pcapng,walkthrough.md,walkthrough.html,ladder.svg,result.json}, tseq.svg when data\n" +
			"flows, points.pcapng on two hosts, and DIR/index.html. A new run of a scenario first removes those files\n" +
			"(and server.log, client.log) from DIR/SCENARIO. Each file is made inside the folder under a new name and\n" +
			"renamed in place, never through a symlink; a symlink on DIR's path is followed, and said, only when it\n" +
			"is yours or root's, and refused otherwise.\n" +
			"Exit status: 0 all passed, 1 a scenario failed, 2 usage, 130 interrupted.",
		Examples: []string{
			prog + " run",
			prog + " run -keepalive-idle 8s -lang zh walkthrough",
			prog + " run -path 'delay=20ms,loss=1%' -seed 7 walkthrough",
			prog + " run -server 'python3 -m http.server 8000 --bind 127.0.0.1' -port 8000 halfclose",
			prog + " run -client 'curl -s http://$TCPLAB_SERVER/blog/ http://$TCPLAB_SERVER/blog/' http-real-client",
		},
	}
	if err := cli.Parse(fs, args, help, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: run: %w (see %s run -h)", ErrUsage, err, prog)
	}
	language, err := expect.ParseLang(*lang)
	if err != nil {
		return fmt.Errorf("%w: -lang: %w", ErrUsage, err)
	}
	if err := checkIdle(*idle); err != nil {
		return err
	}
	capt, err := ParseCaptureMode(*captureWith)
	if err != nil {
		return fmt.Errorf("%w: -capture: %w", ErrUsage, err)
	}
	if *port <= 0 || *port > 65535 {
		return fmt.Errorf("%w: -port %d: use 1-65535", ErrUsage, *port)
	}
	if *pathDesc != "" {
		if _, err := path.Parse(*pathDesc); err != nil {
			return fmt.Errorf("%w: -path: %w", ErrUsage, err)
		}
		if *noSandbox {
			return fmt.Errorf("%w: -path needs the namespaces of a sandboxed run; drop -no-sandbox", ErrUsage)
		}
	}
	list, err := pick(all, fs.Args())
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		list = leaveOutScripted(list, Options{IPv6: *ipv6, Path: *pathDesc}, *noSandbox, stderr)
	}
	opt := Options{KeepAliveIdle: *idle, Lang: language, ServerCommand: *server, ClientCommand: *client, Capture: capt, IPv6: *ipv6,
		Path: *pathDesc, Seed: *seed}
	fs.Visit(func(f *flag.Flag) {
		// An explicit -port is every scenario's; without it each scenario
		// gets its own port with -no-sandbox, where they share the host's lo.
		if f.Name == "port" {
			opt.Port = *port
		}
	})
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
	outDir, err := safefile.OpenDir(*out, true)
	if err != nil {
		return fmt.Errorf("cannot write the artifacts in %w; choose a writable directory of yours with -out DIR", err)
	}
	outDir.Close()
	if abs, err := filepath.Abs(*out); err == nil && abs != outDir.Resolved() {
		fmt.Fprintf(stderr, "-out %s goes through a symlink: writing in %s\n", *out, outDir.Resolved())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	results, err := Run(ctx, list, Config{Out: *out, Parallel: *parallel, NoSandbox: *noSandbox, Progress: stderr, Options: opt})
	if err != nil {
		return err
	}
	if *junit != "" {
		if err := report.WriteJUnit(*junit, RunJUnit(results)); err != nil {
			fmt.Fprintf(stderr, "-junit: %v\n", err)
		}
	}
	open := "; open " + filepath.Join(*out, report.IndexFile)
	if err := report.WriteIndex(*out, results, language); err != nil {
		fmt.Fprintf(stderr, "index: %v\n", err)
		open = ""
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
	fmt.Fprintf(stdout, "\n%d %s, %s, %.2fs wall time%s\n", len(results), noun, tally, time.Since(start).Seconds(), open)
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

// checkCommand implements "check": judge captures made by any tool
// against a scenario's steps, properties of their connections, or both.
func checkCommand(prog string, args []string, stdout io.Writer, all []*Scenario) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	name := fs.String("scenario", "", "scenario `NAME` whose expected segments the capture must show")
	expectList := fs.String("expect", "", "comma-separated `PROPERTIES` every selected connection must have: "+strings.Join(property.Known(), ", "))
	stream := fs.Int("stream", -1, "check only stream `N` (Wireshark's tcp.stream); -1: every connection")
	port := fs.Int("port", 0, "check only connections with `PORT` at either end; 0: every connection")
	idle := fs.Duration("keepalive-idle", time.Second, "keep-alive idle time the capture was made with (for -scenario)")
	strict := fs.Bool("strict", false, "with -scenario: fail on connections the scenario does not mention")
	junit := fs.String("junit", "", "also write the verdicts as JUnit XML to `FILE`, for CI")
	asJSON := fs.Bool("json", false, "print one JSON verdict object instead of text")
	help := cli.Help{
		Usage: prog + " check (-scenario NAME | -expect PROPERTIES) [flags] FILE...",
		About: "Judge captures (pcap or pcapng, made by tcpdump, tshark, Wireshark or tcplab, of any program):\n" +
			"-scenario matches a scenario's expected steps, -expect checks properties of every connection (or\n" +
			"those -stream or -port select). A failure shows the frames that break it among their neighbours,\n" +
			"packetdrill-style. Exit status: 0 all pass, 1 a check failed or a file could not be read, 2 usage.",
		Examples: []string{
			prog + " check -expect 'handshake,no-rst,closer=server' server.pcap",
			prog + " check -expect 'teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK' -port 8000 -junit junit.xml cap.pcapng",
			prog + " check -scenario halfclose out/halfclose/capture.pcapng",
		},
	}
	if err := cli.Parse(fs, args, help, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: check: %w (see %s check -h)", ErrUsage, err, prog)
	}
	if (*name == "" && *expectList == "") || fs.NArg() == 0 {
		return fmt.Errorf("%w: %s (see %s check -h)", ErrUsage, help.Usage, prog)
	}
	if err := checkIdle(*idle); err != nil {
		return err
	}
	// The capture may be anyone's: the scenario's steps take the peers'
	// lengths from it, so that a capture judged by run -server or -client
	// gets the same verdict here.
	req := CheckRequest{Options: Options{KeepAliveIdle: *idle, AnyPeers: true}, Strict: *strict, Stream: *stream, Port: *port}
	if *name != "" {
		list, err := pick(all, []string{*name})
		if err != nil {
			return err
		}
		req.Scenario = list[0]
	}
	if *expectList != "" {
		props, err := property.Parse(*expectList)
		if err != nil {
			return fmt.Errorf("%w: -expect: %w", ErrUsage, err)
		}
		req.Properties = props
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("%w: -port %d: use 1-65535", ErrUsage, *port)
	}
	var verdicts []FileVerdict
	for _, file := range fs.Args() {
		verdicts = append(verdicts, Check(file, req))
	}
	if *junit != "" {
		if err := report.WriteJUnit(*junit, JUnit(verdicts)); err != nil {
			return fmt.Errorf("-junit: %w", err)
		}
	}
	failed := 0
	for _, v := range verdicts {
		if !v.Pass {
			failed++
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(struct {
			Pass  bool          `json:"pass"`
			Files []FileVerdict `json:"files"`
		}{failed == 0, verdicts}); err != nil {
			return err
		}
	} else if len(verdicts) == 1 && verdicts[0].Error != "" && verdicts[0].Conns == nil && verdicts[0].Scenarios == nil {
		// One file that could not be judged: one line says why.
		return fmt.Errorf("%s: %s", verdicts[0].File, verdicts[0].Error)
	} else {
		for _, v := range verdicts {
			printVerdict(stdout, v)
		}
	}
	if failed > 0 {
		if len(verdicts) == 1 {
			return fmt.Errorf("check %w: %s", ErrFailed, verdicts[0].File)
		}
		return fmt.Errorf("check %w: %d of %d files", ErrFailed, failed, len(verdicts))
	}
	return nil
}

// printVerdict writes a file's verdict as text: each connection's
// properties, pass or FAIL with the frames around a failure, then the
// scenario's match.
func printVerdict(w io.Writer, v FileVerdict) {
	if v.Error != "" {
		fmt.Fprintf(w, "%s: %s\n", v.File, v.Error)
	}
	for _, c := range v.Conns {
		fmt.Fprintf(w, "%s %s\n", v.File, c.Name)
		for _, r := range c.Results {
			verdict := "pass"
			if !r.Pass {
				verdict = "FAIL"
			}
			line := fmt.Sprintf("  %-4s  %s", verdict, r.Property)
			if r.Detail != "" {
				line += ": " + r.Detail
			}
			fmt.Fprintln(w, line)
			for _, l := range r.Context {
				fmt.Fprintf(w, "          %s\n", l)
			}
		}
	}
	for _, sv := range v.Scenarios {
		where := v.File
		if sv.Connection != "" && (len(v.Scenarios) > 1 || len(v.Conns) > 0) {
			where += " " + sv.Connection
		}
		switch {
		case sv.Pass:
			fmt.Fprintf(w, "%s: the %s sequence matches (%d steps)\n", where, sv.Name, sv.Steps)
		case sv.Problem != "":
			fmt.Fprintf(w, "%s: %s\n", where, sv.Problem)
		default:
			fmt.Fprintf(w, "%s does not show the %s sequence:\n", where, sv.Name)
			for i := range sv.Mismatches {
				fmt.Fprintln(w, sv.Mismatches[i].Error())
			}
		}
	}
}

// checkIdle refuses a keep-alive idle time the kernel cannot have: Linux
// takes TCP_KEEPIDLE in whole seconds, from 1.
func checkIdle(d time.Duration) error {
	if d < time.Second || d%time.Second != 0 {
		return fmt.Errorf("%w: -keepalive-idle %v: the kernel's keep-alive idle time (TCP_KEEPIDLE) is whole seconds; use 1s or more, such as 8s", ErrUsage, d)
	}
	return nil
}
