package main

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

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/scenarios"
)

// list implements "tcplab list".
func list(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: list takes no arguments", errUsage)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, sc := range scenarios.All() {
		fmt.Fprintf(tw, "%s\t%s\n", sc.Name, sc.Summary)
	}
	return tw.Flush()
}

// pick returns the scenarios named, or all of them when none is.
func pick(names []string) ([]*lab.Scenario, error) {
	all := scenarios.All()
	if len(names) == 0 {
		return all, nil
	}
	var out []*lab.Scenario
	for _, n := range names {
		sc := lab.Find(all, n)
		if sc == nil {
			var known []string
			for _, s := range all {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("%w: unknown scenario %q; known: %s", errUsage, n, strings.Join(known, ", "))
		}
		out = append(out, sc)
	}
	return out, nil
}

// errFailed is returned when a scenario or a check did not pass: exit
// status 1.
var errFailed = errors.New("failed")

// runLab implements "tcplab run".
func runLab(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("out", "out", "write artifacts under `DIR`/SCENARIO")
	parallel := fs.Int("parallel", 0, "run at most `N` scenarios at once (0: all)")
	idle := fs.Duration("keepalive-idle", time.Second, "keep-alive idle time; 8s reproduces the seed")
	lang := fs.String("lang", "en", "language of the walkthrough: en or zh")
	server := fs.String("server", "", "run your own server `CMD` (a shell command) in the namespace instead of the scenario's; it must listen on -port")
	client := fs.String("client", "", "run your own client `CMD` (a shell command; $TCPLAB_SERVER is the server's address) in the namespace instead of the scenario's")
	port := fs.Int("port", lab.Port, "the server's `PORT`")
	captureWith := fs.String("capture", "tcplab", "what captures: tcplab, or tcpdump or none to measure what capturing costs (make bench)")
	noSandbox := fs.Bool("no-sandbox", false, "capture on the host's lo, filtered on each scenario's port, instead of a private namespace")
	if err := parseInterspersed(fs, args); err != nil {
		return fmt.Errorf("%w: run: %w", errUsage, err)
	}
	if *lang != "en" && *lang != "zh" {
		return fmt.Errorf("%w: -lang %q: use en or zh", errUsage, *lang)
	}
	if *idle <= 0 {
		return fmt.Errorf("%w: -keepalive-idle must be positive", errUsage)
	}
	var capt string
	switch *captureWith {
	case "tcplab":
		capt = lab.CaptureTcplab
	case lab.CaptureTcpdump, lab.CaptureNone:
		capt = *captureWith
	default:
		return fmt.Errorf("%w: -capture %q: use tcplab, tcpdump or none", errUsage, *captureWith)
	}
	if *port <= 0 || *port > 65535 {
		return fmt.Errorf("%w: -port %d: use 1-65535", errUsage, *port)
	}
	list, err := pick(fs.Args())
	if err != nil {
		return err
	}
	if *client != "" {
		if len(fs.Args()) == 0 {
			return fmt.Errorf("%w: -client needs the scenario to run, e.g. tcplab run -client 'curl -s http://$TCPLAB_SERVER/blog/' http-real-client", errUsage)
		}
		for _, sc := range list {
			if !sc.AcceptsClient {
				return fmt.Errorf("%w: scenario %s cannot run with your client; http-real-client can", errUsage, sc.Name)
			}
		}
	}
	if *server != "" {
		if len(fs.Args()) == 0 {
			return fmt.Errorf("%w: -server needs the scenario to run, e.g. tcplab run -server 'python3 -m http.server 8000' -port 8000 halfclose", errUsage)
		}
		for _, sc := range list {
			if !sc.AcceptsServer {
				return fmt.Errorf("%w: scenario %s cannot run against your server; halfclose can", errUsage, sc.Name)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	results, err := lab.Run(ctx, list, lab.Config{
		Out: *out, Parallel: *parallel, NoSandbox: *noSandbox, Progress: stderr,
		Options: lab.Options{KeepAliveIdle: *idle, Lang: *lang, ServerCommand: *server, ClientCommand: *client, Port: *port, Capture: capt},
	})
	if err != nil {
		return err
	}
	if err := lab.WriteIndex(*out, results); err != nil {
		fmt.Fprintf(stderr, "tcplab: %v\n", err)
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSEGMENTS\tRESULT\tTIME\tARTIFACTS")
	failed := 0
	for _, r := range results {
		verdict := "pass"
		switch {
		case r.Interrupted:
			verdict, failed = "interrupted", failed+1
		case !r.Pass:
			verdict, failed = "FAIL", failed+1
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.2fs\t%s\n", r.Scenario, r.Segments, verdict, r.Seconds, r.Dir)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\n%d scenarios, %d failed, %.2fs wall time; open %s\n", len(results), failed, time.Since(start).Seconds(),
		filepath.Join(*out, "index.html"))
	for _, r := range results {
		if f := r.Failure(); f != "" {
			fmt.Fprintf(stdout, "\n%s", f)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: what was captured is kept in %s", errInterrupted, *out)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d scenarios", errFailed, failed, len(results))
	}
	return nil
}

// errInterrupted is returned when SIGINT or SIGTERM stopped a run: exit
// status 130, as a shell reports a command killed by SIGINT.
var errInterrupted = errors.New("interrupted")

// check implements "tcplab check -scenario NAME FILE": match an existing
// capture against a scenario's expected segments.
func check(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("scenario", "", "scenario whose expected segments the capture must show")
	idle := fs.Duration("keepalive-idle", time.Second, "keep-alive idle time the capture was made with")
	strict := fs.Bool("strict", false, "fail on connections the scenario does not mention")
	if err := parseInterspersed(fs, args); err != nil {
		return fmt.Errorf("%w: check: %w", errUsage, err)
	}
	if *name == "" || fs.NArg() != 1 {
		return fmt.Errorf("%w: tcplab check -scenario NAME FILE", errUsage)
	}
	list, err := pick([]string{*name})
	if err != nil {
		return err
	}
	v, err := lab.CheckFile(fs.Arg(0), list[0], lab.Options{KeepAliveIdle: *idle}, lab.MatchOptions{IgnoreOtherStreams: !*strict})
	if err != nil {
		return err
	}
	if !v.Pass {
		for i := range v.Mismatches {
			fmt.Fprintln(stdout, v.Mismatches[i].Error())
		}
		return fmt.Errorf("check %w: %s does not show the %s sequence", errFailed, fs.Arg(0), *name)
	}
	fmt.Fprintf(stdout, "%s: the %s sequence matches (%d steps)\n", fs.Arg(0), *name, len(list[0].Steps(lab.Options{KeepAliveIdle: *idle})))
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
