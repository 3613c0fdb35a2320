package main

import (
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
		{[]string{"run", "-h"}, []string{"usage: tcplab run [flags] [SCENARIO...]", "-keepalive-idle duration", "(default 1s)", "-capture string", "-no-sandbox", "examples:", "tcplab run -server"}},
		{[]string{"run", "halfclose", "-help"}, []string{"usage: tcplab run", "-out DIR"}},
		{[]string{"annotate", "-h"}, []string{"usage: tcplab annotate [flags] FILE [FILTER EXPRESSION]", "-json", "-o FILE", "-stream N", "-port PORT", "-filter EXPR", "-summary", "-ladder FILE", "-walkthrough FILE", "-tseq FILE", "-lang", "-interface N", "examples:", "-tseq stream1.svg"}},
		{[]string{"check", "-h"}, []string{"usage: tcplab check (-scenario NAME | -expect PROPERTIES) [flags] FILE...", "-expect PROPERTIES", "-junit FILE", "-json", "-stream N", "-port PORT", "-strict", "-keepalive-idle", "examples:"}},
		{[]string{"list", "-h"}, []string{"usage: tcplab list"}},
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

// TestClearErrors: mistakes a new user makes get one line that says what
// is wrong and what to do, and the exit status of their kind.
func TestClearErrors(t *testing.T) {
	dir := t.TempDir()
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
