package netns_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"
)

// The test binary re-executes itself. When modeEnv is set, TestMain runs the
// child function it names instead of the tests, and exits 0 on success or 1
// after printing the error. A child prints its findings as lines on stdout.
const (
	modeEnv  = "TCPLAB_NETNS_TEST"      // child mode: links, bind, pgroup, sleep, orphan, outer
	portEnv  = "TCPLAB_NETNS_TEST_PORT" // bind: the port the parent holds
	innerEnv = "TCPLAB_NETNS_TEST_INNER"
)

// exitUnsupported is the exit status of the "outer" child when netns.Check
// says namespaces are unsupported for it.
const exitUnsupported = 3

func TestMain(m *testing.M) {
	if mode := os.Getenv(modeEnv); mode != "" {
		if err := runChild(mode); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
			if errors.Is(err, netns.ErrUnsupported) {
				os.Exit(exitUnsupported)
			}
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(mode string) error {
	switch mode {
	case "links":
		return childLinks()
	case "bind":
		return childBind()
	case "lan":
		return childLAN()
	case "priority":
		return childPriority()
	case "thread":
		return childThread()
	case "pgroup":
		// Start a helper in our process group, report its pid, wait to be killed.
		sleep := exec.Command("sleep", "60")
		if err := sleep.Start(); err != nil {
			return err
		}
		fmt.Printf("pid %d\n", sleep.Process.Pid)
		time.Sleep(time.Minute)
		return errors.New("not killed")
	case "sleep":
		fmt.Printf("pid %d\n", os.Getpid())
		time.Sleep(time.Minute)
		return errors.New("not killed")
	case "orphan":
		// Start a namespaced child, report its pid, and die without waiting:
		// Pdeathsig must kill the child.
		cmd, err := selfCommand(context.Background(), "sleep")
		if err != nil {
			return err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			return err
		}
		fmt.Print(line)
		os.Exit(0)
	case "outer":
		// Runs without a namespace, possibly as nobody; makes the namespace
		// itself, as an unprivileged caller would.
		fmt.Printf("outer euid %d\n", os.Geteuid())
		if err := netns.Check(); err != nil {
			return err
		}
		cmd, err := selfCommand(context.Background(), os.Getenv(innerEnv))
		if err != nil {
			return err
		}
		cmd.Stdout = os.Stdout
		cmd.Stderr = os.Stderr
		return cmd.Run()
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// childLinks reports the interfaces before and after SetupLoopback, and the
// ids the child has.
func childLinks() error {
	if !netns.InChild() {
		return errors.New("InChild is false in the child")
	}
	if err := printLinks("before"); err != nil {
		return err
	}
	if err := netns.SetupLoopback(); err != nil {
		return err
	}
	if err := printLinks("after"); err != nil {
		return err
	}
	fmt.Printf("euid %d\n", os.Geteuid())
	uidMap, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return err
	}
	fmt.Printf("uid_map %s\n", strings.Join(strings.Fields(string(uidMap)), " "))
	return nil
}

func printLinks(when string) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, ifc := range ifs {
		state := "down"
		if ifc.Flags&net.FlagUp != 0 {
			state = "up"
		}
		fmt.Printf("%s %s %s\n", when, ifc.Name, state)
	}
	return nil
}

// childBind checks that the port the parent listens on is free here: a dial
// is refused, and a listen on it works and carries a connection.
func childBind() error {
	if err := netns.SetupLoopback(); err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", os.Getenv(portEnv))
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		return fmt.Errorf("dial %s reached the parent's listener", addr)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("dial %s: want connection refused, got %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	fmt.Printf("bound %s echo %s\n", addr, buf)
	return nil
}

// selfCommand returns netns.Command re-executing this test binary in the
// given child mode.
func selfCommand(ctx context.Context, mode string, env ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd, err := netns.Command(ctx, exe)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, modeEnv+"="+mode)
	cmd.Env = append(cmd.Env, env...)
	return cmd, nil
}

// runSelf runs the test binary in mode inside a namespace and returns its
// stdout lines.
func runSelf(t *testing.T, mode string, env ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, err := selfCommand(ctx, mode, env...)
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s: %v\nstdout:\n%s\nstderr:\n%s", mode, err, out, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestNetNSCheck(t *testing.T) {
	testenv.NetNS(t)
	if netns.InChild() {
		t.Errorf("InChild() = true in the test process; is %s set in the environment?", netns.EnvVar)
	}
}

// checkLinks asserts the output of childLinks: only lo, down before
// SetupLoopback and up after, and the child sees itself as root with the
// expected host uid behind it.
func checkLinks(t *testing.T, lines []string, hostUID int) {
	t.Helper()
	want := map[string]bool{
		"before lo down": false,
		"after lo up":    false,
		"euid 0":         false,
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "before ") || strings.HasPrefix(l, "after ") || strings.HasPrefix(l, "euid ") {
			if _, ok := want[l]; !ok {
				t.Errorf("child reported %q; want only lo, down before SetupLoopback and up after, as euid 0", l)
				continue
			}
			want[l] = true
		}
	}
	for l, seen := range want {
		if !seen {
			t.Errorf("child did not report %q; output:\n%s", l, strings.Join(lines, "\n"))
		}
	}
	// A non-root caller gets a user namespace mapping it to 0; root gets
	// none, and the child shares the caller's map.
	if hostUID != 0 {
		if want := fmt.Sprintf("uid_map 0 %d 1", hostUID); !contains(lines, want) {
			t.Errorf("child did not report %q; output:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func TestNetNSLoopback(t *testing.T) {
	testenv.NetNS(t)
	checkLinks(t, runSelf(t, "links"), os.Geteuid())
}

func TestNetNSIsolatedPorts(t *testing.T) {
	testenv.NetNS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	lines := runSelf(t, "bind", portEnv+"="+port)
	if want := "bound 127.0.0.1:" + port + " echo ping"; !contains(lines, want) {
		t.Errorf("child output %q, want a line %q", lines, want)
	}
	// The host listener is untouched.
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatalf("host listener after the child: %v", err)
	}
	c.Close()
}

// TestNetNSUnprivileged runs the "outer" child as nobody (uid/gid 65534)
// outside any namespace; it calls netns.Check and netns.Command itself, so
// the child takes the CLONE_NEWUSER path of an unprivileged caller. When the
// test itself is not root, the outer child runs as the test's user. The
// inner child checks its links, and then makes a LAN to a second host, as
// a rootless lab run does.
func TestNetNSUnprivileged(t *testing.T) {
	for _, inner := range []string{"links", "lan"} {
		t.Run(inner, func(t *testing.T) {
			lines, hostUID := runUnprivileged(t, inner)
			if want := fmt.Sprintf("outer euid %d", hostUID); !contains(lines, want) {
				t.Errorf("outer child output %q, want a line %q", lines, want)
			}
			switch inner {
			case "links":
				checkLinks(t, lines, hostUID)
			case "lan":
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "-> 192.168.0.101:8000 echo 4000") }) {
					t.Errorf("no connection over the LAN as uid %d:\n%s", hostUID, strings.Join(lines, "\n"))
				}
			}
		})
	}
}

// runUnprivileged runs the outer child, as nobody when the test is root,
// with the inner child mode inner, and returns its output lines and the
// uid it ran as.
func runUnprivileged(t *testing.T, inner string) ([]string, int) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	outer := func(path string, cred *syscall.Credential) *exec.Cmd {
		stdout.Reset()
		stderr.Reset()
		cmd := exec.Command(path)
		cmd.Dir = filepath.Dir(path)
		cmd.Env = append(os.Environ(), modeEnv+"=outer", innerEnv+"="+inner)
		cmd.Stdout = &stdout
		cmd.Stderr = &stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	hostUID := os.Geteuid()
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		// nobody must be able to execute a copy of this binary.
		dir, err := os.MkdirTemp("", "netns-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		copied := filepath.Join(dir, "netns.test")
		if err := copyFile(copied, exe); err != nil {
			t.Fatal(err)
		}
		cmd = outer(copied, &syscall.Credential{Uid: 65534, Gid: 65534})
		hostUID = 65534
		if err := cmd.Start(); err != nil {
			// Root of a user namespace where nobody is not mapped.
			t.Logf("cannot run as nobody here (%v); running the outer child as uid %d", err, os.Geteuid())
			cmd = nil
			hostUID = os.Geteuid()
		}
	}
	if cmd == nil {
		cmd = outer(exe, nil)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	err = cmd.Wait()
	if cmd.ProcessState.ExitCode() == exitUnsupported {
		testenv.SkipOrFail(t, fmt.Sprintf("as uid %d: %s", hostUID, strings.TrimSpace(stderr.String())), "")
	}
	if err != nil {
		t.Fatalf("outer child: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return strings.Split(strings.TrimSpace(stdout.String()), "\n"), hostUID
}

func copyFile(dst, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}

// TestNetNSCancelKillsGroup checks that cancelling the context kills the
// child's whole process group, not only the child.
func TestNetNSCancelKillsGroup(t *testing.T) {
	testenv.NetNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd, err := selfCommand(ctx, "pgroup")
	if err != nil {
		t.Fatal(err)
	}
	pid := startAndReadPID(t, cmd)
	cancel()
	if err := cmd.Wait(); err == nil {
		t.Error("Wait after cancel: nil error, want the kill")
	}
	waitGone(t, pid, "the child's helper after cancel")
}

// TestNetNSParentDeath checks Pdeathsig: a namespaced child dies when the
// process that started it exits.
func TestNetNSParentDeath(t *testing.T) {
	testenv.NetNS(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), modeEnv+"=orphan")
	pid := startAndReadPID(t, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("orphan parent: %v", err)
	}
	waitGone(t, pid, "the namespaced child after its parent exited")
}

func startAndReadPID(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("reading the pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "pid "))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, want pid N", line)
	}
	return pid
}

// waitGone waits until pid has exited (gone, or a zombie nobody reaps).
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// Field 3, after "pid (comm)", is the state.
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && len(stat) > i+2 && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("%s (pid %d) still runs: %s", what, pid, stat)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
