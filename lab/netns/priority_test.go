package netns_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"
)

// TestRaisePriority: in a session of its own (so that the test's session
// keeps its priority), RaisePriority renices the process's threads to
// ForwarderNice and leaves the session's autogroup at its nice: that
// nice would outlive the process, for every program of the session.
func TestRaisePriority(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "RaisePriority needs CAP_SYS_NICE", "run as root")
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), modeEnv+"=priority")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := string(out)
	if !strings.Contains(got, fmt.Sprintf("thread nice %d", netns.ForwarderNice)) {
		t.Errorf("the thread was not reniced to %d:\n%s", netns.ForwarderNice, got)
	}
	// A new session's autogroup starts at nice 0.
	if _, err := os.Stat("/proc/self/autogroup"); err == nil && !regexp.MustCompile(`(?m)^autogroup \S+ nice 0$`).MatchString(got) {
		t.Errorf("the session's autogroup was reniced:\n%s", got)
	}
}

// childPriority raises the priority and prints the thread's nice and
// the autogroup line.
func childPriority() error {
	if err := netns.RaisePriority(); err != nil {
		return err
	}
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return err
	}
	// getpriority returns 20 - nice.
	fmt.Printf("thread nice %d\n", 20-prio)
	if b, err := os.ReadFile("/proc/self/autogroup"); err == nil {
		fmt.Printf("autogroup %s", b)
	}
	return nil
}
