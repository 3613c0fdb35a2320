package pkt

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/go and the README's blocks of tcplab pkt")

// goRefused are the scripts of testdata/runonly that Run passes but Go
// does not write, and the reason Go gives (with the line).
var goRefused = map[string]string{
	"testdata/runonly/isn.pkt":                   "isn.pkt:9: cannot write as Go: a SYN's sequence number other than 0 is not written as Go yet",
	"testdata/runonly/fdshadow.pkt":              "fdshadow.pkt:17: cannot write as Go: several connections (a second listen or connect) are not written as Go yet",
	"testdata/runonly/synisn.pkt":                "synisn.pkt:9: cannot write as Go: a SYN's sequence number other than 0 is not written as Go yet",
	"testdata/runonly/gso.pkt":                   "gso.pkt:6: cannot write as Go: --mss is not written as Go yet",
	"testdata/runonly/md5.pkt":                   "md5.pkt:12: cannot write as Go: the md5 option is not written as Go yet",
	"testdata/runonly/addrs.pkt":                 "addrs.pkt:5: cannot write as Go: --local_ip is not written as Go yet: the test uses package scripted's addresses; convert the script without it",
	"testdata/runonly/addrs6.pkt":                "addrs6.pkt:6: cannot write as Go: --local_ip is not written as Go yet: the test uses package scripted's addresses; convert the script without it",
	"testdata/runonly/nullbuf.pkt":               "nullbuf.pkt:14: cannot write as Go: a NULL buffer is not written as Go yet",
	"testdata/runonly/tstick.pkt":                "tstick.pkt:4: cannot write as Go: --tcp_ts_tick_usecs (the kernel's TS values checked) is not written as Go yet",
	"testdata/runonly/inq.pkt":                   "inq.pkt:15: cannot write as Go: recvmsg's control messages are not written as Go yet",
	"testdata/runonly/fastopen_client_named.pkt": "fastopen_client_named.pkt:18: cannot write as Go: several connections (a second listen or connect) are not written as Go yet",
	"testdata/runonly/fastopen_cookie.pkt":       "fastopen_cookie.pkt:15: cannot write as Go: the experimental Fast Open option's cookie TFO_COOKIE is not written as Go yet: write it in hex, or use FO",
	"testdata/runonly/conns.pkt":                 "conns.pkt:27: cannot write as Go: several connections (a second listen or connect) are not written as Go yet",
	"testdata/runonly/zerocopy.pkt":              "zerocopy.pkt:23: cannot write as Go: recvmsg's control messages are not written as Go yet",
	"testdata/runonly/zerocopy6.pkt":             "zerocopy6.pkt:20: cannot write as Go: recvmsg's control messages are not written as Go yet",
	"testdata/runonly/timestamping.pkt":          "timestamping.pkt:17: cannot write as Go: recvmsg's control messages are not written as Go yet",
	"testdata/runonly/fastopen_sendmsg.pkt":      "fastopen_sendmsg.pkt:10: cannot write as Go: sendto to AF_UNSPEC is not written as Go yet",
	"testdata/runonly/ports.pkt":                 "ports.pkt:4: cannot write as Go: --bind_port is not written as Go yet: the test uses port 8080",
	"testdata/runonly/disconnect.pkt":            "disconnect.pkt:16: cannot write as Go: connect to AF_UNSPEC (a disconnect) is not written as Go yet",
	"testdata/runonly/ts_ecr_scaled.pkt":         "ts_ecr_scaled.pkt:6: cannot write as Go: --tcp_ts_ecr_scaled (a TS ecr taken to the kernel's clock) is not written as Go yet",
}

// passing are the scripts of testdata that pass and Go writes: those of
// testdata and of testdata/runonly but goRefused's.
func passing(t *testing.T) []string {
	files, err := filepath.Glob("testdata/*.pkt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	more, err := filepath.Glob("testdata/runonly/*.pkt")
	if err != nil || len(more) == 0 {
		t.Fatalf("no scripts in testdata/runonly: %v", err)
	}
	for _, f := range more {
		if _, ok := goRefused[f]; !ok {
			files = append(files, f)
		}
	}
	return files
}

// TestGoGolden compares the Go written for each passing script with
// testdata/go/NAME.go.golden (go test -update rewrites them).
func TestGoGolden(t *testing.T) {
	for _, f := range passing(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Go(s, 0)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "go", strings.TrimSuffix(filepath.Base(f), ".pkt")+".go.golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("Go(%s) differs from %s (go test -update rewrites it):\n%s", f, golden, got)
			}
		})
	}
}

// TestGoRefuses: what Go does not write is refused with one line naming
// the construct and the script's line, for scripts Run passes and for
// constructs Run skips.
func TestGoRefuses(t *testing.T) {
	tests := map[string]string{
		"send with MSG_FASTOPEN":    "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 send(3, ..., 10, MSG_FASTOPEN) = 10",
		"sendto an address":         "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 sendto(3, ..., 10, 0, {sin_port=1}, 16) = 10",
		"msg_control":               "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 recvmsg(3, {msg_name(...)=..., msg_iov(1)=[{..., 1}], msg_control=[{cmsg_level=1}], msg_flags=0}, 0) = 1",
		"ioctl FIONREAD":            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 ioctl(3, FIONREAD, [0]) = 0",
		"TCP_INFO field":            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 getsockopt(3, SOL_TCP, TCP_INFO, {tcpi_nosuch=1}, [104]) = 0",
		"experimental fast open":    "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:10(10) win 1000 <mss 1460,FOEXP abcd,nop,nop>",
		"named experimental cookie": "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:10(10) win 1000 <mss 1460,FOEXP TFO_COOKIE,nop,nop>",
		"block before a socket":     "0 `true`\n+0 %{ print(1) }%",
		"poll field":                "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 poll([{fd=3, events=POLLIN, nosuch=0}], 1, 0) = 0",
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := Parse("x.pkt", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Go(s, 0)
			if err == nil || !strings.HasPrefix(err.Error(), "x.pkt:2: cannot write as Go: ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("Go = %v, want one line: x.pkt:2: cannot write as Go: the reason", err)
			}
		})
	}
	for f, want := range goRefused {
		s, err := ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Go(s, 0); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Go(%s) = %v, want %q", f, err, want)
		}
	}
}

// goFloor is the timing floor of the Go the tests run: that Go times
// each event by its own sleeps and goroutines, without Run's accounting
// of the lab's delays (the kernel's stamps of inbound segments, the run
// delay of calls), so on a shared machine it keeps a wider floor (a
// connect's goroutine started 30 ms late under load).
const goFloor = 100 * time.Millisecond

// TestGoRuns writes each passing script as Go, adds the tests to this
// package through an overlay, and runs them: the Go must compile, pass
// go vet, and pass against the kernel as the script does.
func TestGoRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping test; builds and runs the written tests (-short)")
	}
	needTUN(t)
	goTool := testenv.Tool(t, "go")
	dir := t.TempDir()
	replace := map[string]string{}
	var names []string
	for _, f := range passing(t) {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseFile(abs)
		if err != nil {
			t.Fatal(err)
		}
		src, err := Go(s, goFloor)
		if err != nil {
			t.Fatal(err)
		}
		base := "zz_" + strings.TrimSuffix(filepath.Base(f), ".pkt") + "_test.go"
		tmp := filepath.Join(dir, base)
		if err := os.WriteFile(tmp, src, 0o644); err != nil {
			t.Fatal(err)
		}
		here, _ := filepath.Abs(base)
		replace[here] = tmp
		names = append(names, testName(f))
	}
	b, _ := json.Marshal(map[string]any{"Replace": replace})
	overlay := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlay, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"vet", "-overlay", overlay, "."},
		{"test", "-overlay", overlay, "-count=1", "-v", "-timeout=2m", "-run", "^(" + strings.Join(names, "|") + ")$", "."},
	} {
		out, err := exec.Command(goTool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", args[0], err, out)
		}
		if args[0] == "test" {
			for _, n := range names {
				if !strings.Contains(string(out), "--- PASS: "+n) {
					t.Errorf("%s did not pass:\n%s", n, out)
				}
			}
		}
	}
}
