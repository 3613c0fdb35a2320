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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tcplab/tcplab/internal/annotatecmd"
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
// otherwise it runs the command line (annotate, list, run, check, pkt,
// version, help) with the same flags and artifacts as tcplab, and exits with its
// status: 0 pass, 1 fail, 2 usage, 130 interrupted.
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
	case "annotate":
		err = annotatecmd.Run(prog, args[1:], stdout)
	case "list":
		err = listCommand(prog, args[1:], stdout, list)
	case "run":
		err = runCommand(prog, args[1:], stdout, stderr, list)
	case "check":
		err = checkCommand(prog, args[1:], stdout, stderr, list)
	case "pkt":
		err = pktCommand(prog, args[1:], stdout, stderr)
	case "oracle":
		err = oracleCommand(prog, args[1:], stdout, stderr, list)
	case "version":
		err = versionCommand(prog, args[1:], stdout)
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

const commandUsage = `%[1]s: a scripted packet-capture lab for TCP

Commands:
  %[1]s annotate [flags] FILE... [FILTER]       annotate every TCP segment of pcap/pcapng files
      [-json] [-o FILE] [-stream N] [-port N] [-filter EXPR] [-summary] [-interface N] [-i IFACE]
      [-ladder FILE] [-walkthrough FILE] [-tseq FILE] [-lang en|zh]
  %[1]s list                                    list the scenarios
  %[1]s run [flags] [NAME...]                   run scenarios in private network namespaces: capture, annotate, match
      [-out DIR] [-parallel N] [-keepalive-idle D] [-lang en|zh] [-6] [-path CONDITIONS] [-seed N]
      [-server CMD -port N] [-client CMD] [-capture tcplab|tcpdump|none] [-junit FILE] [-no-sandbox]
      [-trace-path FRAMES|off] [-kernel events|samples]
  %[1]s check (-scenario NAME | -expect PROPERTIES) [flags] FILE...
                                                judge captures of any program against a scenario or properties
      [-stream N] [-port N] [-keepalive-idle D] [-strict] [-junit FILE] [-json]
  %[1]s check -expect PROPERTIES [flags] [-o FILE] -- COMMAND [ARG...]
                                                run COMMAND on a private loopback, capture it, check its connections
  %[1]s pkt [flags] FILE.pkt...                 run packetdrill scripts against the real kernel, or print them as Go
      [-out DIR] [-parallel N] [-cpus one|all] [-junit FILE] [-floor D] [-tolerance floor|packetdrill|auto] [-go] [-dry_run]
      [-ip_version ipv4|ipv6|ipv4-mapped-ipv6[,...]] [-tolerance_usecs N] [-tolerance_percent P] [-mtu N]
      [-init_scripts FILE] [-tcp_ts_tick_usecs N] [-local_ip A] [-remote_ip A] [-netmask_ip M] [-gateway_ip A]
      [-bind_port N] [-connect_port N] [-tcp_ts_ecr_scaled] [-strict_segments]
      [-send_omit_free] [-D NAME=VALUE] [-define NAME=VALUE]
  %[1]s oracle [flags] [NAME...]                run scenarios across seeded path conditions as root: the wire's labels against the kernel's events
      [-out DIR] [-seeds N] [-conditions 'C1;C2'] [-parallel N] [-timeout D]
  %[1]s version [-m]                            print the version, the Go that built it and the commit
  %[1]s help                                    show this help

"%[1]s COMMAND -h" prints a command's flags with their defaults, and examples.
`

// ErrUsage marks a command-line mistake: exit status 2.
var ErrUsage = cli.ErrUsage

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
			if near := nearest(n, known); near != "" {
				return nil, fmt.Errorf("%w: unknown scenario %q; did you mean %s? known: %s", ErrUsage, n, near, strings.Join(known, ", "))
			}
			return nil, fmt.Errorf("%w: unknown scenario %q; known: %s", ErrUsage, n, strings.Join(known, ", "))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// nearest returns the name of known closest to name by edit distance, if
// it is close enough to be a typo of it (at most a third of its letters
// differ), or "".
func nearest(name string, known []string) string {
	best, bestD := "", len(name)/3+1
	for _, k := range known {
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// duplicates returns the names given more than once, each once.
func duplicates(names []string) []string {
	seen := map[string]int{}
	var dup []string
	for _, n := range names {
		if seen[n]++; seen[n] == 2 {
			dup = append(dup, n)
		}
	}
	return dup
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
	lang := fs.String("lang", "en", "language of what the run prints and writes (but capture.pcapng's comments): en or zh")
	server := fs.String("server", "", "run your own server `CMD` (a shell command) in the namespace instead of the scenario's; it must listen on -port")
	client := fs.String("client", "", "run your own client `CMD` (a shell command; $TCPLAB_SERVER is the server's address) in the namespace instead of the scenario's")
	port := fs.Int("port", Port, "the server's `PORT`; with -no-sandbox, scenarios get ports from 18000 up unless it is given")
	captureWith := fs.String("capture", "tcplab", "what captures: tcplab, or tcpdump or none to measure what capturing costs (make bench)")
	junit := fs.String("junit", "", "also write the results as JUnit XML to `FILE`, for CI")
	ipv6 := fs.Bool("6", false, "run over IPv6: the server on [::1]")
	noSandbox := fs.Bool("no-sandbox", false, "capture on the host's lo, filtered on each scenario's port, instead of a private namespace")
	pathDesc := fs.String("path", "", "run the scenarios across a router whose path has these one-way `CONDITIONS`: delay=20ms,jitter=2ms,loss=1%,reorder=2%,duplicate=1%,rate=10mbit; c2s: or s2c: before a key sets one direction; delay and jitter 0 to 1m, percentages 0% to 100%, rate 1kbit to 100gbit")
	seed := fs.Uint64("seed", 1, "seed of the path's random decisions (loss, jitter, reordering, duplication), to replay a run")
	kernelMode := fs.String("kernel", "events", "how the run learns what the kernel did with its sockets: events, its own (traced with eBPF as root on a kernel with BTF, else sampled), or samples (INET_DIAG after segments, as without root; a high-rate scenario takes none), to measure what tracing costs (make bench-bulk)")
	var tracePath tracePathFlag
	fs.Var(&tracePath, "trace-path", "show the path through the kernel of the segments of these capture `FRAMES` (comma-separated, or the flag repeated) in place of each connection's SYN and first data segment each way; off follows none (as root, on a kernel with BTF)")
	help := cli.Help{
		Usage: prog + " run [flags] [SCENARIO...]",
		About: "Run the scenarios named, or all of them, each in a network namespace of its own: the peers talk,\n" +
			"the lab captures, annotates and matches the segments against the scenario's steps, and writes\n" +
			"DIR/SCENARIO/{capture.pcapng,walkthrough.md,walkthrough.html,ladder.svg,result.json}, tseq.svg when data\n" +
			"flows, points.pcapng on two hosts, server.log or client.log with what your -server or -client printed,\n" +
			"and DIR/index.html, which lists every scenario folder under DIR. A new run of a scenario first removes\n" +
			"those files from DIR/SCENARIO. Each file is made inside the folder under a new name and\n" +
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
	if *parallel < 0 {
		return fmt.Errorf("%w: -parallel %d: use 0 (all at once) or a number of scenarios at a time", ErrUsage, *parallel)
	}
	if *junit != "" {
		// Refused before anything runs: a report that cannot be written
		// would otherwise be found missing only after the run.
		if dir := filepath.Dir(*junit); !isDir(dir) {
			return fmt.Errorf("%w: -junit %s: no directory %s; create it or choose another file", ErrUsage, *junit, dir)
		}
		if isDir(*junit) {
			return fmt.Errorf("%w: -junit %s is a directory; name the file to write, such as %s", ErrUsage, *junit, filepath.Join(*junit, "junit.xml"))
		}
	}
	if *pathDesc != "" {
		if _, err := path.Parse(*pathDesc); err != nil {
			return fmt.Errorf("%w: -path: %w", ErrUsage, err)
		}
		if *noSandbox {
			return fmt.Errorf("%w: -path needs the namespaces of a sandboxed run; drop -no-sandbox", ErrUsage)
		}
	}
	var kmode KernelMode
	switch *kernelMode {
	case "events":
		kmode = KernelAuto
	case "samples":
		kmode = KernelSamples
	default:
		return fmt.Errorf("%w: -kernel %q: use events or samples", ErrUsage, *kernelMode)
	}
	if len(tracePath.frames) > 0 && *noSandbox {
		return fmt.Errorf("%w: -trace-path follows segments through the kernel of a sandboxed run's namespaces; drop -no-sandbox", ErrUsage)
	}
	list, err := pick(all, fs.Args())
	if err != nil {
		return err
	}
	if dup := duplicates(fs.Args()); len(dup) > 0 {
		// Two runs of one scenario would share its folder.
		fmt.Fprintf(stderr, Options{Lang: language}.Text("%s named more than once: each scenario runs once\n", "%s 重复了: 每个场景只运行一次\n"), strings.Join(dup, ", "))
	}
	if fs.NArg() == 0 {
		list = leaveOutScripted(list, Options{IPv6: *ipv6, Path: *pathDesc}, *noSandbox, stderr)
	}
	opt := Options{KeepAliveIdle: *idle, Lang: language, ServerCommand: *server, ClientCommand: *client, Capture: capt, IPv6: *ipv6,
		Path: *pathDesc, Seed: *seed, TracePath: tracePath.frames, NoTracePath: tracePath.off, Kernel: kmode}
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
	open := opt.Text("; open ", "; 打开 ") + filepath.Join(*out, report.IndexFile)
	if err := report.WriteIndex(*out, results, language); err != nil {
		fmt.Fprintf(stderr, "index: %v\n", err)
		open = ""
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, opt.Text("SCENARIO\tSEGMENTS\tRESULT\tTIME\tARTIFACTS", "场景\tTCP包\t结果\t用时\t产物"))
	failed, interrupted := 0, 0
	for _, r := range results {
		verdict := opt.Text("pass", "通过")
		switch {
		case r.Interrupted:
			verdict, interrupted = opt.Text("interrupted", "中断"), interrupted+1
		case !r.Pass:
			verdict, failed = opt.Text("FAIL", "失败"), failed+1
		}
		fmt.Fprintf(tw, opt.Text("%s\t%d\t%s\t%.2fs\t%s\n", "%s\t%d\t%s\t%.2f 秒\t%s\n"), r.Scenario, r.Segments, verdict, r.Seconds, r.Dir)
	}
	tw.Flush()
	tally := fmt.Sprintf(opt.Text("%d failed", "%d 个失败"), failed)
	if interrupted > 0 {
		tally += fmt.Sprintf(opt.Text(", %d interrupted", ", %d 个中断"), interrupted)
	}
	noun := opt.Text("%d scenarios", "共 %d 个场景")
	if len(results) == 1 {
		noun = opt.Text("%d scenario", "共 %d 个场景")
	}
	fmt.Fprintf(stdout, "\n"+noun+", %s, "+opt.Text("%.2fs wall time%s", "总用时 %.2f 秒%s")+"\n", len(results), tally, time.Since(start).Seconds(), open)
	for _, r := range results {
		if f := r.Failure(); f != "" {
			fmt.Fprintf(stdout, "\n%s", f)
		}
	}
	// The JUnit report comes last, so that a failure to write it loses
	// nothing else; it makes the run fail.
	also := ""
	if *junit != "" {
		if err := report.WriteJUnit(*junit, RunJUnit(results)); err != nil {
			also = fmt.Sprintf("; -junit: %v", err)
		}
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w: what was captured is kept in %s%s", ErrInterrupted, *out, also)
	case failed > 0:
		return fmt.Errorf("%w: %d of %d scenarios%s", ErrFailed, failed, len(results), also)
	case also != "":
		return fmt.Errorf("the scenarios passed, but the JUnit report was not written%s", also)
	}
	return nil
}

// isDir reports whether path is an existing directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// ErrInterrupted is returned when SIGINT or SIGTERM stopped a run: exit
// status 130, as a shell reports a command killed by SIGINT.
var ErrInterrupted = errors.New("interrupted")

// checkCommand implements "check": judge captures made by any tool
// against a scenario's steps, properties of their connections, or both.
func checkCommand(prog string, args []string, stdout, stderr io.Writer, all []*Scenario) error {
	// Everything after "--" is the command to run and capture, its own
	// flags included.
	var command []string
	hasCommand := false
	if i := slices.Index(args, "--"); i >= 0 {
		args, command, hasCommand = args[:i], args[i+1:], true
	}
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	name := fs.String("scenario", "", "scenario `NAME` whose expected segments the capture must show")
	expectList := fs.String("expect", "", "comma-separated `PROPERTIES` every selected connection must have: "+strings.Join(property.Known(), ", "))
	stream := fs.Int("stream", -1, "check only stream `N` (Wireshark's tcp.stream); -1: every connection")
	port := fs.Int("port", 0, "check only connections with `PORT` at either end; 0: every connection")
	idle := fs.Duration("keepalive-idle", time.Second, "keep-alive idle time the capture was made with (for -scenario)")
	strict := fs.Bool("strict", false, "with -scenario: fail on connections the scenario does not mention")
	junit := fs.String("junit", "", "also write the verdicts as JUnit XML to `FILE`, for CI")
	asJSON := fs.Bool("json", false, "print one JSON verdict object instead of text")
	out := fs.String("o", "", "with -- COMMAND: write the capture to `FILE` (default: next to -junit's file, else a new temporary file)")
	help := cli.Help{
		Usage: prog + " check (-scenario NAME | -expect PROPERTIES) [flags] FILE...\n       " +
			prog + " check (-scenario NAME | -expect PROPERTIES) [flags] -- COMMAND [ARG...]",
		About: "Judge captures (pcap or pcapng, also gzip, zstd or lz4 compressed, made by tcpdump, tshark, Wireshark or tcplab, of any program):\n" +
			"-scenario matches a scenario's expected steps, -expect checks properties of every connection (or\n" +
			"those -stream or -port select). A failure shows the frames that break it among their neighbours,\n" +
			"packetdrill-style. Exit status: 0 all pass, 1 a check failed or a file could not be read, 2 usage.\n" +
			"With -- COMMAND, check runs COMMAND in a network namespace of its own (no sudo where the kernel allows\n" +
			"user namespaces; COMMAND has no network but that namespace's loopback), captures the loopback from\n" +
			"before COMMAND starts until it is quiet after COMMAND exits, writes the capture (-o) and judges it;\n" +
			"COMMAND's non-zero exit fails the check. Ctrl-C stops COMMAND and still writes the capture.",
		Examples: []string{
			prog + " check -expect 'handshake,no-rst,closer=server' -junit junit.xml -- ./srv.test",
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
	switch {
	case hasCommand && len(command) == 0:
		return fmt.Errorf("%w: check: -- needs the COMMAND to run after it (see %s check -h)", ErrUsage, prog)
	case hasCommand && fs.NArg() > 0:
		return fmt.Errorf("%w: check takes capture files or -- COMMAND, not both: %s (see %s check -h)", ErrUsage, strings.Join(fs.Args(), " "), prog)
	case !hasCommand && *out != "":
		return fmt.Errorf("%w: check: -o FILE is where -- COMMAND's capture goes; add -- COMMAND (see %s check -h)", ErrUsage, prog)
	}
	if (*name == "" && *expectList == "" && !hasCommand) || (fs.NArg() == 0 && !hasCommand) {
		return fmt.Errorf("%w: %s check (-scenario NAME | -expect PROPERTIES) [flags] (FILE... | -- COMMAND [ARG...]) (see %s check -h)", ErrUsage, prog, prog)
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
	if *junit != "" {
		if err := junitPath(*junit); err != nil {
			return err
		}
	}
	if hasCommand {
		return checkRunCommand(prog, commandCheck{argv: command, out: *out, junit: *junit, asJSON: *asJSON, req: req}, stdout, stderr)
	}
	// Each connection's verdict is written as soon as it is known, as
	// text, JSON or JUnit, so that memory stays bounded by the connections
	// open at once (checkOutput).
	o, err := newCheckOutput(stdout, *asJSON, *junit)
	if err != nil {
		return err
	}
	var last FileVerdict
	for _, file := range fs.Args() {
		v := o.check(file, req)
		if !*asJSON && (fs.NArg() > 1 || v.Error == "" || v.judged > 0 || v.Scenarios != nil) {
			printVerdict(stdout, v)
		}
		last = v
	}
	if err := o.close(false); err != nil {
		return err
	}
	if !*asJSON && fs.NArg() == 1 && last.Error != "" && last.judged == 0 && last.Scenarios == nil {
		// One file that could not be judged: one line says why.
		return errors.New(fileError(last))
	}
	if o.failed > 0 {
		if fs.NArg() == 1 {
			return fmt.Errorf("check %w: %s", ErrFailed, last.File)
		}
		return fmt.Errorf("check %w: %d of %d files", ErrFailed, o.failed, fs.NArg())
	}
	return nil
}

// junitPath refuses a -junit FILE that cannot be written, before anything
// is done: one in a folder that is not there, or a folder.
func junitPath(junit string) error {
	if dir := filepath.Dir(junit); !isDir(dir) {
		return fmt.Errorf("%w: -junit %s: no directory %s; create it or choose another file", ErrUsage, junit, dir)
	}
	if isDir(junit) {
		return fmt.Errorf("%w: -junit %s is a directory; name the file to write, such as %s", ErrUsage, junit, filepath.Join(junit, "junit.xml"))
	}
	return nil
}

// printVerdict writes a file's verdict as text: each connection's
// properties, pass or FAIL with the frames around a failure, then the
// scenario's match.
func printVerdict(w io.Writer, v FileVerdict) {
	if v.Error != "" {
		fmt.Fprintln(w, fileError(v))
	}
	for i := range v.Conns {
		printConn(w, v.File, &v.Conns[i])
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

// fileError is the line that says why a file could not be judged, naming
// the file once: the error of a file that cannot be read names it already.
func fileError(v FileVerdict) string {
	if strings.HasPrefix(v.Error, v.File+":") {
		return v.Error
	}
	return v.File + ": " + v.Error
}

// printConn writes the verdict of one connection of file as text.
func printConn(w io.Writer, file string, c *ConnVerdict) {
	fmt.Fprintf(w, "%s %s\n", file, c.Name)
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

// checkIdle refuses a keep-alive idle time the kernel cannot have: Linux
// takes TCP_KEEPIDLE in whole seconds, from 1.
func checkIdle(d time.Duration) error {
	if d < time.Second || d%time.Second != 0 {
		return fmt.Errorf("%w: -keepalive-idle %v: the kernel's keep-alive idle time (TCP_KEEPIDLE) is whole seconds; use 1s or more, such as 8s", ErrUsage, d)
	}
	return nil
}

// tracePathFlag is -trace-path: frame numbers, comma-separated or the flag
// repeated, or off.
type tracePathFlag struct {
	frames []int
	off    bool
}

func (f *tracePathFlag) String() string {
	if f == nil {
		return ""
	}
	if f.off {
		return "off"
	}
	var s []string
	for _, n := range f.frames {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, ",")
}

func (f *tracePathFlag) Set(v string) error {
	if v == "off" {
		if len(f.frames) > 0 {
			return errors.New("off with frames: give frames or off")
		}
		f.off = true
		return nil
	}
	if f.off {
		return errors.New("off with frames: give frames or off")
	}
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("%q: give frame numbers from 1 up (as Wireshark numbers them), or off", s)
		}
		f.frames = append(f.frames, n)
	}
	return nil
}
