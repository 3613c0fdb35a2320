// Package labtest runs a scenario inside a Go test, as net/http/httptest
// runs a server: one call, and the machinery stays out of sight.
//
//	func TestTeardown(t *testing.T) {
//		labtest.Run(t, myscenarios.Teardown())
//	}
//
// Run re-executes the test binary in a network namespace of its own,
// selecting the calling test with -test.run, so the test needs no TestMain:
// in that child, Run runs the scenario's peers, captures, judges and
// writes the artifacts, then ends the process. The parent reports the
// verdict: a failing scenario fails the test with the mismatch report,
// every field that differs, and keeps the artifacts (capture.pcapng,
// walkthrough.md, ladder.svg, result.json); a passing one removes them
// unless go test was given -artifacts, which keeps them under its output
// directory. The progress of the run is logged, so -v shows it.
//
// A test that calls Run more than once, or from several subtests, works:
// each child runs only the test or subtest that called it, and there only
// the scenario it was started for. Code of the test around the call runs
// in the child too, so keep it free of effects outside the process.
//
// Where network namespaces cannot be made (no user namespaces, no root),
// Run skips the test with the reason, unless CI=true, where it fails.
package labtest

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/report"
)

// Run runs sc with the default options and returns its result; it fails t
// when the scenario does not pass.
func Run(t testing.TB, sc *lab.Scenario) *lab.Result {
	t.Helper()
	return RunWith(t, sc, lab.Options{})
}

// RunWith is Run with options: a keep-alive idle time, the walkthrough's
// language, a server or client command of your own.
func RunWith(t testing.TB, sc *lab.Scenario, opt lab.Options) *lab.Result {
	t.Helper()
	if lab.InChild() {
		if lab.ChildScenario() != sc.Name {
			// Another call of this test started this child.
			return &lab.Result{Scenario: sc.Name, Pass: true}
		}
		os.Exit(lab.RunChild([]*lab.Scenario{sc}))
	}
	testenv.NetNS(t)
	out, keep := outDir(t)
	results, err := lab.Run(context.Background(), []*lab.Scenario{sc}, lab.Config{
		Out:       out,
		Options:   opt,
		Progress:  t.Output(), // shown with -v or on failure
		ChildArgs: []string{"-test.run=" + runPattern(t.Name()), "-test.count=1"},
	})
	if err != nil {
		t.Fatalf("tcplab: %v", err)
	}
	r := &results[0]
	if !r.Pass {
		keep()
		t.Errorf("scenario %s failed:\n%s\nartifacts: %s (open %s)", sc.Name, strings.TrimRight(r.Failure(), "\n"),
			r.Dir, filepath.Join(r.Dir, report.WalkthroughFile))
	}
	return r
}

// outDir returns the directory for a run's artifacts, and a function that
// keeps it when the test would otherwise remove it. With -artifacts it is
// the test's artifact directory, kept by go test; otherwise a temporary
// directory removed at the end of the test unless keep was called.
func outDir(t testing.TB) (dir string, keep func()) {
	t.Helper()
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		if a, ok := t.(interface{ ArtifactDir() string }); ok {
			return a.ArtifactDir(), func() {}
		}
	}
	dir, err := os.MkdirTemp("", "tcplab-"+sanitize(t.Name())+"-")
	if err != nil {
		t.Fatalf("tcplab: make a directory for the artifacts: %v", err)
	}
	kept := false
	t.Cleanup(func() {
		if !kept {
			os.RemoveAll(dir)
		}
	})
	return dir, func() { kept = true }
}

// runPattern returns the -test.run pattern that selects exactly the test
// or subtest called name, such as "^TestX$/^case_1$".
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// sanitize makes a test name fit for a file name.
func sanitize(name string) string { return unsafeName.ReplaceAllString(name, "_") }
