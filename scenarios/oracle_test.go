package scenarios

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
)

// TestOracle runs the oracle as root on one scenario, one lossy path and
// three seeds: it prints the table, with loss's retransmissions counted
// where both the wire and the kernel see them. A run whose kernel events
// were lost is not counted (a busy machine loses some now and then: a CI
// run did); one counted run of three is enough for the table.
func TestOracle(t *testing.T) {
	testenv.NetNS(t)
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "the oracle needs root", "run the tests as root")
	}
	var stdout, stderr bytes.Buffer
	args := []string{"oracle", "-out", t.TempDir(), "-seeds", "3", "-conditions", "delay=5ms,loss=5%", "loss"}
	if code := lab.Command("tcplab", args, &stdout, &stderr, All()); code != lab.ExitPass {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	var counted int
	if _, err := fmt.Sscanf(out, "oracle: %d runs (1 conditions x 3 seeds x 1 scenarios)", &counted); err != nil {
		t.Fatalf("no count of the runs (%v):\n%s", err, out)
	}
	if counted == 0 {
		testenv.SkipOrFail(t, "no run was counted:\n"+out, "run as root on a kernel with BTF")
	}
	// loss drops a piece and the response by nftables whatever the path
	// does: at least those two resends, on both sides of the table.
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[0] == "retransmission" {
			if f[2] == "0" {
				t.Errorf("no retransmission that both the wire and the kernel see:\n%s", out)
			}
			return
		}
	}
	t.Errorf("no retransmission row:\n%s", out)
}
