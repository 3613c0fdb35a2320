package scenarios

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/report"
)

// TestKernelEvents runs halfclose and simclose live as root and checks
// what the kernel's own account of them shows: simclose's ends both in
// CLOSING, halfclose's client FIN_WAIT_1 -> FIN_WAIT_2 in its walkthrough;
// and, as TestScenarios checks for every scenario, events of both ends
// whose states follow RFC 9293's diagram.
func TestKernelEvents(t *testing.T) {
	testenv.NetNS(t)
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "kernel events need root", "run the tests as root")
	}
	out := t.TempDir()
	results, err := lab.Run(context.Background(), []*lab.Scenario{HalfClose(), SimClose()}, lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		t.Run(r.Scenario, func(t *testing.T) {
			if !r.Pass {
				t.Fatalf("scenario failed:\n%s", r.Failure())
			}
			if r.KernelSource != report.KernelTraced {
				testenv.SkipOrFail(t, "the run could not trace the kernel: "+r.KernelUntraced, "run as root on a kernel with BTF")
			}
			checkKernelAccount(t, filepath.Join(out, r.Scenario), &r)
			entered := map[report.Side]map[capture.State]bool{report.SideClient: {}, report.SideServer: {}}
			for _, e := range r.KernelEvents {
				if e.Kind == report.KernelState {
					entered[e.Side][e.To] = true
				}
			}
			md, err := os.ReadFile(filepath.Join(out, r.Scenario, report.WalkthroughFile))
			if err != nil {
				t.Fatal(err)
			}
			switch r.Scenario {
			case "simclose":
				if !entered[report.SideClient][capture.Closing] || !entered[report.SideServer][capture.Closing] {
					t.Errorf("the kernel's states: %v; want CLOSING at both ends", entered)
				}
			case "halfclose":
				if !strings.Contains(string(md), "kernel: client FIN_WAIT_1 -> FIN_WAIT_2 at +") {
					t.Errorf("the walkthrough does not show the client's FIN_WAIT_1 -> FIN_WAIT_2 from the kernel:\n%s", md)
				}
			}
		})
	}
}

// checkKernelAccount checks the kernel's own account of a scenario run as
// result r, its artifacts in dir, when the run traced the kernel: events
// of both ends; each socket's state changes, in time, a path of RFC
// 9293's diagram; and the state column the artifacts show (the kernel's
// where it told, the wire's elsewhere) a path of it too, connection by
// connection, segment by segment.
func checkKernelAccount(t *testing.T, dir string, r *lab.Result) {
	t.Helper()
	if r.KernelSource != report.KernelTraced {
		return
	}
	sides := map[report.Side]bool{}
	bySocket := map[uint64][]report.KernelEvent{}
	for _, e := range r.KernelEvents {
		sides[e.Side] = true
		if e.Kind == report.KernelState {
			bySocket[e.Socket] = append(bySocket[e.Socket], e)
		}
	}
	if !sides[report.SideClient] || !sides[report.SideServer] {
		t.Errorf("kernel events of %v only: %+v", sides, r.KernelEvents)
	}
	for sock, evs := range bySocket {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].At < evs[j].At })
		for i, e := range evs {
			if !e.From.Leads(e.To) || e.From == e.To {
				t.Errorf("socket %d: %s -> %s is no transition of RFC 9293's diagram", sock, e.From, e.To)
			}
			if i > 0 && evs[i-1].To != e.From {
				t.Errorf("socket %d: %s -> %s after %s -> %s", sock, e.From, e.To, evs[i-1].From, evs[i-1].To)
			}
		}
	}
	f, err := capture.Open(filepath.Join(dir, report.CaptureFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkts []capture.Packet
	if _, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		pkts = append(pkts, p.Keep())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	last := map[int]*[2]capture.State{}
	for _, p := range report.KernelStates(pkts, r.KernelEvents) {
		if !p.TCP {
			continue
		}
		st := last[p.Annotation.Stream]
		if st == nil {
			st = &[2]capture.State{}
			last[p.Annotation.Stream] = st
		}
		for side, now := range [2]capture.State{p.Annotation.Client, p.Annotation.Server} {
			if !st[side].Leads(now) {
				t.Errorf("frame %d: the %s's state column goes %s -> %s, no transition of RFC 9293's diagram", p.Segment.Frame, report.Side(side), st[side], now)
			}
			st[side] = now
		}
	}
}

// TestKernelEventsUnprivileged: without root, scenarios still pass (those
// across the delay line too), with
// the kernel's sockets sampled after segments, and the run says once that
// the kernel's events need root, and what rcvbuf's steps require of the
// kernel goes unjudged, as its walkthrough says. Run as root, the test
// runs itself again as nobody.
func TestKernelEventsUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.NetNS(t)
		var progress bytes.Buffer
		out := t.TempDir()
		// SimClose and RTO run across the delay line, RSTChallenge with
		// a scripted peer: through veth pairs where /dev/net/tun is
		// root's.
		results, err := lab.Run(context.Background(), []*lab.Scenario{Handshake(), HalfClose(), RcvBuf(), SimClose(), RTO(), RSTChallenge()}, lab.Config{Out: out, Progress: &progress})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if !r.Pass {
				t.Errorf("%s failed:\n%s", r.Scenario, r.Failure())
			}
			if len(r.KernelPaths) != 0 {
				t.Errorf("%s: %d paths through the kernel without root", r.Scenario, len(r.KernelPaths))
			}
			// rst-challenge's connection ends in its client's RST, which
			// takes the server's socket out of inet_diag at once: a
			// capture reader handed the whole exchange in one block after
			// that (the ring's block timeout, a busy machine) samples
			// nothing, as CI saw once. Its source must still be the
			// samples', with no events.
			resetEnds := r.Scenario == RSTChallenge().Name
			if r.KernelSource != report.KernelSampled || len(r.Kernel) == 0 && !resetEnds || len(r.KernelEvents) != 0 {
				t.Errorf("%s: kernel source %q, %d samples, %d events; want samples alone", r.Scenario, r.KernelSource, len(r.Kernel), len(r.KernelEvents))
			}
		}
		// What rcvbuf's steps require of the kernel goes unjudged, and
		// its walkthrough says so.
		md, err := os.ReadFile(filepath.Join(out, "rcvbuf", report.WalkthroughFile))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(md), "a drop (PROTO_MEM) (not judged: "+expect.KernelSampled.String()+")") {
			t.Errorf("rcvbuf's walkthrough does not say its kernel checks went unjudged:\n%s", md)
		}
		if n := strings.Count(progress.String(), "no segment's path through the kernel"); n != 1 {
			t.Errorf("the run said %d times that it follows no segment through the kernel, want once:\n%s", n, progress.String())
		}
		if n := strings.Count(progress.String(), "the kernel's own events need root"); n != 1 {
			t.Errorf("the run said %d times that kernel events need root, want once:\n%s", n, progress.String())
		}
		t.Logf("as uid %d:\n%s", os.Geteuid(), progress.String())
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// nobody must be able to execute a copy of this binary.
	dir, err := os.MkdirTemp("", "scenarios-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(exe)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "scenarios.test"), b, 0o755)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "scenarios.test"), "-test.run=^TestKernelEventsUnprivileged$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		testenv.SkipOrFail(t, "cannot run as nobody here: "+err.Error(), "")
	}
	if bytes.Contains(out, []byte("--- SKIP: TestKernelEventsUnprivileged")) {
		t.Skipf("skipping test; as nobody:\n%s", out)
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestKernelEventsUnprivileged")) {
		t.Fatalf("as nobody (%v):\n%s", err, out)
	}
	t.Logf("as nobody:\n%s", out)
}

// TestKernelSamplesFlag: `run -kernel samples` samples the sockets where
// the run could trace the kernel (as root), so that `make bench-bulk`
// measures what tracing costs; `-kernel events`, the default, traces.
func TestKernelSamplesFlag(t *testing.T) {
	testenv.NetNS(t)
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "-kernel events traces only as root", "run as root")
		return
	}
	for _, tt := range []struct {
		mode string
		want report.KernelSource
	}{{"samples", report.KernelSampled}, {"events", report.KernelTraced}} {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		if code := lab.Command("tcplab", []string{"run", "-kernel", tt.mode, "-out", out, "handshake"}, &stdout, &stderr, All()); code != lab.ExitPass {
			t.Fatalf("-kernel %s: exit %d\n%s%s", tt.mode, code, stdout.String(), stderr.String())
		}
		b, err := os.ReadFile(filepath.Join(out, "handshake", "result.json"))
		if err != nil {
			t.Fatal(err)
		}
		if want := `"kernel_source": "` + string(tt.want) + `"`; !strings.Contains(string(b), want) {
			t.Errorf("-kernel %s: result.json lacks %s", tt.mode, want)
		}
		if strings.Contains(stderr.String()+stdout.String(), "need root") {
			t.Errorf("-kernel %s: the run says kernel events need root, as root:\n%s", tt.mode, stderr.String())
		}
	}
}
