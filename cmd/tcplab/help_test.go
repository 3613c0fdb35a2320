package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
)

// TestCommandHelp: each command's -h prints its own usage, its flags with
// their defaults and examples, whether -h comes first or last.
func TestCommandHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"run", "-h"}, []string{"usage: tcplab run [flags] [SCENARIO...]", "-keepalive-idle duration", "(default 1s)", "-capture string", "-no-sandbox", "-trace-path FRAMES", "examples:", "tcplab run -server"}},
		{[]string{"run", "halfclose", "-help"}, []string{"usage: tcplab run", "-out DIR"}},
		{[]string{"annotate", "-h"}, []string{"usage: tcplab annotate [flags] FILE... [FILTER EXPRESSION]", "-json", "-o FILE", "-stream N", "-port PORT", "-filter EXPR", "-summary", "-ladder FILE", "-walkthrough FILE", "-tseq FILE", "-lang", "-interface N", "examples:", "-tseq stream1.svg"}},
		{[]string{"check", "-h"}, []string{"usage: tcplab check (-scenario NAME | -expect PROPERTIES) [flags] FILE...", "-expect PROPERTIES", "-junit FILE", "-json", "-stream N", "-port PORT", "-strict", "-keepalive-idle", "examples:"}},
		{[]string{"list", "-h"}, []string{"usage: tcplab list"}},
		{[]string{"pkt", "-h"}, []string{"usage: tcplab pkt [flags] FILE.pkt...", "-out DIR", "-parallel N", "-junit FILE", "-floor duration", "(default 25ms)", "-go", "examples:"}},
		{[]string{"version", "-h"}, []string{"usage: tcplab version [-m]", "-m"}},
	}
	for _, tt := range tests {
		code, stdout, stderr := runTCPLab(t, tt.args...)
		if code != 0 || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q; want 0 and nothing", tt.args, code, stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%q: help lacks %q:\n%s", tt.args, w, stdout)
			}
		}
		if strings.Contains(stdout, "Commands:") {
			t.Errorf("%q: printed the general command list, not the command's help", tt.args)
		}
	}
}

// TestHelpNamesEveryFlag: "tcplab help" names every command and every flag
// each command's -h lists, so that it cannot fall behind the commands.
func TestHelpNamesEveryFlag(t *testing.T) {
	_, general, _ := runTCPLab(t, "help")
	for _, cmd := range []string{"annotate", "list", "run", "check", "pkt", "version", "help"} {
		if !strings.Contains(general, "tcplab "+cmd) {
			t.Errorf("help lacks the command %s", cmd)
		}
		if cmd == "help" {
			continue
		}
		_, own, _ := runTCPLab(t, cmd, "-h")
		for _, l := range strings.Split(own, "\n") {
			if !strings.HasPrefix(l, "  -") {
				continue
			}
			name := strings.Fields(l)[0]
			if !strings.Contains(general, "["+name+" ") && !strings.Contains(general, "["+name+"]") && !strings.Contains(general, "("+name+" ") && !strings.Contains(general, "| "+name+" ") {
				t.Errorf("help's %s line lacks %s, which %s -h lists", cmd, name, cmd)
			}
		}
	}
}

// TestVersion: "tcplab version" prints the module, the Go that built it
// and its platform, as Go tools do; -m the whole build information.
func TestVersion(t *testing.T) {
	code, stdout, stderr := runTCPLab(t, "version")
	if code != 0 || stderr != "" || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("version: exit %d, stderr %q, stdout %q; want 0 and one line", code, stderr, stdout)
	}
	for _, w := range []string{"tcplab ", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(stdout, w) {
			t.Errorf("version %q lacks %q", stdout, w)
		}
	}
	if code, stdout, _ := runTCPLab(t, "version", "-m"); code != 0 || !strings.Contains(stdout, "go\t"+runtime.Version()) {
		t.Errorf("version -m: exit %d, %q; want the build information", code, stdout)
	}
	if code, _, stderr := runTCPLab(t, "version", "extra"); code != 2 || !strings.Contains(stderr, "no arguments") {
		t.Errorf("version extra: exit %d, %q; want 2", code, stderr)
	}
}

// TestClearErrors: mistakes a new user makes get one line that says what
// is wrong and what to do, and the exit status of their kind.
func TestClearErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "readme.txt")
	if err := os.WriteFile(text, []byte("hello, this is not a capture file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		code    int
		want    []string
		notWant []string
	}{
		{[]string{"run", "-keepalive-idle", "100ms", "keepalive"}, 2, []string{"-keepalive-idle 100ms", "whole seconds"}, nil},
		{[]string{"run", "-keepalive-idle", "1500ms", "keepalive"}, 2, []string{"whole seconds"}, nil},
		{[]string{"check", "-keepalive-idle", "0s", "-scenario", "keepalive", "x.pcap"}, 2, []string{"whole seconds"}, nil},
		{[]string{"annotate", dir}, 1, []string{dir, "is a directory"}, []string{"empty"}},
		{[]string{"check", "-scenario", "halfclose", dir}, 1, []string{dir, "is a directory"}, []string{"empty"}},
		{[]string{"run", "-out", "/proc/tcplab-out", "handshake"}, 1, []string{"/proc/tcplab-out", "-out DIR"}, []string{"index.html"}},
		{[]string{"run", "nosuch"}, 2, []string{`unknown scenario "nosuch"`, "halfclose"}, nil},
		{[]string{"run", "-client", "true", "halfclose"}, 2, []string{"halfclose cannot run with your own client", "http-real-client can"}, nil},
		{[]string{"run", "-server", "true", "keepalive"}, 2, []string{"keepalive cannot run against your own server", "halfclose can"}, nil},
		{[]string{"run", "-server", "true"}, 2, []string{"-server needs the scenario"}, nil},
		{[]string{"run", "-path", "delay=-5ms", "handshake"}, 2, []string{"-path", "delay"}, nil},
		{[]string{"run", "-path", "loss=150%", "handshake"}, 2, []string{"-path", "loss"}, nil},
		{[]string{"run", "-path", "speed=1mbit", "handshake"}, 2, []string{"-path", "speed"}, nil},
		{[]string{"run", "-path", "delay=20", "handshake"}, 2, []string{"-path", "delay"}, nil},
		{[]string{"run", "-path", "jitter=1300000h,delay=1ms", "halfclose"}, 2, []string{"-path", "jitter=1300000h: at most 1m0s"}, nil},
		{[]string{"run", "-path", "delay=9223372036854775807ns", "halfclose"}, 2, []string{"-path", "delay=9223372036854775807ns: at most 1m0s"}, nil},
		{[]string{"run", "-path", "delay=20ms", "-no-sandbox", "handshake"}, 2, []string{"-path", "-no-sandbox"}, nil},
		{[]string{"run", "hanshake"}, 2, []string{`unknown scenario "hanshake"; did you mean handshake?`}, nil},
		{[]string{"run", "HalfClose"}, 2, []string{"did you mean halfclose?"}, nil},
		{[]string{"run", "zzz"}, 2, []string{`unknown scenario "zzz"; known:`}, []string{"did you mean"}},
		{[]string{"run", "-parallel", "-1", "handshake"}, 2, []string{"-parallel -1"}, nil},
		{[]string{"run", "-junit", "/nonexistent/x.xml", "-out", dir, "handshake"}, 2, []string{"-junit /nonexistent/x.xml", "no directory /nonexistent"}, []string{"SCENARIO", "started"}},
		{[]string{"run", "-junit", dir, "-out", dir, "handshake"}, 2, []string{"is a directory"}, []string{"SCENARIO", "started"}},
		{[]string{"check", "-scenario", "halfclose", text}, 1, []string{text + ": not a pcap or pcapng file"}, []string{text + ": " + text}},
	}
	for _, tt := range tests {
		code, stdout, stderr := runTCPLab(t, tt.args...)
		if code != tt.code {
			t.Errorf("%q: exit %d, want %d; stderr %q", tt.args, code, tt.code, stderr)
		}
		if !strings.HasPrefix(stderr, "tcplab: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: stderr %q, want one tcplab: line", tt.args, stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: %q lacks %q", tt.args, stderr, w)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(stderr+stdout, w) {
				t.Errorf("%q: says %q: %q", tt.args, w, stderr+stdout)
			}
		}
	}
}

// TestCauseAlone: when the conversation never began (the user's server
// command does not exist), the cause is reported alone, without the steps
// that the empty capture then lacks.
func TestCauseAlone(t *testing.T) {
	testenv.NetNS(t)
	code, stdout, _ := runTCPLab(t, "run", "-out", t.TempDir(), "-server", "nosuchcommand-tcplab", "-port", "8000", "halfclose")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stdout, `server "nosuchcommand-tcplab" exited`) || !strings.Contains(stdout, "not found") {
		t.Errorf("the cause is missing:\n%s", stdout)
	}
	if strings.Contains(stdout, "step 1") || strings.Contains(stdout, "field missing") {
		t.Errorf("a step report follows the cause:\n%s", stdout)
	}
}

// TestRunDuplicates: a scenario named twice runs once, and the run says so.
func TestRunDuplicates(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	code, stdout, stderr := runTCPLab(t, "run", "-out", out, "handshake", "handshake")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "handshake named more than once: each scenario runs once") {
		t.Errorf("the run does not say it runs handshake once:\n%s", stderr)
	}
	if n := strings.Count(stdout, out+"/handshake"); n != 1 || !strings.Contains(stdout, "1 scenario,") {
		t.Errorf("handshake ran %d times:\n%s", n, stdout)
	}
}

// TestRunJUnitUnwritable: a JUnit report that cannot be written after the
// run fails it with one line, and the other artifacts are kept.
func TestRunJUnitUnwritable(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	// /proc is a directory in which no one, root included, can create a
	// file: the check before the run passes, the write after it fails.
	junit := "/proc/tcplab-junit.xml"
	code, _, stderr := runTCPLab(t, "run", "-out", out, "-junit", junit, "handshake")
	if code != 1 || !strings.Contains(stderr, "tcplab: the scenarios passed, but the JUnit report was not written; -junit: ") {
		t.Errorf("exit %d, stderr %q; want 1 and the reason", code, stderr)
	}
	for _, f := range []string{"index.html", "handshake/capture.pcapng", "handshake/result.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s lost: %v", f, err)
		}
	}
}

// TestTracePathUsage: -trace-path takes frame numbers or off; anything
// else, or off with frames, is a usage error that names the flag, before
// anything runs.
func TestTracePathUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-kernel", "ebpf"}, `-kernel "ebpf": use events or samples`},
		{[]string{"-trace-path", "x"}, `invalid value "x" for flag -trace-path: "x": give frame numbers from 1 up`},
		{[]string{"-trace-path", "0"}, `"0": give frame numbers from 1 up`},
		{[]string{"-trace-path", "3", "-trace-path", "off"}, "off with frames"},
		{[]string{"-trace-path", "off", "-trace-path", "3"}, "off with frames"},
		{[]string{"-trace-path", "3", "-no-sandbox"}, "-trace-path follows segments through the kernel of a sandboxed run's namespaces; drop -no-sandbox"},
	} {
		code, stdout, stderr := runTCPLab(t, append(append([]string{"run", "-out", t.TempDir()}, tt.args...), "handshake")...)
		if code != 2 || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want 2 and one line with %q", tt.args, code, stderr, stdout, tt.want)
		}
	}
}
