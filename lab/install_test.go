package lab_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tcplab/tcplab/internal/readme"
)

// TestInstallSteps follows the README's install steps as written, in a
// home directory of its own outside the repository: "install" puts the
// command in GOBIN from the clone (the repository stands for the clone
// that the first line makes), and "module" makes a new module that uses
// the clone through a replace directive, with examples/teardown's files
// as the scenario and test its reader writes, then go mod tidy and go
// test. The module proxy is used for the dependencies.
func TestInstallSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping test; it builds a module of its own (-short)")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, k := range []string{"GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY"} {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		env[k] = strings.TrimSpace(string(out))
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	home := installHome(t, repo)
	if err := os.MkdirAll(filepath.Join(home, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(repo, filepath.Join(home, "src", "tcplab")); err != nil {
		t.Fatal(err)
	}
	gobin := filepath.Join(home, "bin")
	vars := []string{
		"HOME=" + home, "GOBIN=" + gobin, "GOFLAGS=-mod=mod", "GOWORK=off",
		"PATH=" + gobin + string(os.PathListSeparator) + filepath.Dir(goBin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"TCPLAB_EXAMPLE=" + filepath.Join(repo, "examples", "teardown"),
	}
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	for _, k := range []string{"CI", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			vars = append(vars, k+"="+v)
		}
	}
	for _, name := range []string{"install", "module"} {
		steps, err := readme.Steps("../README.md", name)
		if err != nil {
			t.Fatal(err)
		}
		var script []string
		for _, l := range strings.Split(strings.TrimSpace(steps), "\n") {
			switch {
			case strings.HasPrefix(l, "git clone "):
				continue // the repository is the clone
			case strings.HasPrefix(l, "# write your scenario"):
				l = `cp "$TCPLAB_EXAMPLE"/*.go .`
			}
			script = append(script, l)
		}
		cmd := exec.Command("bash", "-euc", strings.Join(script, "\n"))
		cmd.Dir = home
		cmd.Env = vars
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README's %s steps fail: %v\n%s\n%s", name, err, strings.Join(script, "\n"), out)
		}
		switch name {
		case "install":
			if !strings.Contains(string(out), "tcplab github.com/tcplab/tcplab") {
				t.Errorf("tcplab version after go install printed %q", out)
			}
		case "module":
			if !strings.Contains(string(out), "ok  \texample.com/mylab") {
				t.Errorf("go test in the new module did not pass its test:\n%s", out)
			}
		}
	}
}

// installHome returns an empty home directory for TestInstallSteps, and
// removes it when the test ends. Its path is the same in every run from
// the repository at repo (under the temporary directory, named by a hash
// of repo), because the go command's build cache keys a package on its
// directory: in a new directory each time, the clone's packages would be
// compiled again, in the same one the previous run's compilation serves.
// A lock on a file beside it, held until the test ends, keeps two runs
// from sharing it at once.
func installHome(t *testing.T, repo string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(repo))
	home := filepath.Join(os.TempDir(), fmt.Sprintf("tcplab-install-%d-%x", os.Getuid(), sum[:6]))
	lock, err := os.OpenFile(home+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		t.Fatalf("lock %s: %v", lock.Name(), err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(home); err != nil {
			t.Error(err)
		}
		lock.Close() // releases the lock
	})
	if err := os.RemoveAll(home); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return home
}
