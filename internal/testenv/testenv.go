// Package testenv tells tests what this machine can do, and decides when a
// test may skip: outside CI a missing tool or privilege skips with the
// reason; with CI=true it fails, because CI installs and allows everything.
//
// Every test that needs a tool or a privilege goes through [SkipOrFail]
// (directly, or through [Tool] and [NetNS]), so the rule lives in one place.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/tcplab/tcplab/lab/netns"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Decide is the rule for a test that lacks something it needs: reason says
// what is missing and fix, if not empty, what provides it. Outside CI
// (inCI false) the test skips, and msg is "skipping test; " followed by the
// reason and fix; in CI the test fails (fail is true), and msg is the
// reason and fix.
func Decide(inCI bool, reason, fix string) (fail bool, msg string) {
	msg = reason
	if fix != "" {
		msg += "; " + fix
	}
	if inCI {
		return true, msg
	}
	return false, "skipping test; " + msg
}

// SkipOrFail ends the test t, which lacks something it needs, by the rule
// of [Decide]: it skips outside CI and fails with CI=true.
func SkipOrFail(t testing.TB, reason, fix string) {
	t.Helper()
	fail, msg := Decide(InCI(), reason, fix)
	if fail {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// aliases are the other names a command goes by on some systems; [Tool]
// tries them after the command's own name.
var aliases = map[string][]string{
	"chromium": {"chromium-browser"},
}

// packages names the Debian package of a command when it differs from the
// command's name.
var packages = map[string]string{
	"nft": "nftables",
}

// installHint says what installs the command name, for the message of a
// test that lacks it.
func installHint(name string) string {
	pkg, ok := packages[name]
	if !ok {
		pkg = name
	}
	return ".ci/run installs it (apt-get install " + pkg + ")"
}

// Tool returns the path of a command the test needs (or of one of the
// command's other names, such as chromium-browser for chromium). When it is
// not installed the test skips, or fails with CI=true, by [SkipOrFail]; the
// message names the apt-get package that installs it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	for _, n := range append([]string{name}, aliases[name]...) {
		if path, err := exec.LookPath(n); err == nil {
			return path
		}
	}
	SkipOrFail(t, name+" is not installed", installHint(name))
	return ""
}

// NetNS skips the test (fails it in CI), by [SkipOrFail], where network
// namespaces cannot be made; any other error fails it.
func NetNS(t testing.TB) {
	t.Helper()
	err := netns.Check()
	if err == nil {
		return
	}
	if errors.Is(err, netns.ErrUnsupported) {
		SkipOrFail(t, err.Error(), "")
	}
	t.Fatal(err)
}

// Main is a TestMain for a package whose tests run again in a network
// namespace of their own (InNamespace): in that run it brings lo up first.
func Main(m *testing.M) {
	if netns.InChild() {
		if err := netns.SetupLoopback(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
	os.Exit(m.Run())
}

// InNamespace reports whether the test t runs in a private network
// namespace of its own. In the test process it runs the test binary again
// in one (netns.Command), with -test.run naming t alone, fails t with that
// run's output when it failed (skips it when it skipped), and returns
// false; the package's TestMain must be Main. timeout bounds the run.
func InNamespace(t *testing.T, timeout time.Duration) bool {
	t.Helper()
	if netns.InChild() {
		return true
	}
	NetNS(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd, err := netns.Command(ctx, exe, "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if bytes.Contains(out, []byte("--- SKIP: "+t.Name()+" (")) {
		t.Skipf("skipping test; in a network namespace:\n%s", out)
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("in a network namespace (%v):\n%s", err, out)
	}
	t.Logf("in a network namespace:\n%s", out)
	return false
}

// NewNetNS makes a network namespace with lo up (netns.NewHost) and
// returns its file, closed when the test ends; the namespace goes with
// its last user.
func NewNetNS(tb testing.TB) *os.File {
	tb.Helper()
	h, err := netns.NewHost(tb.Name())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h.File()
}
