package lab

import (
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/tcplab/tcplab/internal/cli"
)

// versionCommand implements "version": the build information Go recorded
// in the binary, as "go version -m" prints it: the main module and its
// version ("(devel)" when built from a clone), the Go version, and the
// commit it was built from; -m adds every dependency and build setting.
func versionCommand(prog string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	all := fs.Bool("m", false, "print every module and build setting, as go version -m does")
	help := cli.Help{Usage: prog + " version [-m]", About: "Print the version of " + prog + ": its module, the Go that built it and the commit, from the binary's build information.",
		Examples: []string{prog + " version", prog + " version -m"}}
	if err := cli.Parse(fs, args, help, stdout); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: version: %w (see %s version -h)", ErrUsage, err, prog)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: version takes no arguments", ErrUsage)
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("%s has no build information; build it with go build or go install", prog)
	}
	fmt.Fprint(stdout, versionText(prog, info, *all))
	return nil
}

// versionText is what version prints for the build information info.
func versionText(prog string, info *debug.BuildInfo, all bool) string {
	if all {
		return info.String()
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	line := fmt.Sprintf("%s %s %s", prog, info.Main.Path, version)
	if info.Main.Path == "" {
		line = fmt.Sprintf("%s %s (%s)", prog, version, info.Path)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	line += ", " + info.GoVersion
	if os, arch := settings["GOOS"], settings["GOARCH"]; os != "" {
		line += " " + os + "/" + arch
	}
	var vcs []string
	if rev := settings["vcs.revision"]; rev != "" {
		vcs = append(vcs, "commit "+rev)
	}
	if t := settings["vcs.time"]; t != "" {
		vcs = append(vcs, "of "+t)
	}
	if settings["vcs.modified"] == "true" {
		vcs = append(vcs, "with uncommitted changes")
	}
	if len(vcs) > 0 {
		line += ", " + strings.Join(vcs, " ")
	}
	return line + "\n"
}
