package sockstat

import (
	"io"
	"maps"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
)

// ssStates are ss's names of the states.
var ssStates = map[State]string{
	Established: "ESTAB", SynSent: "SYN-SENT", SynRecv: "SYN-RECV", FinWait1: "FIN-WAIT-1",
	FinWait2: "FIN-WAIT-2", TimeWait: "TIME-WAIT", Close: "UNCONN", CloseWait: "CLOSE-WAIT",
	LastAck: "LAST-ACK", Listen: "LISTEN", Closing: "CLOSING",
}

// ssView is what `ss -tinH` prints of s, for the values it prints as
// they are.
func ssView(s Socket) map[string]string {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := s.Info
	return map[string]string{
		"state": ssStates[s.State], "recv_q": u(uint64(s.RecvQ)), "send_q": u(uint64(s.SendQ)),
		"cong":   s.Cong,
		"cwnd":   u(uint64(i.SndCwnd)),
		"rto":    strconv.FormatFloat(float64(i.RTO)/float64(time.Millisecond), 'g', -1, 64),
		"mss":    u(uint64(i.SndMSS)),
		"advmss": u(uint64(i.AdvMSS)), "rcvmss": u(uint64(i.RcvMSS)),
		"bytes_acked": u(i.BytesAcked), "bytes_received": u(i.BytesReceived),
		"segs_out": u(uint64(i.SegsOut)), "segs_in": u(uint64(i.SegsIn)),
		"wscale": u(uint64(i.SndWScale)) + "," + u(uint64(i.RcvWScale)),
	}
}

// parseSS reads the first socket of `ss -tinH` output: its state, queues
// and congestion control algorithm, and its name:value pairs.
func parseSS(out string) map[string]string {
	f := strings.Fields(out)
	if len(f) < 6 {
		return nil
	}
	m := map[string]string{"state": f[0], "recv_q": f[1], "send_q": f[2], "cong": f[5]}
	for _, kv := range f[6:] {
		if k, v, ok := strings.Cut(kv, ":"); ok {
			if _, dup := m[k]; !dup {
				m[k] = v
			}
		}
	}
	return m
}

// TestSS: for both ends of a connection that has carried a request and an
// answer, the Sampler and `ss -tinH` agree on the state, the queues, the
// congestion control algorithm, cwnd, rto, the MSS values, the window
// scales and the byte and segment counters.
func TestSS(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	ss := testenv.Tool(t, "ss")
	ln := listen(t, "tcp4", "127.0.0.1:8000")
	c := dial(t, ln, "tcp4", "127.0.0.1:8000")
	if _, err := c.client.Write([]byte("GET /blog/ HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c.server, make([]byte, 23)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.server.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ngreat")); err != nil {
		t.Fatal(err)
	}
	s := newSampler(t, Config{})
	f := Filter{Tuples: []Tuple{{c.c, c.s}}}
	// The client has not read the answer: its recv_q is 43. Wait for
	// the last ACK, so that nothing moves while ss runs.
	until(t, s, f, "the answer acknowledged", func(socks []Socket) bool {
		sv, _ := find(socks, c.s, c.c)
		return sv.Info != nil && sv.Info.Unacked == 0
	})
	for _, end := range []struct{ local, remote string }{{c.c.String(), c.s.String()}, {c.s.String(), c.c.String()}} {
		filter := "src " + end.local + " and dst " + end.remote
		var ours, theirs map[string]string
		for try := 0; try < 3; try++ { // an ACK between the two looks makes them differ
			socks, err := s.Sample(f)
			if err != nil {
				t.Fatal(err)
			}
			sock, _ := find(socks, c.c, c.s)
			if end.local == c.s.String() {
				sock, _ = find(socks, c.s, c.c)
			}
			out, err := exec.Command(ss, "-tinH", filter).Output()
			if err != nil {
				t.Fatalf("ss -tinH %s: %v", filter, err)
			}
			ours, theirs = ssView(sock), parseSS(string(out))
			for k := range ours {
				if _, ok := theirs[k]; !ok && ours[k] == "0" {
					delete(ours, k) // ss leaves out some zero counters
				}
			}
			theirs = filterKeys(theirs, ours)
			if maps.Equal(ours, theirs) {
				break
			}
		}
		if !maps.Equal(ours, theirs) {
			t.Errorf("%s:\nsockstat %v\n      ss %v", filter, ours, theirs)
		} else {
			t.Logf("%s: sockstat and ss agree on %v", filter, ours)
		}
	}
}

// filterKeys returns m's entries whose keys are also in keys.
func filterKeys(m, keys map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if _, ok := keys[k]; ok {
			out[k] = v
		}
	}
	return out
}
