package ktrace

import (
	"sync"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/capture/live"
	"github.com/tcplab/tcplab/lab/impair"
)

// TestAttachCaptured: on a real capture of a connection whose first data
// segment nftables drops, Attach ties the drop to that frame, the
// retransmission to the frame that repeats it, and the state changes to
// the segments that made them.
func TestAttachCaptured(t *testing.T) {
	s := newSpace(t)
	tr := openTracer(t, s.inode)
	var src *live.Capture
	s.do(t, func() (err error) {
		src, err = live.Open(live.Config{Filter: "tcp"})
		return err
	})
	var pkts []capture.Packet
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		capture.Walk(src, capture.NewAnnotator(), func(p *capture.Packet) error {
			pkts = append(pkts, p.Keep())
			return nil
		})
	}()
	p := connect(t, s)
	var rules *impair.Installed
	s.do(t, func() (err error) {
		rules, err = impair.Install(impair.DropNth(p.serverAddr.Port(), 1))
		return err
	})
	t.Cleanup(func() { s.do(t, rules.Remove) })
	if _, err := p.client.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.server.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	p.client.Close()
	p.server.Close()
	evs := collect(t, tr, 5*time.Second, closedBoth(p))
	time.Sleep(3 * live.DefaultTimeout) // the capture's last frames
	src.Close()
	wg.Wait()

	got := Attach(evs, pkts)
	frameOf := func(pred func(Event) bool) int {
		for f, es := range got {
			for _, e := range es {
				if pred(e) {
					return f
				}
			}
		}
		return 0
	}
	seg := func(f int) capture.Segment {
		for _, p := range pkts {
			if p.Segment.Frame == f {
				return p.Segment
			}
		}
		return capture.Segment{}
	}
	state := func(ck uint64, o, n capture.State) func(Event) bool {
		return func(e Event) bool {
			return e.Kind == StateChange && e.Cookie == ck && e.OldState == o && e.NewState == n
		}
	}
	drop := frameOf(func(e Event) bool { return e.Kind == Drop && e.Reason == "NETFILTER_DROP" })
	retrans := frameOf(func(e Event) bool { return e.Kind == Retransmit })
	if d, r := seg(drop), seg(retrans); drop == 0 || retrans <= drop || d.Len != 10 || r.Seq != d.Seq || r.Len != 10 {
		t.Errorf("drop at frame %d (%+v), retransmission at frame %d (%+v); want the data segment, then its repeat", drop, d, retrans, r)
	}
	c, sv := p.clientCookie, p.serverCookie
	for _, w := range []struct {
		name  string
		event func(Event) bool
		seg   func(capture.Segment) bool
	}{
		{"client SYN_SENT: its SYN", state(c, capture.Closed, capture.SynSent),
			func(s capture.Segment) bool { return s.Flags == capture.SYN && s.Src == p.clientAddr }},
		{"client ESTABLISHED: the SYN-ACK", state(c, capture.SynSent, capture.Established),
			func(s capture.Segment) bool { return s.Flags == capture.SYN|capture.ACK && s.Dst == p.clientAddr }},
		{"server ESTABLISHED: the handshake's ACK", state(sv, capture.SynReceived, capture.Established),
			func(s capture.Segment) bool { return s.Flags == capture.ACK && s.Src == p.clientAddr && s.Len == 0 }},
		{"client FIN_WAIT_1: its FIN", state(c, capture.Established, capture.FinWait1),
			func(s capture.Segment) bool { return s.Flags.Has(capture.FIN) && s.Src == p.clientAddr }},
		{"server CLOSE_WAIT: the client's FIN", state(sv, capture.Established, capture.CloseWait),
			func(s capture.Segment) bool { return s.Flags.Has(capture.FIN) && s.Src == p.clientAddr }},
		{"server LAST_ACK: its FIN", state(sv, capture.CloseWait, capture.LastACK),
			func(s capture.Segment) bool { return s.Flags.Has(capture.FIN) && s.Src == p.serverAddr }},
		{"server CLOSED: the last ACK", state(sv, capture.LastACK, capture.Closed),
			func(s capture.Segment) bool { return s.Flags == capture.ACK && s.Src == p.clientAddr }},
	} {
		f := frameOf(w.event)
		if f == 0 || !w.seg(seg(f)) {
			t.Errorf("%s: attached to frame %d %+v", w.name, f, seg(f))
		}
	}
	if t.Failed() {
		for _, p := range pkts {
			t.Logf("frame %d: %s -> %s %s seq %d ack %d len %d %v", p.Segment.Frame, p.Segment.Src, p.Segment.Dst, p.Segment.Flags, p.Segment.Seq, p.Segment.Ack, p.Segment.Len, got[p.Segment.Frame])
		}
	}
}
