package lab_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"golang.org/x/sys/unix"
)

const pktdata = "pkt/testdata/"

var spaces = regexp.MustCompile(`  +`)

func TestPktUsage(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pkt")
	if err := os.WriteFile(bad, []byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < SX 0:0(0) win 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{[]string{"pkt"}, lab.ExitUsage, "pkt needs the scripts to run"},
		// A script that does not parse fails at its line, as under
		// packetdrill, and the others run.
		{[]string{"pkt", "-out", t.TempDir(), bad}, lab.ExitFail, bad + ":2: the script does not parse: unknown flag 'X'"},
		{[]string{"pkt", "-out", t.TempDir(), bad, pktdata + "server_basic.pkt"}, lab.ExitFail, "1 failed, 0 skipped of 2 scripts"},
		{[]string{"pkt", "no-such.pkt"}, lab.ExitUsage, "no-such.pkt"},
		{[]string{"pkt", "-parallel", "-1", pktdata + "server_basic.pkt"}, lab.ExitUsage, "-parallel -1"},
		{[]string{"pkt", "-cpus", "2", pktdata + "server_basic.pkt"}, lab.ExitUsage, "-cpus 2: use one or all"},
		{[]string{"pkt", "-cpus", "all", "-out", t.TempDir(), pktdata + "server_basic.pkt"}, lab.ExitPass, "1 script, 0 failed, 0 skipped"},
		{[]string{"pkt", "-junit", t.TempDir(), pktdata + "server_basic.pkt"}, lab.ExitUsage, "is a directory"},
		{[]string{"pkt", "-tolerance", "wide", pktdata + "server_basic.pkt"}, lab.ExitUsage, "-tolerance wide: use floor, packetdrill or auto"},
		{[]string{"pkt", "-tolerance", "auto", "-floor", "10ms", pktdata + "server_basic.pkt"}, lab.ExitUsage, "-floor goes with -tolerance floor, not auto"},
		{[]string{"pkt", "--mtu=5", pktdata + "server_basic.pkt"}, lab.ExitUsage, "--mtu=5: want an MTU from 576 to 65535"},
		{[]string{"pkt", "--ip_version=ipv5", pktdata + "server_basic.pkt"}, lab.ExitUsage, "--ip_version=ipv5: want ipv4, ipv4-mapped-ipv6 or ipv6"},
		{[]string{"pkt", "--ip_version=ipv4,ipv5", pktdata + "server_basic.pkt"}, lab.ExitUsage, "--ip_version=ipv5: want ipv4, ipv4-mapped-ipv6 or ipv6"},
		{[]string{"pkt", "--ip_version=ipv4,ipv4", pktdata + "server_basic.pkt"}, lab.ExitUsage, "--ip_version lists ipv4 twice"},
		{[]string{"pkt", "--bind_port=0", pktdata + "server_basic.pkt"}, lab.ExitUsage, "--bind_port=0: want a port from 1 to 65535"},
		{[]string{"pkt", "--connect_port=65536", pktdata + "server_basic.pkt"}, lab.ExitUsage, "--connect_port=65536: want a port from 1 to 65535"},
		{[]string{"pkt", "-go", "--ip_version=ipv4,ipv6", pktdata + "server_basic.pkt"}, lab.ExitUsage, "-go writes one family: give --ip_version one of ipv4, ipv6"},
		{[]string{"pkt", "-go", pktdata + "server_basic.pkt"}, lab.ExitPass, "func TestServerBasic(t *testing.T) {"},
		// packetdrill's run_all.py passes --send_omit_free to every script.
		{[]string{"pkt", "--send_omit_free", "-out", t.TempDir(), pktdata + "server_basic.pkt"}, lab.ExitPass, "1 script, 0 failed, 0 skipped"},
		// --dry_run parses and checks, runs nothing, and says which
		// scripts tcplab plays; a script that does not parse fails.
		{[]string{"pkt", "--dry_run", "-out", "/nonexistent/dir", pktdata + "server_basic.pkt", pktdata + "skip/icmp_udp.pkt"}, lab.ExitPass, "server_basic.pkt: parses; tcplab plays it\n"},
		{[]string{"pkt", "--dry_run", pktdata + "skip/icmp_udp.pkt"}, lab.ExitPass, "icmp_udp.pkt: parses; tcplab skips it at line "},
		{[]string{"pkt", "--dry_run", bad, pktdata + "server_basic.pkt"}, lab.ExitFail, bad + ": does not parse: " + bad + ":2: unknown flag 'X'"},
		{[]string{"pkt", "-go", bad}, lab.ExitFail, bad + ":2: unknown flag 'X'"},
		{[]string{"pkt", "--dry_run", pktdata + "fail/badopt.pkt"}, lab.ExitPass, "badopt.pkt: parses; tcplab fails it at line 3: --mtu=5: want an MTU"},
		{[]string{"pkt", "-go", pktdata + "skip/fastopen.pkt"}, lab.ExitFail, "fastopen.pkt:6: cannot write as Go: TCP option FO MY_COOKIE"},
		{[]string{"pkt", "-h"}, lab.ExitPass, "usage: tcplab pkt [flags] FILE.pkt..."},
		{[]string{"pkt", "-D", "NOEQUALS", pktdata + "server_basic.pkt"}, lab.ExitUsage, "--define=NOEQUALS: want NAME=VALUE"},
		// -D names an ICMP code too (packetdrill's lexer reads any word);
		// without it the script fails at the word, as under packetdrill.
		{[]string{"pkt", "-out", t.TempDir(), pktdata + "fail/icmp_code.pkt"}, lab.ExitFail, `icmp_code.pkt:13: ICMP type unreachable has no code "CODE"`},
		{[]string{"pkt", "-out", t.TempDir(), "-D", "CODE=port_unreachable", pktdata + "fail/icmp_code.pkt"}, lab.ExitPass, "1 script, 0 failed, 0 skipped"},
		// packetdrill's -D names the cookie the script skips without it.
		{[]string{"pkt", "-go", "-D", "MY_COOKIE=abcd1234", pktdata + "skip/fastopen.pkt"}, lab.ExitPass, "func TestFastopen(t *testing.T) {"},
		{[]string{"pkt", "-go", "--define", "MY_COOKIE=abcd1234", pktdata + "skip/fastopen.pkt"}, lab.ExitPass, "func TestFastopen(t *testing.T) {"},
	}
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := lab.Command("tcplab", tt.args, &stdout, &stderr, nil)
		if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.want) {
			t.Errorf("tcplab %q: exit %d, want %d with %q:\n%s%s", tt.args, code, tt.code, tt.want, stdout.String(), stderr.String())
		}
		// pkt runs the scripts on one CPU and gives the process's
		// threads theirs back.
		if tids, err := os.ReadDir("/proc/self/task"); err == nil {
			for _, e := range tids {
				var s unix.CPUSet
				if tid, err := strconv.Atoi(e.Name()); err == nil && unix.SchedGetaffinity(tid, &s) == nil && s != cpus {
					t.Errorf("tcplab %q: thread %d may run on %d CPUs after it, want the %d it had", tt.args, tid, s.Count(), cpus.Count())
				}
			}
		}
	}
}

// TestPktRun (with a timing tolerance for a shared machine, -tolerance
// floor) runs a passing, a failing and a skipped script at once and
// checks the exit status, the summary, packetdrill's report of the
// failure, the JUnit report and each script's artifacts.
func TestPktRun(t *testing.T) {
	if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		testenv.SkipOrFail(t, "cannot open /dev/net/tun: "+err.Error(), "run as root, with the tun module")
	} else {
		f.Close()
	}
	out := t.TempDir()
	junit := filepath.Join(out, "junit.xml")
	var stdout, stderr bytes.Buffer
	code := lab.Command("tcplab", []string{"pkt", "-out", out, "-parallel", "3", "-junit", junit, "-tolerance", "floor",
		pktdata + "server_basic.pkt", pktdata + "fail/errno.pkt", pktdata + "skip/fastopen.pkt"}, &stdout, &stderr, nil)
	if code != lab.ExitFail {
		t.Errorf("exit %d, want %d", code, lab.ExitFail)
	}
	for _, w := range []string{
		"SCRIPT RESULT TIME TOLERANCE ARTIFACTS", "pkt/testdata/server_basic.pkt pass", "pkt/testdata/fail/errno.pkt FAIL", "pkt/testdata/skip/fastopen.pkt skip",
		"3 scripts, 1 failed, 1 skipped",
		"pkt/testdata/fail/errno.pkt:8: +0 accept(3, ..., ...) = 4",
		"pkt/testdata/fail/errno.pkt:8: accept: expected result 4 but got -1 EAGAIN",
		"pkt/testdata/skip/fastopen.pkt:6: TCP option FO MY_COOKIE: the script sends a cookie written in hex",
		"(timing tolerance 25ms: tcplab's floor, wider than packetdrill's default --tolerance_usecs (4ms))",
	} {
		// The table's columns are as wide as its widest cell.
		if !strings.Contains(spaces.ReplaceAllString(stdout.String(), " "), w) {
			t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "1 failed, 1 skipped of 3 scripts") {
		t.Errorf("stderr %q lacks the tally", stderr.String())
	}
	x, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`tests="3" failures="1" errors="0" skipped="1"`, `<skipped message="pkt/testdata/skip/fastopen.pkt:6:`, `<failure message="pkt/testdata/fail/errno.pkt:8: accept: expected result 4`} {
		if !strings.Contains(string(x), w) {
			t.Errorf("junit lacks %q:\n%s", w, x)
		}
	}
	for _, f := range []string{"server_basic/capture.pcapng", "server_basic/walkthrough.md", "server_basic/ladder.svg", "server_basic/result.json", "errno/result.json", "fastopen/result.json"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("artifact %s: %v", f, err)
		}
	}
	var res struct {
		Result string `json:"result"`
		Steps  []struct {
			Line int `json:"line"`
		} `json:"steps"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "server_basic/result.json"))
	if err := json.Unmarshal(b, &res); err != nil || res.Result != "pass" || len(res.Steps) < 10 {
		t.Errorf("server_basic/result.json: %v %+v", err, res)
	}
	stdout.Reset()
	stderr.Reset()
	if code := lab.Command("tcplab", []string{"pkt", "-out", out, "-floor", "25ms", pktdata + "server_basic.pkt", pktdata + "client_basic.pkt"}, &stdout, &stderr, nil); code != lab.ExitPass {
		t.Errorf("passing scripts: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	// By default the timing rule is packetdrill's: the script's own 4 ms
	// (errno.pkt sets none, and fails on a result, not on time).
	stdout.Reset()
	stderr.Reset()
	code = lab.Command("tcplab", []string{"pkt", "-out", out, pktdata + "fail/errno.pkt"}, &stdout, &stderr, nil)
	if code != lab.ExitFail || !regexp.MustCompile(`errno.pkt +FAIL +\S+ +4ms `).MatchString(stdout.String()) || !strings.Contains(stdout.String(), "(timing tolerance 4ms: packetdrill's") {
		t.Errorf("default timing rule: exit %d, want %d and packetdrill's 4 ms\n%s%s", code, lab.ExitFail, stdout.String(), stderr.String())
	}
	// packetdrill's flags on the command line overwrite the script's
	// header, as in packetdrill.
	stdout.Reset()
	stderr.Reset()
	code = lab.Command("tcplab", []string{"pkt", "-out", out, "--tolerance_usecs=30000", pktdata + "server_basic.pkt"}, &stdout, &stderr, nil)
	if code != lab.ExitPass || !regexp.MustCompile(`server_basic.pkt +pass +\S+ +30ms `).MatchString(stdout.String()) {
		t.Errorf("--tolerance_usecs=30000 over the script's 10000: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code = lab.Command("tcplab", []string{"pkt", "-out", out, "--ip_version=ipv4", pktdata + "runonly/ipv6.pkt"}, &stdout, &stderr, nil)
	if code != lab.ExitFail || !strings.Contains(stdout.String(), "expected value 10 but got 2") {
		t.Errorf("--ip_version=ipv4 over the script's ipv6: exit %d, want %d and an AF_INET socket\n%s%s", code, lab.ExitFail, stdout.String(), stderr.String())
	}
	// packetdrill's flags without a value: aggregate.pkt's line takes
	// the kernel's two segments, which --strict_segments refuses.
	stdout.Reset()
	stderr.Reset()
	code = lab.Command("tcplab", []string{"pkt", "-out", out, "--strict_segments", pktdata + "aggregate.pkt"}, &stdout, &stderr, nil)
	if code != lab.ExitFail || !regexp.MustCompile(`aggregate.pkt +FAIL `).MatchString(stdout.String()) {
		t.Errorf("--strict_segments: exit %d, want %d, aggregate.pkt failed\n%s%s", code, lab.ExitFail, stdout.String(), stderr.String())
	}
	// runonly/ts_ecr_scaled.pkt without its header line passes: its
	// SYN/ACK's ecr 105 is sent as the kernel's last TS val; with the
	// flag it is 5 ticks later, which the kernel takes too. Its 90 in
	// fail/ is 10 ticks before: refused only with the flag.
	noScaled := filepath.Join(t.TempDir(), "noscaled.pkt")
	src, err := os.ReadFile(pktdata + "fail/ts_ecr_scaled.pkt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noScaled, []byte(strings.Replace(string(src), "--tcp_ts_ecr_scaled\n", "\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want int
	}{{nil, lab.ExitPass}, {[]string{"--tcp_ts_ecr_scaled"}, lab.ExitFail}} {
		stdout.Reset()
		stderr.Reset()
		args := append(append([]string{"pkt", "-out", out}, c.args...), noScaled)
		if code := lab.Command("tcplab", args, &stdout, &stderr, nil); code != c.want {
			t.Errorf("%v on a SYN/ACK's ecr 10 ticks early: exit %d, want %d\n%s%s", c.args, code, c.want, stdout.String(), stderr.String())
		}
	}
	// -tolerance auto says by how much it widened each script's.
	stdout.Reset()
	stderr.Reset()
	if code := lab.Command("tcplab", []string{"pkt", "-out", out, "-tolerance", "auto", pktdata + "server_basic.pkt"}, &stdout, &stderr, nil); code != lab.ExitPass {
		t.Errorf("-tolerance auto: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !regexp.MustCompile(`server_basic.pkt +pass +\S+ +\S+ \(noise \+[0-9.]+[µm]?s\)`).MatchString(stdout.String()) || !strings.Contains(stdout.String(), "-tolerance auto: each script's tolerance is its own widened by") {
		t.Errorf("-tolerance auto does not say by how much:\n%s", stdout.String())
	}
}

// TestPktFamilies: -ip_version given a list runs each script once per
// family, each run a row of the summary, a folder of artifacts and a
// JUnit testcase named with its family. server_basic.pkt expects the
// SYN/ACK's MSS of IPv4 (1460), so it passes as ipv4 and
// ipv4-mapped-ipv6 (the wire is IPv4) and fails as ipv6 (1440).
func TestPktFamilies(t *testing.T) {
	if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		testenv.SkipOrFail(t, "cannot open /dev/net/tun: "+err.Error(), "run as root, with the tun module")
	} else {
		f.Close()
	}
	type testcase struct {
		Name    string    `xml:"name,attr"`
		Failure *struct{} `xml:"failure"`
	}
	tests := []struct {
		name     string
		families string
		code     int
		failed   map[string]bool // by family: whether its testcase fails
	}{
		{"pass", "ipv4,ipv4-mapped-ipv6", lab.ExitPass, map[string]bool{"ipv4": false, "ipv4-mapped-ipv6": false}},
		{"fail", "ipv4,ipv6", lab.ExitFail, map[string]bool{"ipv4": false, "ipv6": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			junit := filepath.Join(out, "junit.xml")
			var stdout, stderr bytes.Buffer
			code := lab.Command("tcplab", []string{"pkt", "-out", out, "-floor", "100ms", "-junit", junit, "-ip_version", tt.families, pktdata + "server_basic.pkt"}, &stdout, &stderr, nil)
			if code != tt.code {
				t.Errorf("-ip_version %s: exit %d, want %d\n%s%s", tt.families, code, tt.code, stdout.String(), stderr.String())
			}
			x, err := os.ReadFile(junit)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Cases []testcase `xml:"testsuite>testcase"`
			}
			if err := xml.Unmarshal(x, &doc); err != nil {
				t.Fatalf("junit: %v\n%s", err, x)
			}
			if len(doc.Cases) != len(tt.failed) {
				t.Errorf("junit has %d testcases, want one per family (%d):\n%s", len(doc.Cases), len(tt.failed), x)
			}
			for _, c := range doc.Cases {
				fam := strings.TrimSuffix(strings.TrimPrefix(c.Name, pktdata+"server_basic.pkt ["), "]")
				failed, ok := tt.failed[fam]
				if !ok {
					t.Errorf("testcase %q does not name one of the families %s", c.Name, tt.families)
					continue
				}
				if (c.Failure != nil) != failed {
					t.Errorf("testcase %q: failure %v, want %v:\n%s", c.Name, c.Failure != nil, failed, x)
				}
				if fi, err := os.Stat(filepath.Join(out, "server_basic", fam, "result.json")); err != nil || fi.Size() == 0 {
					t.Errorf("%s's artifacts: %v", fam, err)
				}
				word := "pass"
				if failed {
					word = "FAIL"
				}
				if row := pktdata + "server_basic.pkt [" + fam + "] " + word; !strings.Contains(spaces.ReplaceAllString(stdout.String(), " "), row) {
					t.Errorf("summary lacks %q:\n%s", row, stdout.String())
				}
			}
		})
	}
}
