package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/vishvananda/netlink"
)

// EnvVar is the environment variable that [Command] sets to "1" in the
// child's environment and that [InChild] reads.
const EnvVar = "TCPLAB_NETNS"

// ErrUnsupported is wrapped by the error of [Check] when this system does
// not let the caller create a network namespace (the kernel answered EPERM,
// EACCES, EINVAL or ENOSPC), as opposed to any other failure.
var ErrUnsupported = errors.New("network namespaces unsupported")

// Command returns an [exec.Cmd] like [exec.CommandContext], except that the
// child starts in a new network namespace:
//
//   - SysProcAttr.Cloneflags has CLONE_NEWNET; when the caller is not root
//     (os.Geteuid() != 0) it also has CLONE_NEWUSER, with the caller's uid and
//     gid mapped to 0 inside (setgroups denied), which gives the child the
//     capabilities it needs inside its namespaces (CAP_NET_ADMIN to bring lo
//     up, CAP_NET_RAW to capture) without sudo, where the kernel allows
//     unprivileged user namespaces.
//   - SysProcAttr.Pdeathsig is SIGKILL, so the child dies with its parent.
//     The kernel ties it to the thread that started the child: do not Start
//     from a goroutine that holds runtime.LockOSThread and then exits.
//   - SysProcAttr.Setpgid puts the child in a process group of its own, and
//     Cancel (called when ctx is done) kills that whole group, so helpers the
//     child started die with it.
//   - Env is the parent's environment plus TCPLAB_NETNS=1 ([EnvVar]); a
//     caller that replaces Env must keep that entry for [InChild] to work.
//
// The namespace starts with only lo, and lo is down: the child calls
// [SetupLoopback]. The namespace disappears when its last process exits.
// Errors creating it come from Start (a *os.PathError wrapping the errno);
// use [Check] to find out beforehand, with a readable reason.
//
// The error is non-nil when ctx is nil or when name cannot be found
// (exec.Cmd.Err).
func Command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	if ctx == nil {
		return nil, errors.New("netns: nil context")
	}
	cmd := exec.CommandContext(ctx, name, args...)
	if cmd.Err != nil {
		return nil, fmt.Errorf("netns: %w", cmd.Err)
	}
	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true,
	}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
	cmd.Env = append(os.Environ(), EnvVar+"=1")
	cmd.Cancel = func() error {
		// Setpgid made the child's pid its process group id.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	return cmd, nil
}

// InChild reports whether this process was started by [Command], that is
// whether TCPLAB_NETNS=1 is in its environment. Processes the child starts
// inherit both the variable and the namespace.
func InChild() bool {
	return os.Getenv(EnvVar) == "1"
}

// SetupLoopback brings the interface lo up in the calling process's network
// namespace; a child started by [Command] calls it first. It needs
// CAP_NET_ADMIN in that namespace, which a child of Command has.
func SetupLoopback() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("netns: find loopback interface lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("netns: bring loopback interface lo up: %w", err)
	}
	return nil
}

// Check tries to start a trivial child (true) in a new network namespace
// with [Command] and returns nil if that works. Otherwise its error says in
// one line why and what to do; when the kernel refused the namespace (EPERM,
// EACCES, EINVAL or ENOSPC) the error wraps [ErrUnsupported] as well as the
// errno, for errors.Is.
func Check() error {
	path, err := exec.LookPath("true")
	if err != nil {
		path = "/bin/true"
	}
	cmd, err := Command(context.Background(), path)
	if err != nil {
		return fmt.Errorf("cannot create a network namespace: %w", err)
	}
	err = cmd.Run()
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EPERM, syscall.EACCES, syscall.EINVAL, syscall.ENOSPC:
			return &unsupportedError{errno: errno}
		}
	}
	return fmt.Errorf("cannot create a network namespace: %w", err)
}

// unsupportedError is the error of Check when the kernel refuses to create
// the namespace.
type unsupportedError struct {
	errno syscall.Errno
}

func (e *unsupportedError) Error() string {
	var hint string
	switch e.errno {
	case syscall.ENOSPC:
		hint = "a namespace limit is reached (sysctl user.max_user_namespaces / user.max_net_namespaces)"
	case syscall.EINVAL:
		hint = "the kernel lacks network or user namespace support (CONFIG_NET_NS / CONFIG_USER_NS)"
	default:
		hint = "run as root, or enable unprivileged user namespaces " +
			"(sysctl kernel.unprivileged_userns_clone=1 / kernel.apparmor_restrict_unprivileged_userns=0)"
	}
	return "cannot create a network namespace: " + e.errno.Error() + "; " + hint + ", or use -no-sandbox"
}

func (e *unsupportedError) Unwrap() []error {
	return []error{ErrUnsupported, e.errno}
}
