// Package netns gives one tcplab scenario a private network namespace with
// its own loopback interface, so that the scenario's server, client and
// capture see only their own traffic and can bind any port without meeting
// the host's sockets.
//
// It works by re-executing a binary (usually the running program itself,
// os.Executable) rather than by switching namespaces inside a running Go
// process, where goroutines may run on any thread. Data flows one way: the
// parent builds the child with [Command], which sets CLONE_NEWNET (plus
// CLONE_NEWUSER with the caller mapped to root when the caller is not root,
// so no sudo is needed where unprivileged user namespaces are allowed) and
// the environment variable TCPLAB_NETNS=1 ([EnvVar]); the child checks
// [InChild], calls [SetupLoopback] to bring its `lo` up (a new namespace
// starts with `lo` down and nothing else), runs the scenario and reports back
// through its standard output, files or exit status. Nothing is shared
// between the two processes but what the parent passes in the command line,
// the environment and the file descriptors.
//
// Inside that namespace, a lab with more than one host makes the others with
// [NewHost] (a namespace beside its own, entered only by [Host.Do] on a
// thread of its own, so the Go scheduler never runs other code there) and
// joins them with a [LAN]: a veth pair with MAC addresses, an MTU, addresses
// and the offloads off. Addresses such as the blog post's 192.168.0.101
// exist only in these namespaces; nothing routes them from the host's.
//
// [Check] tells up front whether namespaces can be made here; its error wraps
// [ErrUnsupported] when the system forbids them, so callers can fall back
// (tcplab's -no-sandbox) or skip. The package has no mutable package state.
package netns
