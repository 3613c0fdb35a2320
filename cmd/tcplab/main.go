// Command tcplab annotates TCP captures and runs TCP scenarios on a private
// loopback. Run "tcplab help" for its commands.
//
// Its list, run and check commands are lab.Command over scenarios.Every;
// a program of your own gets the same commands over your scenarios with
// lab.Main.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/scenarios"
)

const usage = `tcplab: a scripted packet-capture lab for TCP

Commands:
  tcplab annotate [flags] FILE [FILTER]           annotate every TCP segment of a pcap/pcapng file
  tcplab list                                    list the scenarios
  tcplab run [NAME...] [-out DIR] [-parallel N] [-keepalive-idle D] [-lang en|zh] [-no-sandbox]
             [-server CMD -port N] [-client CMD] run scenarios on a private loopback, capture, annotate, match;
                                                 -server/-client put your own program in place of a peer
  tcplab check -scenario NAME FILE               match a capture of any program against a scenario's sequence
  tcplab help                                    show this help
`

func main() {
	if lab.InChild() {
		// Run re-executes this binary in a scenario's network namespace.
		os.Exit(lab.RunChild(scenarios.Every()))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return lab.ExitUsage
	}
	switch args[0] {
	case "annotate":
		err := annotate(args[1:], stdout, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return lab.ExitPass // annotate printed its own help
		}
		return lab.ExitStatus("tcplab", err, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return lab.ExitPass
	}
	return lab.Command("tcplab", args, stdout, stderr, scenarios.Every())
}
