package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/peer"
	"github.com/tcplab/tcplab/lab/report"
)

// resettingServer is a server that answers, then closes abortively with
// SO_LINGER 0: a RST where a FIN should be.
const resettingServer = `python3 -c '
import socket, struct
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000))
s.listen()
c, _ = s.accept()
c.recv(65536)
c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ngreat")
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()
'`

// TestHalfCloseAgainstYourServer runs the halfclose client against real
// programs started in the namespace: Python's http.server closes gracefully
// and passes; a server that resets fails, and the report says where.
func TestHalfCloseAgainstYourServer(t *testing.T) {
	testenv.NetNS(t)
	testenv.Tool(t, "python3")
	tests := []struct {
		name    string
		command string
		pass    bool
		either  bool // only run and check agreeing is asserted
		report  string
	}{
		{"python http.server", "python3 -m http.server 8000 --bind 127.0.0.1", true, false, ""},
		{"abortive close", resettingServer, false, false, "field flags: expected one of"},
		// Its verdict is the kernel's and net/http's business; the same
		// verdict from run and check is the point.
		{"go net/http", netHTTP("server"), false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results, err := lab.Run(context.Background(), []*lab.Scenario{HalfClose()}, lab.Config{
				Out: t.TempDir(), Options: lab.Options{ServerCommand: tt.command, Port: 8000}})
			if err != nil {
				t.Fatal(err)
			}
			r := results[0]
			sameVerdict(t, HalfClose(), r)
			if tt.either {
				return
			}
			if r.Pass != tt.pass {
				t.Fatalf("pass = %v, want %v:\n%s", r.Pass, tt.pass, r.Failure())
			}
			if !tt.pass {
				f := r.Failure()
				if !strings.Contains(f, "RST") {
					t.Errorf("the report does not show the RST:\n%s", f)
				}
			}
		})
	}
}

// resettingClient sends a request, reads the answer, and closes
// abortively: a RST where a FIN should be.
const resettingClient = `python3 -c '
import os, socket, struct
host, port = os.environ["TCPLAB_SERVER"].split(":")
s = socket.create_connection((host, int(port)))
s.sendall(b"GET /blog/ HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(65536)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
'`

// TestHTTPRealClientAgainstYourClient runs real client programs against the
// blog post's server: curl closes gracefully and passes; a client that resets
// fails, and the report shows the RST.
func TestHTTPRealClientAgainstYourClient(t *testing.T) {
	testenv.NetNS(t)
	testenv.Tool(t, "curl")
	testenv.Tool(t, "python3")
	tests := []struct {
		name    string
		command string
		pass    bool
	}{
		{"curl", `curl -sS http://$TCPLAB_SERVER/blog/ http://$TCPLAB_SERVER/blog/`, true},
		{"abortive close", resettingClient, false},
		{"go net/http", netHTTP("client"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results, err := lab.Run(context.Background(), []*lab.Scenario{HTTPRealClient()}, lab.Config{
				Out: t.TempDir(), Options: lab.Options{ClientCommand: tt.command}})
			if err != nil {
				t.Fatal(err)
			}
			r := results[0]
			sameVerdict(t, HTTPRealClient(), r)
			if r.Pass != tt.pass {
				t.Fatalf("pass = %v, want %v:\n%s", r.Pass, tt.pass, r.Failure())
			}
			if !tt.pass && !strings.Contains(r.Failure(), "RST") {
				t.Errorf("the report does not show the RST:\n%s", r.Failure())
			}
		})
	}
}

// crashingServer answers nothing: it reads the request, prints why, and
// exits with status 1, after it listened.
const crashingServer = `python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000))
s.listen()
c, _ = s.accept()
c.recv(65536)
print("boom: cannot answer", flush=True)
sys.exit(1)
'`

// TestYourServerIsVisible: what the user's server printed and how it
// ended are kept in server.log, and a crash after it listened is named in
// the failure with its last words, not only as the client's error.
func TestYourServerIsVisible(t *testing.T) {
	testenv.NetNS(t)
	testenv.Tool(t, "python3")
	out := t.TempDir()
	results, err := lab.Run(context.Background(), []*lab.Scenario{HalfClose()}, lab.Config{
		Out: out, Options: lab.Options{ServerCommand: crashingServer, Port: 8000}})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if r.Pass {
		t.Fatal("a crashing server passed")
	}
	if f := r.Failure(); !strings.Contains(f, "exited (exit status 1) during the scenario: boom: cannot answer") {
		t.Errorf("the failure does not name the crash:\n%s", f)
	}
	b, err := os.ReadFile(filepath.Join(r.Dir, lab.ServerLog))
	if err != nil || !strings.Contains(string(b), "boom: cannot answer\n[exit status 1]") {
		t.Errorf("server.log = %q, %v", b, err)
	}
}

// sameVerdict asserts that tcplab check -scenario on the capture of a run
// with the user's own peer gives the run's verdict on its segments.
func sameVerdict(t *testing.T, sc *lab.Scenario, r lab.Result) {
	t.Helper()
	if r.Error != "" && len(r.Mismatches) == 0 {
		return // the run failed for a reason of its own (a peer's error), not on the wire
	}
	var stdout, stderr bytes.Buffer
	code := lab.Command("tcplab", []string{"check", "-scenario", sc.Name, filepath.Join(r.Dir, report.CaptureFile)}, &stdout, &stderr, All())
	if onWire := len(r.Mismatches) == 0; (code == lab.ExitPass) != onWire {
		t.Errorf("run judged the segments %v, check says exit %d:\nrun:\n%s\ncheck:\n%s%s", onWire, code, r.Failure(), stdout.String(), stderr.String())
	}
}

// netHTTP is a shell command that runs this test binary as Go's net/http
// server or client (TestMain sees TCPLAB_TEST_NETHTTP).
func netHTTP(role string) string {
	exe, _ := os.Executable()
	return fmt.Sprintf("TCPLAB_TEST_NETHTTP=%s %q", role, exe)
}

// runNetHTTP is the test binary as Go's net/http server, on the blog
// post's port, or as its client, two GETs on one kept-alive connection.
func runNetHTTP(role string) int {
	switch role {
	case "server":
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, peer.ResponseBody) })
		if err := http.ListenAndServe("127.0.0.1:8000", nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case "client":
		url := "http://" + os.Getenv("TCPLAB_SERVER") + "/blog/"
		tr := &http.Transport{}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for i := 0; i < 2; i++ {
			resp, err := c.Get(url)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
	}
	return 0
}
