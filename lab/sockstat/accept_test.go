package sockstat

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
)

// TestAcceptQueue: a server listens with backlog 4 and never accepts;
// eight clients connect one after another. The listener's accept queue
// grows by one per client up to 5 (Linux queues backlog+1), and stays
// there: the first five clients are ESTABLISHED, the SYNs of the other
// three are dropped and they stay in SYN_SENT. ss shows the same queue
// and backlog.
func TestAcceptQueue(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	server := netip.MustParseAddrPort("127.0.0.1:8000")
	const backlog, clients = 4, 8
	listenBacklog(t, server, backlog)
	s := newSampler(t, Config{})
	f := Filter{Port: server.Port()}
	listener := func(socks []Socket) Socket {
		l, _ := find(socks, server, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
		return l
	}
	var queue []uint32
	var fds []int
	for i := range clients {
		fd := connectNonblock(t, server)
		fds = append(fds, fd)
		c := localAddr(t, fd)
		want := uint32(min(i+1, backlog+1))
		socks := until(t, s, f, "client "+c.String(), func(socks []Socket) bool {
			cs, ok := find(socks, c, server)
			return ok && listener(socks).AcceptQ == want &&
				(i <= backlog && cs.State == Established || i > backlog && cs.State == SynSent)
		})
		l := listener(socks)
		if l.State != Listen || l.Backlog != backlog {
			t.Errorf("listener after client %d: %v backlog %d, want LISTEN backlog %d", i+1, l.State, l.Backlog, backlog)
		}
		queue = append(queue, l.AcceptQ)
	}
	t.Logf("accept queue after each of %d clients: %v (backlog %d)", clients, queue, backlog)

	socks, err := s.Sample(f)
	if err != nil {
		t.Fatal(err)
	}
	states := map[State]int{}
	for _, fd := range fds {
		cs, _ := find(socks, localAddr(t, fd), server)
		states[cs.State]++
	}
	if states[Established] != backlog+1 || states[SynSent] != clients-backlog-1 {
		t.Errorf("clients: %v, want %d ESTABLISHED and %d SYN_SENT\n%s", states, backlog+1, clients-backlog-1, dumpSockets(socks))
	}
	t.Logf("clients: %v", states)

	// ss prints a listener's accept queue and backlog as Recv-Q and Send-Q.
	ss := testenv.Tool(t, "ss")
	out, err := exec.Command(ss, "-tlnH", "sport = :8000").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 || fields[0] != "LISTEN" || fields[1] != "5" || fields[2] != "4" {
		t.Errorf("ss -tlnH: %q, want LISTEN 5 4", out)
	}
}
