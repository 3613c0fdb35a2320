package scenarios

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/report"
)

// TestWalkthroughRequestPath runs the walkthrough as root and follows its
// request through the kernel: the timeline of the client's first data
// segment has the send-buffer, TCP, IP, device, IP, TCP and
// receive-buffer steps in that order, at times that never go back; the
// SYN's has the listener's queues; and the walkthrough shows the request's
// beside it, numbered as the blog post numbers the steps, with the steps
// loopback lacks said absent; walkthrough.html shows it too.
func TestWalkthroughRequestPath(t *testing.T) {
	testenv.NetNS(t)
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "following segments through the kernel needs root", "run the tests as root")
	}
	out := t.TempDir()
	results, err := lab.Run(context.Background(), []*lab.Scenario{Walkthrough()}, lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if !r.Pass {
		t.Fatalf("walkthrough failed:\n%s", r.Failure())
	}
	if r.KernelSource != report.KernelTraced {
		testenv.SkipOrFail(t, "the run could not trace the kernel: "+r.KernelUntraced, "run as root on a kernel with BTF")
	}
	if r.KernelPathUnavailable != "" {
		testenv.SkipOrFail(t, "the run could not follow segments through the kernel: "+r.KernelPathUnavailable, "run as root on a kernel with BTF and netfilter")
	}
	var request, syn *report.PathTimeline
	for i := range r.KernelPaths {
		p := &r.KernelPaths[i]
		for _, s := range p.Steps {
			switch {
			case s.Kind == report.PathSendBuffer && p.Sender == report.SideClient && request == nil:
				request = p
			case s.Kind == report.PathConnect && syn == nil:
				syn = p
			}
		}
	}
	if request == nil || syn == nil {
		t.Fatalf("no timeline of the request or the SYN among %+v", r.KernelPaths)
	}
	if err := request.Check(report.PathSendBuffer, report.PathTCPOut, report.PathIPOut, report.PathSendQueue, report.PathDriver,
		report.PathIPIn, report.PathTCPIn, report.PathReceiveBuffer); err != nil {
		t.Errorf("the request's path: %v\n%s", err, strings.Join(report.PathLines(request, 0), "\n"))
	}
	if err := syn.Check(report.PathConnect, report.PathTCPOut, report.PathIPOut, report.PathSendQueue, report.PathIPIn,
		report.PathSYNQueue, report.PathAcceptQueue); err != nil {
		t.Errorf("the SYN's path: %v\n%s", err, strings.Join(report.PathLines(syn, 0), "\n"))
	}
	md, err := os.ReadFile(filepath.Join(out, "walkthrough", report.WalkthroughFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"its path through the kernel, client to server", "send 3. TCP builds the segment", "send 6. NIC ring buffer: none here",
		"receive 4. TCP (tcp_rcv_established", "receive 6. receive buffer", "receive 5. SYN queue"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the walkthrough lacks %q:\n%s", want, md)
		}
	}
	page, err := os.ReadFile(filepath.Join(out, "walkthrough", report.WalkthroughHTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "send 4. IP (__ip_local_out") {
		t.Errorf("walkthrough.html does not show the path")
	}
}
