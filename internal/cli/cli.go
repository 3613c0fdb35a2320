// Package cli parses the command lines of tcplab's commands the same way
// everywhere: flags before or after the positional arguments, and -h
// printing the command's own usage, its flags with their defaults, and
// an example.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrUsage marks a command-line mistake: the commands exit with status 2.
// lab.ErrUsage is the same error.
var ErrUsage = errors.New("usage")

// Help describes one command for its -h.
type Help struct {
	Usage    string   // "tcplab annotate [-json] [-o OUT.pcapng] FILE"
	About    string   // what the command does, a sentence or two
	Examples []string // command lines, each shown on a line of its own
}

// Parse parses args into fs, flags and positional arguments in any order
// ("tcplab annotate FILE -json" as well as "tcplab annotate -json FILE").
// On -h or -help it writes the command's help to stdout and returns
// flag.ErrHelp, which the caller treats as success.
func Parse(fs *flag.FlagSet, args []string, help Help, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		io.WriteString(stdout, Text(fs, help))
	}
	return err
}

// Text is the help of a command: usage, what it does, its flags with
// their defaults, and the examples.
func Text(fs *flag.FlagSet, help Help) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s\n", help.Usage, help.About)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nflags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if len(help.Examples) > 0 {
		b.WriteString("\nexamples:\n")
		for _, e := range help.Examples {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, as users type them; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		rest := fs.Args()
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}
