package ktrace

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOpenUnprivileged: without root, Open fails in one line that says to
// run as root, with an error that wraps ErrUnsupported. Run as root, the
// test runs itself again as nobody.
func TestOpenUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		f, err := os.Open("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ino, err := NetNSInode(f)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := Open(Config{NetNS: []uint64{ino}})
		if err == nil {
			tr.Close()
			t.Skip("skipping test; this user may trace the kernel without root")
		}
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "root") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("Open as uid %d: %q; want one line that wraps ErrUnsupported and says to run as root", os.Geteuid(), err)
		}
		t.Logf("Open as uid %d: %v", os.Geteuid(), err)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// nobody must be able to execute a copy of this binary.
	dir, err := os.MkdirTemp("", "ktrace-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(exe)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "ktrace.test"), b, 0o755)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "ktrace.test"), "-test.run=^TestOpenUnprivileged$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Skipf("skipping test; cannot run as nobody here: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestOpenUnprivileged") {
		t.Fatalf("as nobody (%v):\n%s", err, out)
	}
	t.Logf("as nobody:\n%s", out)
}
