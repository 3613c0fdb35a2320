// Command tcplab annotates TCP captures and runs TCP scenarios on a private
// loopback. Run "tcplab help" for its commands.
//
// Its commands are lab.Command over scenarios.Every (every scenario,
// the scripted ones too); a program of your own gets the same commands
// over your scenarios with lab.Main.
package main

import (
	"io"
	"os"

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/scenarios"
)

func main() {
	if lab.InChild() {
		// Run re-executes this binary in a scenario's network namespace.
		os.Exit(lab.RunChild(scenarios.Every()))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	return lab.Command("tcplab", args, stdout, stderr, scenarios.Every())
}
