package lab_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gplayers "github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/property"
)

// asCommandEnv makes the test binary run lab.Command on its arguments, as
// tcplab would: the tests run it so to send it signals and to run it as
// another user.
const asCommandEnv = "TCPLAB_LAB_TEST_COMMAND"

// TestMain lets the test binary be the child that check -- COMMAND
// re-executes in its namespace, and a tcplab of its own.
func TestMain(m *testing.M) {
	if lab.InChild() {
		os.Exit(lab.RunChild(nil))
	}
	if os.Getenv(asCommandEnv) == "1" {
		os.Exit(lab.Command("tcplab", os.Args[1:], os.Stdout, os.Stderr, nil))
	}
	code := m.Run()
	if testBins.dir != "" {
		os.RemoveAll(testBins.dir)
	}
	os.Exit(code)
}

// testBins are the programs the tests run under check -- COMMAND, each
// built once per test binary, in a folder that every user may read, so
// that nobody can run them too.
var testBins struct {
	dirOnce sync.Once
	dir     string
	dirErr  error
	prog    builtBin // testdata/checkprog, by go build
	srv     builtBin // testdata/checksrv's tests, by go test -c
}

type builtBin struct {
	once sync.Once
	path string
	err  error
}

// buildBin runs go with args and -o PATH, once, and returns PATH.
func buildBin(t *testing.T, b *builtBin, name string, args ...string) string {
	t.Helper()
	testBins.dirOnce.Do(func() {
		testBins.dir, testBins.dirErr = os.MkdirTemp("", "tcplab-checkcmd-bin-")
		if testBins.dirErr == nil {
			testBins.dirErr = os.Chmod(testBins.dir, 0o755)
		}
	})
	if testBins.dirErr != nil {
		t.Fatal(testBins.dirErr)
	}
	b.once.Do(func() {
		path := filepath.Join(testBins.dir, name)
		out, err := exec.Command("go", append(args, "-o", path, "./testdata/"+strings.TrimSuffix(name, ".test"))...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		b.path = path
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// buildCheckprog builds testdata/checkprog, a server and client in one
// program, and returns its path.
func buildCheckprog(t *testing.T) string {
	t.Helper()
	return buildBin(t, &testBins.prog, "checkprog", "build")
}

// buildChecksrv builds testdata/checksrv's tests, a server and its client,
// into a test binary as the README's CI section does with go test -c, and
// returns its path.
func buildChecksrv(t *testing.T) string {
	t.Helper()
	return buildBin(t, &testBins.srv, "checksrv.test", "test", "-c")
}

// checkRun is one run of tcplab check -- checkprog.
type checkRun struct {
	code           int
	stdout, stderr string
	capture, junit string
}

// runCheck runs `tcplab check -expect expect -junit DIR/junit.xml --
// checkprog ARGS...` through lab.Command, in this process.
func runCheck(t *testing.T, expect string, args ...string) checkRun {
	t.Helper()
	return runCheckOf(t, buildCheckprog(t), expect, args...)
}

// runCheckOf is runCheck of the program prog.
func runCheckOf(t *testing.T, prog, expect string, args ...string) checkRun {
	t.Helper()
	dir := t.TempDir()
	r := checkRun{junit: filepath.Join(dir, "junit.xml"), capture: filepath.Join(dir, "junit.pcapng")}
	var stdout, stderr bytes.Buffer
	argv := append([]string{"check", "-expect", expect, "-junit", r.junit, "--", prog}, args...)
	r.code = lab.Command("tcplab", argv, &stdout, &stderr, nil)
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

// junitCases reads a JUnit file: each case's name and, when it failed
// (a failure or an error), its message.
func junitCases(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	cases := map[string]string{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			cases[c.Name] = ""
			switch {
			case c.Failure != nil:
				cases[c.Name] = "FAIL " + c.Failure.Message
			case c.Error != nil:
				cases[c.Name] = "FAIL (error) " + c.Error.Message
			}
		}
	}
	return cases
}

// teardownComplete reads a capture's only connection and says whether it
// holds both FINs and the ACK of each: the last of them is the final ACK
// that a capture stopped too early loses.
func teardownComplete(t *testing.T, path string) error {
	t.Helper()
	f, err := capture.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var pkts []capture.Packet
	if _, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		if p.TCP {
			pkts = append(pkts, p.Keep())
		}
		return nil
	}); err != nil {
		return err
	}
	conns := property.Conns(pkts)
	if len(conns) != 1 {
		return fmt.Errorf("%d connections in the capture, want 1", len(conns))
	}
	end := conns[0].Ending()
	for d, fin := range end.FIN {
		switch {
		case fin.Frame == 0:
			return fmt.Errorf("no FIN from %v among its %d segments", capture.Dir(d), len(pkts))
		case fin.AckedBy == 0:
			return fmt.Errorf("the FIN from %v (frame %d) is never acknowledged: the final ACK is lost (%d segments)", capture.Dir(d), fin.Frame, len(pkts))
		}
	}
	return nil
}

// TestCheckCommand runs checkprog under check -- COMMAND: the verdict is
// the capture's properties and the program's exit status, in the report
// and in JUnit, and the capture holds the whole teardown.
func TestCheckCommand(t *testing.T) {
	testenv.NetNS(t)
	tests := []struct {
		name   string
		expect string
		args   []string
		code   int
		stdout []string // lines of the report
		stderr string   // in the one-line error
		failed []string // JUnit cases that fail, by a part of their name
		whole  bool     // the capture holds both FINs, each acknowledged
	}{
		{name: "server closes", expect: "handshake,no-rst,closer=server", code: 0,
			stdout: []string{" exited 0; ", "pass  handshake", "pass  no-rst", "pass  closer=server: the server closed first"}, whole: true},
		{name: "client closes, server expected", expect: "handshake,no-rst,closer=server", args: []string{"-close", "client"}, code: 1,
			stdout: []string{"pass  handshake", "FAIL  closer=server: the client closed first"}, stderr: "fails its checks", failed: []string{"closer=server"}, whole: true},
		{name: "client closes, client expected", expect: "handshake,no-rst,closer=client", args: []string{"-close", "client"}, code: 0,
			stdout: []string{"pass  closer=client"}, whole: true},
		{name: "server resets", expect: "handshake,no-rst", args: []string{"-close", "reset"}, code: 1,
			stdout: []string{"FAIL  no-rst"}, stderr: "fails its checks", failed: []string{"no-rst"}},
		{name: "exits 1", expect: "handshake,no-rst,closer=server", args: []string{"-exit", "1"}, code: 1,
			stdout: []string{" exited with status 1; ", "pass  closer=server"}, stderr: "exited with status 1", failed: []string{"run "}, whole: true},
		{name: "no TCP", expect: "handshake", args: []string{"-notcp"}, code: 1,
			stdout: []string{"checkprog: no connection", "0 frames captured"}, stderr: "nothing to check (", failed: []string{"read "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheck(t, tt.expect, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			if !strings.Contains(r.stdout, r.capture) {
				t.Errorf("stdout does not name the capture %s:\n%s", r.capture, r.stdout)
			}
			switch {
			case tt.stderr == "" && r.stderr != "":
				t.Errorf("stderr %q, want nothing", r.stderr)
			case tt.stderr != "" && (!strings.Contains(r.stderr, tt.stderr) || !strings.HasPrefix(r.stderr, "tcplab: ") || strings.Count(r.stderr, "\n") != 1):
				t.Errorf("stderr %q, want one tcplab: line with %q", r.stderr, tt.stderr)
			}
			cases := junitCases(t, r.junit)
			for name, failure := range cases {
				want := false
				for _, f := range tt.failed {
					want = want || strings.Contains(name, f)
				}
				if want != strings.HasPrefix(failure, "FAIL") {
					t.Errorf("JUnit case %q: %q; want failed=%v", name, failure, want)
				}
			}
			if tt.whole {
				if err := teardownComplete(t, r.capture); err != nil {
					t.Errorf("%s: %v", r.capture, err)
				}
			}
		})
	}
}

// TestCheckCommandLosesNothing runs check -- COMMAND once, with a test
// binary's server and client as COMMAND, and fails when the capture lacks
// the teardown's final ACK or the kernel dropped a frame. The client's
// close, whose ACK is the final one, is the test's last act before the
// binary exits. One run is cheap; run it many times to measure:
//
//	go test ./lab -run TestCheckCommandLosesNothing -count=200
func TestCheckCommandLosesNothing(t *testing.T) {
	testenv.NetNS(t)
	r := runCheckOf(t, buildChecksrv(t), "handshake,no-rst,closer=server,teardown=FIN,ACK,FIN,ACK", "-test.v")
	if !strings.Contains(r.stdout, "--- PASS: TestServerClosesFirst") {
		t.Errorf("the test binary's own test did not pass:\n%s", r.stdout)
	}
	if r.code != 0 {
		t.Errorf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, ", none dropped: ") {
		t.Errorf("the kernel dropped frames:\n%s", r.stdout)
	}
	if err := teardownComplete(t, r.capture); err != nil {
		t.Errorf("%s: %v", r.capture, err)
	}
}

// TestCheckCommandErrors: mistakes get one line that says what is wrong
// and what to do, before any namespace is made.
func TestCheckCommandErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"check", "--", "true"}, 2, []string{"no properties given", "-expect PROPERTIES"}},
		{[]string{"check", "-expect", "handshake", "--", "nosuchcommand-tcplab"}, 2, []string{"cannot run nosuchcommand-tcplab", "not found", "PATH"}},
		{[]string{"check", "-expect", "handshake", "--", "./nosuchcommand-tcplab"}, 2, []string{"cannot run ./nosuchcommand-tcplab", "no such file"}},
		{[]string{"check", "-expect", "handshake", "--"}, 2, []string{"-- needs the COMMAND"}},
		{[]string{"check", "-expect", "handshake", "x.pcap", "--", "true"}, 2, []string{"capture files or -- COMMAND, not both", "x.pcap"}},
		{[]string{"check", "-expect", "handshake", "-o", "x.pcapng", "x.pcap"}, 2, []string{"-o FILE", "-- COMMAND"}},
		{[]string{"check", "-expect", "nosuch", "--", "true"}, 2, []string{"-expect"}},
		{[]string{"check", "x.pcap"}, 2, []string{"(FILE... | -- COMMAND [ARG...])"}},
		{[]string{"check", "-expect", "handshake"}, 2, []string{"(FILE... | -- COMMAND [ARG...])"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := lab.Command("tcplab", tt.args, &stdout, &stderr, nil)
		if code != tt.code {
			t.Errorf("%q: exit %d, want %d; stderr %q", tt.args, code, tt.code, stderr.String())
		}
		if !strings.HasPrefix(stderr.String(), "tcplab: ") || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%q: stderr %q, want one tcplab: line", tt.args, stderr.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%q: %q lacks %q", tt.args, stderr.String(), w)
			}
		}
	}
}

// TestCheckCommandHelp: check -h shows both forms and -o.
func TestCheckCommandHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := lab.Command("tcplab", []string{"check", "-h"}, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, w := range []string{"[flags] FILE...", "[flags] -- COMMAND [ARG...]", "-o FILE", "-- ./srv.test", "user namespaces"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("check -h lacks %q:\n%s", w, stdout.String())
		}
	}
	stdout.Reset()
	lab.Command("tcplab", []string{"help"}, &stdout, &stderr, nil)
	if !strings.Contains(stdout.String(), "-- COMMAND") {
		t.Errorf("help lacks -- COMMAND:\n%s", stdout.String())
	}
}

// commandAs runs this test binary as tcplab with args, as uid (and gid)
// when uid is not negative.
func commandAs(exe string, uid int, args ...string) *exec.Cmd {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), asCommandEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	}
	return cmd
}

// TestCheckCommandUnprivileged runs check -- COMMAND, COMMAND a test
// binary's server and client, as nobody (uid 65534) when the test is
// root, else as the test's own user: without root, through a user
// namespace. The capture is the user's.
func TestCheckCommandUnprivileged(t *testing.T) {
	testenv.NetNS(t)
	prog := buildChecksrv(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	uid := os.Geteuid()
	dir, err := os.MkdirTemp("", "tcplab-checkcmd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if uid == 0 {
		uid = 65534
		// nobody must be able to run a copy of this binary and to write here.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		exe = filepath.Join(dir, "lab.test")
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out")
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(out, uid, uid); err != nil {
			t.Fatal(err)
		}
		dir = out
	}
	junit := filepath.Join(dir, "junit.xml")
	cmd := commandAs(exe, uid, "check", "-expect", "handshake,no-rst,closer=server", "-junit", junit, "--", prog)
	if uid == os.Geteuid() {
		cmd.SysProcAttr.Credential = nil
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if strings.Contains(stderr.String(), "needs user namespaces or root") {
		testenv.SkipOrFail(t, fmt.Sprintf("as uid %d: %s", uid, strings.TrimSpace(stderr.String())), "")
	}
	if err != nil {
		t.Fatalf("as uid %d: %v\nstdout:\n%s\nstderr:\n%s", uid, err, stdout.String(), stderr.String())
	}
	capPath := filepath.Join(dir, "junit.pcapng")
	if err := teardownComplete(t, capPath); err != nil {
		t.Errorf("%s: %v", capPath, err)
	}
	fi, err := os.Stat(capPath)
	if err != nil {
		t.Fatal(err)
	}
	if owner := int(fi.Sys().(*syscall.Stat_t).Uid); owner != uid {
		t.Errorf("the capture belongs to uid %d, want %d (who ran check)", owner, uid)
	}
}

// TestCheckCommandInterrupt sends SIGINT to tcplab check -- COMMAND while
// COMMAND holds its connection open: COMMAND ends (the kernel closes its
// sockets), the capture is written with that close, and the exit status
// is 130.
func TestCheckCommandInterrupt(t *testing.T) {
	testenv.NetNS(t)
	prog := buildCheckprog(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	capPath := filepath.Join(t.TempDir(), "held.pcapng")
	cmd := commandAs(exe, -1, "check", "-expect", "handshake", "-o", capPath, "--", prog, "-close", "client", "-hold")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The program says when it holds the connection: then send SIGINT.
	sc := bufio.NewScanner(out)
	var said []string
	for sc.Scan() {
		said = append(said, sc.Text())
		if strings.Contains(sc.Text(), "holding the connection") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for sc.Scan() {
			said = append(said, sc.Text())
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("tcplab did not stop after SIGINT; it said %q", said)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != lab.ExitInterrupted {
		t.Fatalf("exit: %v, want status 130; stderr %q", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), capPath) {
		t.Errorf("stderr %q, want it to say interrupted and where the capture is", stderr.String())
	}
	if err := teardownComplete(t, capPath); err != nil {
		t.Errorf("%s: %v", capPath, err)
	}
}

// TestCheckNothingToCheck: a capture without TCP says why it may be
// empty: a file of any tool's may have been stopped before the tool wrote
// its buffer; a capture of check -- COMMAND lost nothing, so the command
// made no connection.
func TestCheckNothingToCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := capture.NewWriter(f, gplayers.LinkTypeEthernet)
	if err == nil {
		err = w.Flush()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		command       string
		want, notWant []string
	}{
		{"", []string{"no TCP segment in its 0 frames: nothing to check", "capture filter", "--immediate-mode"}, []string{"made no TCP connection"}},
		{"./srv.test", []string{"no TCP segment in its 0 frames: nothing to check", "./srv.test made no TCP connection"}, []string{"filter", "immediate"}},
	}
	for _, tt := range tests {
		v := lab.Check(path, lab.CheckRequest{Stream: -1, Command: tt.command})
		if v.Pass {
			t.Errorf("command %q: an empty capture passes", tt.command)
		}
		for _, w := range tt.want {
			if !strings.Contains(v.Error, w) {
				t.Errorf("command %q: %q lacks %q", tt.command, v.Error, w)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(v.Error, w) {
				t.Errorf("command %q: %q says %q", tt.command, v.Error, w)
			}
		}
	}
}

// TestCheckCommandJSON: with -json the verdict object holds the command's
// exit status beside the capture's verdict, and -o names the capture.
func TestCheckCommandJSON(t *testing.T) {
	testenv.NetNS(t)
	prog := buildCheckprog(t)
	capPath := filepath.Join(t.TempDir(), "run.pcapng")
	var stdout, stderr bytes.Buffer
	code := lab.Command("tcplab", []string{"check", "-json", "-expect", "closer=server", "-o", capPath, "--", prog, "-exit", "3"}, &stdout, &stderr, nil)
	if code != lab.ExitFail {
		t.Errorf("exit %d, want %d; stderr %q", code, lab.ExitFail, stderr.String())
	}
	// The program's own line comes first; the verdict is the last line.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var v struct {
		Pass    bool               `json:"pass"`
		Command lab.CommandVerdict `json:"command"`
		Files   []lab.FileVerdict  `json:"files"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
		t.Fatalf("%v:\n%s", err, stdout.String())
	}
	if v.Pass || v.Command.Exit != 3 || v.Command.Capture != capPath || v.Command.Frames == 0 {
		t.Errorf("verdict %+v; want a failure with exit 3, frames, and the capture %s", v, capPath)
	}
	if len(v.Files) != 1 || !v.Files[0].Pass || len(v.Files[0].Conns) != 1 {
		t.Errorf("files %+v; want one capture whose one connection passes", v.Files)
	}
}

// TestCheckCommandKeepsItsFiles: the command does not inherit the
// child's capture file and outcome pipe (descriptors 3 and 4).
func TestCheckCommandKeepsItsFiles(t *testing.T) {
	testenv.NetNS(t)
	sh := testenv.Tool(t, "sh")
	var stdout, stderr bytes.Buffer
	lab.Command("tcplab", []string{"check", "-expect", "handshake", "-o", filepath.Join(t.TempDir(), "c.pcapng"), "--",
		sh, "-c", "test ! -e /proc/self/fd/3 && test ! -e /proc/self/fd/4"}, &stdout, &stderr, nil)
	if !strings.Contains(stdout.String(), " exited 0; ") {
		t.Errorf("the command has descriptor 3 or 4 open:\n%s%s", stdout.String(), stderr.String())
	}
}
