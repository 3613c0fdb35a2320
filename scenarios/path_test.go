package scenarios

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/report"
)

// TestPath runs the handshake scenario across a routed path, as
// `tcplab run -path` does: with a delay the client's capture shows the
// SYN/ACK one round trip after the SYN, and the FIN's answer too; with a
// rate alone the kernel's tbf does it (this kernel has tbf but no netem).
// result.json says which path ran, by what, with which seed.
func TestPath(t *testing.T) {
	testenv.NetNS(t)
	tests := []struct {
		path, want, mechanism string
		rtt                   time.Duration
	}{
		{"delay=20ms", "delay=20ms", "tun-line", 40 * time.Millisecond},
		{"c2s:delay=5ms,s2c:delay=25ms", "c2s:delay=5ms,s2c:delay=25ms", "tun-line", 30 * time.Millisecond},
		{"rate=10mbit", "rate=10mbit", "tbf", 0},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			out := t.TempDir()
			results, err := lab.Run(context.Background(), []*lab.Scenario{Handshake()},
				lab.Config{Out: out, Options: lab.Options{Path: tc.path, Seed: 7}})
			if err != nil {
				t.Fatal(err)
			}
			r := results[0]
			if !r.Pass {
				t.Fatalf("handshake across %s failed:\n%s", tc.path, r.Failure())
			}
			if r.Network != "routed" || r.Path != tc.want || r.Mechanism != tc.mechanism || r.Seed != 7 {
				t.Errorf("result says network %q path %q mechanism %q seed %d; want routed, %q, %q, 7",
					r.Network, r.Path, r.Mechanism, r.Seed, tc.want, tc.mechanism)
			}
			pkts := readPackets(t, filepath.Join(out, "handshake", report.CaptureFile))
			var syn, synAck time.Time
			for _, p := range pkts {
				switch f := p.Segment.Flags; {
				case f == capture.SYN:
					syn = p.Segment.Time
				case f == capture.SYN|capture.ACK:
					synAck = p.Segment.Time
				}
			}
			got := synAck.Sub(syn)
			// The line never delivers early; late only by the scheduler, so
			// the upper bound is loose.
			if got < tc.rtt || got > tc.rtt+50*time.Millisecond {
				t.Errorf("SYN to SYN/ACK %v on the client's side, want at least %v (and not 50ms more)", got, tc.rtt)
			}
			points := 2
			if tc.mechanism == "tun-line" {
				points = 3 // and the router's
			}
			checkPoints(t, filepath.Join(out, "handshake"), len(pkts), points)
			md, err := os.ReadFile(filepath.Join(out, "handshake", report.WalkthroughFile))
			if err != nil {
				t.Fatal(err)
			}
			if tc.rtt > 0 {
				if !strings.Contains(string(md), "(at server tun0 ") {
					t.Errorf("the walkthrough does not say when the server saw each segment:\n%s", md)
				}
				svg, err := os.ReadFile(filepath.Join(out, "handshake", report.LadderFile))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(svg), `class="note"`) || !strings.Contains(string(svg), "at server tun0 ") || !strings.Contains(string(svg), "kernel") {
					t.Error("the ladder has no notes of the other points and the kernel under its arrows")
				}
			}
			checkKernelView(t, &r, string(md), len(pkts), tc.rtt > 0)
		})
	}
}

// checkKernelView checks the kernel's account of a handshake across a
// path in its walkthrough md and result r: the kernel's own events where
// the run traced it, else its samples after the segments.
func checkKernelView(t *testing.T, r *report.Result, md string, segments int, path bool) {
	t.Helper()
	if r.KernelSource == report.KernelTraced {
		if len(r.KernelEvents) == 0 {
			t.Errorf("result.json has no kernel events")
		}
		// The client's socket is established by the SYN/ACK, the server's
		// by the ACK, a round trip apart, each under its segment.
		for _, want := range []string{"kernel: client SYN_SENT -> ESTABLISHED at +", "kernel: server SYN_RECEIVED -> ESTABLISHED at +"} {
			if path && !strings.Contains(md, want) {
				t.Errorf("the walkthrough lacks %q:\n%s", want, md)
			}
		}
		return
	}
	// The kernel's view after the SYN/ACK: the client measured the round
	// trip.
	if path && (!strings.Contains(md, "kernel (sampled after the segment): ") || !strings.Contains(md, "srtt 0 ms -> ")) {
		t.Errorf("the walkthrough does not show the kernel's view of the sockets:\n%s", md)
	}
	if len(r.Kernel) < segments/2 {
		t.Errorf("result.json has %d kernel samples for %d segments", len(r.Kernel), segments)
	}
	for _, k := range r.Kernel {
		if !strings.Contains(string(k.Sockets), `"state":`) {
			t.Errorf("frame %d: kernel sample %s lacks the state", k.Frame, k.Sockets)
			break
		}
	}
}

// checkPoints reads a two-host run's points.pcapng with tshark: each
// capture point (both hosts' interfaces, and the router when the path is
// tcplab's delay line) is named, and each saw every one of the segments
// the analysed capture holds.
func checkPoints(t *testing.T, dir string, segments, points int) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-r", filepath.Join(dir, report.PointsFile), "-Y", "tcp",
		"-T", "fields", "-e", "frame.interface_name").Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", report.PointsFile, err)
	}
	count := map[string]int{}
	for _, name := range strings.Fields(strings.ReplaceAll(string(out), " ", "_")) {
		count[name]++
	}
	if len(count) != points {
		t.Fatalf("%s has TCP at %v, want %d capture points", report.PointsFile, count, points)
	}
	for name, n := range count {
		if n != segments {
			t.Errorf("%s saw %d segments, the capture %d", name, n, segments)
		}
	}
}

// readPackets annotates a capture file.
func readPackets(t *testing.T, path string) []capture.Packet {
	t.Helper()
	f, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkts []capture.Packet
	if _, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		if p.TCP {
			q := *p
			q.Data = nil
			pkts = append(pkts, q)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return pkts
}

// TestPathRouterPoint: across tcplab's delay line, points.pcapng has the
// router's capture point, and a packet the path duplicated says so there,
// once, while the host it went to saw it twice. The scenario's verdict
// does not matter here: its steps do not expect copies.
func TestPathRouterPoint(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	if _, err := lab.Run(context.Background(), []*lab.Scenario{Handshake()},
		lab.Config{Out: out, Options: lab.Options{Path: "delay=5ms,duplicate=50%", Seed: 2}}); err != nil {
		t.Fatal(err)
	}
	points := filepath.Join(out, "handshake", report.PointsFile)
	b, err := exec.Command(testenv.Tool(t, "tshark"), "-r", points, "-Y", "tcp", "-T", "fields",
		"-e", "frame.interface_name", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", points, err)
	}
	seen := map[string]int{}
	dup := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		name, comment, _ := strings.Cut(line, "\t")
		seen[name]++
		if strings.Contains(comment, "duplicated here") {
			if name != "router (delay line)" {
				t.Errorf("%s says it duplicated a packet: %s", name, comment)
			}
			dup++
		}
	}
	if seen["router (delay line)"] == 0 || dup == 0 {
		t.Fatalf("router point %d packets, %d duplicated, want both: %v", seen["router (delay line)"], dup, seen)
	}
	// Each packet is seen leaving one host and reaching the other; a
	// duplicate reaches it twice.
	router := seen["router (delay line)"]
	if got := seen["client tun0"] + seen["server tun0"]; got != 2*router+dup {
		t.Errorf("the hosts saw %d packets, the router %d with %d duplicated: want %d", got, router, dup, 2*router+dup)
	}
}
