package scenarios

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/report"
)

// TestCheckExpect runs real programs in namespaces (the lab's Go peers,
// Python's http.server, curl) and checks each property of `check -expect`
// on captures that have it and on captures that do not.
func TestCheckExpect(t *testing.T) {
	testenv.NetNS(t)
	testenv.Tool(t, "python3")
	testenv.Tool(t, "curl")
	out := t.TempDir()
	run := func(dir string, opt lab.Options, scs ...*lab.Scenario) {
		results, err := lab.Run(context.Background(), scs, lab.Config{Out: filepath.Join(out, dir), Options: opt})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if !r.Pass {
				t.Fatalf("%s did not record cleanly:\n%s", r.Scenario, r.Failure())
			}
		}
	}
	run("go", lab.Options{}, Handshake(), HalfClose(), Reset(), KeepAlive(), Loss(), Window(), SynRetry(), serverClosesFirst(), HTTPRealClient())
	run("python", lab.Options{ServerCommand: "python3 -m http.server 8000 --bind 127.0.0.1", Port: 8000}, HalfClose())
	run("tcpdump", lab.Options{Capture: lab.CaptureTcpdump}, HalfClose())
	run("curl", lab.Options{ClientCommand: "curl -s http://$TCPLAB_SERVER/blog/ http://$TCPLAB_SERVER/blog/"}, HTTPRealClient())
	capture := func(dir, name string) string { return filepath.Join(out, dir, name, report.CaptureFile) }

	tests := []struct {
		capture string
		flags   []string
		pass    bool
		report  []string // in the output
	}{
		{capture("go", "handshake"), []string{"-expect", "handshake,no-rst,closer=client,teardown=FIN,ACK,FIN,ACK"}, true, []string{"pass  handshake: frames 1, 2, 3"}},
		{capture("go", "server-closes-first"), []string{"-expect", "closer=server,teardown=S>C FIN,C>S ACK,C>S FIN,S>C ACK"}, true, nil},
		{capture("go", "server-closes-first"), []string{"-expect", "closer=client"}, false, []string{"FAIL  closer=client: the server closed first (FIN frame", "> S>C FIN,ACK"}},
		{capture("go", "halfclose"), []string{"-expect", "half-close,closer=client,no-rst"}, true, []string{"the server sent 113 bytes (frame 8) after it received the client's FIN (frame 6)"}},
		{capture("go", "handshake"), []string{"-expect", "half-close"}, false, []string{"a full close"}},
		{capture("go", "reset"), []string{"-expect", "no-rst", "-stream", "1"}, false, []string{"FAIL  no-rst", "> S>C RST,ACK"}},
		{capture("go", "reset"), []string{"-expect", "handshake", "-stream", "0"}, false, []string{"RST before the handshake completed"}},
		{capture("go", "reset"), []string{"-expect", "teardown=FIN,ACK,FIN,ACK", "-port", "8000"}, false, []string{"the capture shows S>C RST"}},
		{capture("go", "keepalive"), []string{"-expect", "keepalive"}, true, []string{"answered in frame"}},
		{capture("go", "handshake"), []string{"-expect", "keepalive"}, false, []string{"no keep-alive probe"}},
		{capture("go", "loss"), []string{"-expect", "no-retransmission"}, false, []string{"retransmitted segment(s)", "[retransmission]"}},
		{capture("go", "window"), []string{"-expect", "no-zero-window"}, false, []string{"zero window", "[zero-window]"}},
		{capture("go", "handshake"), []string{"-expect", "no-retransmission,no-zero-window,max-syn-retries=0"}, true, nil},
		{capture("go", "syn-retry"), []string{"-expect", "max-syn-retries=0"}, false, []string{"sent its SYN 2 times"}},
		{capture("go", "syn-retry"), []string{"-expect", "max-syn-retries=1,handshake"}, true, nil},
		{capture("python", "halfclose"), []string{"-expect", "handshake,no-rst,closer=client,half-close"}, true, nil},
		// halfclose judges a half-close, not a full close: a client that
		// closes after its answers fails it at the step that says so, with
		// the number run gives that step.
		{capture("python", "halfclose"), []string{"-scenario", "halfclose"}, true, []string{"the halfclose sequence matches"}},
		{capture("go", "halfclose"), []string{"-scenario", "halfclose"}, true, []string{"the halfclose sequence matches (11 steps)"}},
		{capture("go", "keepalive"), []string{"-scenario", "halfclose"}, false, []string{"halfclose step 11: field ending", "no half-close: the server sent no data after the client's FIN"}},
		{capture("curl", "http-real-client"), []string{"-scenario", "halfclose"}, false, []string{"halfclose step 11: field ending", "a full close"}},
		{capture("curl", "http-real-client"), []string{"-expect", "handshake,no-rst,closer=client,teardown=FIN,ACK,FIN,ACK"}, true, []string{"stream 0:"}},
		// A capture made by tcpdump, with the scenario and properties at once.
		{filepath.Join(out, "tcpdump", "halfclose", "tcpdump.pcap"), []string{"-scenario", "halfclose", "-expect", "handshake,half-close,teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK"}, true, []string{"the halfclose sequence matches"}},
		// A scenario of one connection judges each connection of a capture, and names it.
		{capture("go", "http-real-client"), []string{"-scenario", "handshake"}, false, []string{"stream 0: ", "stream 1: ", "does not show the handshake sequence"}},
		{capture("go", "http-real-client"), []string{"-scenario", "handshake", "-stream", "1"}, false, []string{"handshake step 5"}},
		// Headers cut by the snap length: no verdict but that one.
		{"../capture/testdata/snaplen-cut.pcap", []string{"-scenario", "handshake", "-expect", "no-rst"}, false, []string{"cut inside the TCP header by the capture's snap length"}},
		// A LAN run whose server held its ACKs until it read: no zero
		// window, and the client's tail-loss probe dropped as old data.
		// TCP allows it on the LAN and on loopback alike.
		{"testdata/lan-no-zero-window.pcapng", []string{"-scenario", "lan"}, true, []string{"the lan sequence matches (16 steps)"}},
		{"testdata/lan-no-zero-window.pcapng", []string{"-scenario", "walkthrough"}, true, []string{"the walkthrough sequence matches (15 steps)"}},
		// A loopback run whose client's POST came 87 ms late on a busy
		// machine: the server read before its buffer filled, and no zero
		// window was due.
		{"testdata/walkthrough-no-zero-window.pcapng", []string{"-scenario", "walkthrough"}, true, []string{"the walkthrough sequence matches (15 steps)"}},
		{"testdata/walkthrough-no-zero-window.pcapng", []string{"-scenario", "halfclose"}, false, []string{"halfclose step"}},
		// A loopback run whose server acknowledged 18 ms late, on a busy
		// machine: the client's tail-loss probe resent the end of its
		// last segment (soak round 11 beside a test run).
		{"testdata/walkthrough-tail-loss-probe.pcapng", []string{"-scenario", "walkthrough"}, true, []string{"the walkthrough sequence matches (15 steps)"}},
		{"testdata/walkthrough-tail-loss-probe.pcapng", []string{"-expect", "no-retransmission"}, false, []string{"retransmitted segment(s)"}},
		// Someone else's programs: the fixture's request is 312 bytes, not the blog post's 417.
		{"../capture/testdata/keepalive.pcap", []string{"-scenario", "keepalive"}, true, []string{"the keepalive sequence matches"}},
		{capture("go", "handshake"), []string{"-expect", "no-rst", "-port", "9"}, false, []string{"no connection on port 9; the capture has: stream 0"}},
	}
	for _, tt := range tests {
		name := filepath.Base(filepath.Dir(tt.capture)) + " " + strings.Join(tt.flags, " ")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := lab.Command("tcplab", append(append([]string{"check"}, tt.flags...), tt.capture), &stdout, &stderr, All())
			want := lab.ExitPass
			if !tt.pass {
				want = lab.ExitFail
			}
			if code != want {
				t.Errorf("exit %d, want %d\n%s%s", code, want, stdout.String(), stderr.String())
			}
			for _, r := range tt.report {
				if !strings.Contains(stdout.String()+stderr.String(), r) {
					t.Errorf("output lacks %q:\n%s%s", r, stdout.String(), stderr.String())
				}
			}
		})
	}

	t.Run("junit", func(t *testing.T) {
		junit := filepath.Join(out, "junit.xml")
		files := []string{capture("go", "handshake"), capture("go", "reset"), filepath.Join(out, "missing.pcap")}
		args := append([]string{"check", "-expect", "handshake,no-rst", "-junit", junit}, files...)
		var stdout, stderr bytes.Buffer
		if code := lab.Command("tcplab", args, &stdout, &stderr, All()); code != lab.ExitFail {
			t.Fatalf("exit %d, want 1", code)
		}
		b, err := os.ReadFile(junit)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests  int `xml:"tests,attr"`
			Fails  int `xml:"failures,attr"`
			Errors int `xml:"errors,attr"`
			Suites []struct {
				Name  string `xml:"name,attr"`
				Cases []struct {
					Name    string `xml:"name,attr"`
					Failure *struct {
						Message string `xml:"message,attr"`
						Text    string `xml:",chardata"`
					} `xml:"failure"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("junit.xml does not parse: %v\n%s", err, b)
		}
		// handshake: 2 cases; reset: 2 connections x 2; missing: 1 error.
		if len(doc.Suites) != 3 || doc.Tests != 7 || doc.Fails != 3 || doc.Errors != 1 {
			t.Errorf("suites %d, tests %d, failures %d, errors %d; want 3, 7, 3, 1\n%s", len(doc.Suites), doc.Tests, doc.Fails, doc.Errors, b)
		}
		found := false
		for _, s := range doc.Suites {
			for _, c := range s.Cases {
				if c.Failure != nil && strings.HasSuffix(c.Name, ": no-rst") && strings.Contains(c.Failure.Text, "> S>C RST,ACK") {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no no-rst failure showing the RST frame:\n%s", b)
		}
	})

	t.Run("json", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := lab.Command("tcplab", []string{"check", "-json", "-expect", "no-rst", capture("go", "reset")}, &stdout, &stderr, All())
		// One object, written as it goes: the pass comes last.
		if code != lab.ExitFail || !strings.HasPrefix(stdout.String(), `{"files":[{"file":`) || !strings.HasSuffix(stdout.String(), `],"pass":false}`+"\n") ||
			strings.Count(stdout.String(), "\n") != 1 {
			t.Errorf("exit %d, stdout %q: want one JSON verdict object", code, stdout.String())
		}
	})
}

// TestCheckExpectUsage: an unknown property is a usage error that lists
// the known ones; a capture without TCP says so.
func TestCheckExpectUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := lab.Command("tcplab", []string{"check", "-expect", "no-rst,teleport", "x.pcap"}, &stdout, &stderr, All())
	if code != lab.ExitUsage || !strings.Contains(stderr.String(), `unknown property "teleport"`) || !strings.Contains(stderr.String(), "max-syn-retries=N") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	// A capture of one UDP datagram, raw IPv4.
	udp := filepath.Join(t.TempDir(), "udp.pcapng")
	f, err := os.Create(udp)
	if err != nil {
		t.Fatal(err)
	}
	w, err := capture.NewWriter(f, layers.LinkTypeRaw)
	if err != nil {
		t.Fatal(err)
	}
	ip := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, 0, 53, 0, 53, 0, 8, 0, 0}
	if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(ip), Length: len(ip)}, ip, ""); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	f.Close()
	stdout.Reset()
	stderr.Reset()
	code = lab.Command("tcplab", []string{"check", "-expect", "no-rst", udp}, &stdout, &stderr, All())
	if code != lab.ExitFail || !strings.Contains(stderr.String(), "no TCP segment in its 1 frames") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("a capture without TCP: exit %d, stderr %q", code, stderr.String())
	}

	// The keep-alive fixture without its handshake: a capture started late.
	late := filepath.Join(t.TempDir(), "late.pcapng")
	src, err := capture.Open("../capture/testdata/keepalive.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	lf, err := os.Create(late)
	if err != nil {
		t.Fatal(err)
	}
	lw, err := capture.NewWriter(lf, src.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; ; n++ {
		data, ci, err := src.ReadPacketData()
		if err != nil {
			break
		}
		if n > 3 {
			lw.WritePacket(ci, data, "")
		}
	}
	lw.Flush()
	lf.Close()
	stdout.Reset()
	stderr.Reset()
	code = lab.Command("tcplab", []string{"check", "-scenario", "keepalive", late}, &stdout, &stderr, All())
	if code != lab.ExitFail || !strings.Contains(stdout.String()+stderr.String(), "begins in the middle of the connection") || strings.Contains(stdout.String()+stderr.String(), "step 1") {
		t.Errorf("a capture started late: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
