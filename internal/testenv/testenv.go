// Package testenv tells tests what this machine can do, and decides when a
// test may skip: outside CI a missing tool or privilege skips with the
// reason; with CI=true it fails, because CI installs and allows everything.
package testenv

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/tcplab/tcplab/lab/netns"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Tool returns the path of a command the test needs, or skips (fails in
// CI) when it is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if InCI() {
		t.Fatalf("%s is not installed; .ci/run installs it", name)
	}
	t.Skipf("skipping test; %s is not installed", name)
	return ""
}

// NetNS skips the test (fails it in CI) where network namespaces cannot be
// made; any other error fails it.
func NetNS(t testing.TB) {
	t.Helper()
	err := netns.Check()
	if err == nil {
		return
	}
	if errors.Is(err, netns.ErrUnsupported) && !InCI() {
		t.Skipf("skipping test; %v", err)
	}
	t.Fatal(err)
}
