package lab

import (
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/ktrace"
	"github.com/tcplab/tcplab/lab/report"
)

var (
	kvClient = netip.MustParseAddrPort("10.0.0.1:40000")
	kvServer = netip.MustParseAddrPort("10.0.0.2:8000")
	kvT0     = time.Unix(1000, 0)
)

func kvAt(ms int) time.Time { return kvT0.Add(time.Duration(ms) * time.Millisecond) }

// kvConn is one connection as the wire's analysis tells it: a handshake,
// 10 bytes sent twice (the second labelled a retransmission), the
// client's FIN and its ACK, the server's FIN and its ACK, with each
// end's state as the wire infers it.
func kvConn() []capture.Packet {
	const syn, ack, fin, psh = capture.SYN, capture.ACK, capture.FIN, capture.PSH
	c2s, s2c := capture.ClientToServer, capture.ServerToClient
	seg := func(frame, at int, dir capture.Dir, f capture.Flags, seq, ackn uint32, n int, cl, sv capture.State) capture.Packet {
		src, dst := kvClient, kvServer
		if dir == s2c {
			src, dst = dst, src
		}
		return capture.Packet{TCP: true,
			Segment:    capture.Segment{Frame: frame, Time: kvAt(at), Src: src, Dst: dst, Flags: f, Seq: seq, Ack: ackn, Len: n},
			Annotation: capture.Annotation{Dir: dir, Client: cl, Server: sv}}
	}
	E, FW1, FW2, TW, CW, LA, CL := capture.Established, capture.FinWait1, capture.FinWait2, capture.TimeWait, capture.CloseWait, capture.LastACK, capture.Closed
	pkts := []capture.Packet{
		seg(1, 0, c2s, syn, 100, 0, 0, capture.SynSent, capture.Listen),
		seg(2, 1, s2c, syn|ack, 500, 101, 0, E, capture.SynReceived),
		seg(3, 2, c2s, ack, 101, 501, 0, E, E),
		seg(4, 10, c2s, psh|ack, 101, 501, 10, E, E),
		seg(5, 220, c2s, psh|ack, 101, 501, 10, E, E),
		seg(6, 221, s2c, ack, 501, 111, 0, E, E),
		seg(7, 230, c2s, fin|ack, 111, 501, 0, FW1, CW),
		seg(8, 231, s2c, ack, 501, 112, 0, FW2, CW),
		seg(9, 240, s2c, fin|ack, 501, 112, 0, TW, LA),
		seg(10, 241, c2s, ack, 112, 502, 0, TW, CL),
	}
	pkts[4].Annotation.Labels = pkts[4].Annotation.Labels.With(capture.Retransmission)
	for i := range pkts {
		pkts[i].Info.Timestamp = pkts[i].Segment.Time
	}
	return pkts
}

// kvEvents are the kernel's events of kvConn: both sockets' state changes
// and the resend of frame 5.
func kvEvents() []ktrace.Event {
	st := func(at int, src, dst netip.AddrPort, o, n capture.State, cookie uint64) ktrace.Event {
		return ktrace.Event{Time: kvAt(at), Kind: ktrace.StateChange, Src: src, Dst: dst, OldState: o, NewState: n, Cookie: cookie}
	}
	c, s := kvClient, kvServer
	return []ktrace.Event{
		st(0, netip.AddrPortFrom(c.Addr(), 0), s, capture.Closed, capture.SynSent, 7),
		st(1, c, s, capture.SynSent, capture.Established, 7),
		st(2, s, c, capture.Listen, capture.SynReceived, 9),
		st(2, s, c, capture.SynReceived, capture.Established, 9),
		{Time: kvAt(220), Kind: ktrace.Retransmit, Src: c, Dst: s, Cookie: 7, HaveSeq: true, Flags: capture.PSH | capture.ACK, Seq: 101, End: 111, Cause: ktrace.CauseRTO},
		st(230, c, s, capture.Established, capture.FinWait1, 7),
		st(230, s, c, capture.Established, capture.CloseWait, 9),
		st(231, c, s, capture.FinWait1, capture.FinWait2, 7),
		st(240, s, c, capture.CloseWait, capture.LastACK, 9),
		st(240, s, c, capture.LastACK, capture.LastACK, 9), // close() after shutdown()
		st(240, c, s, capture.FinWait2, capture.Closed, 7), // a time-wait socket takes over
		st(241, s, c, capture.LastACK, capture.Closed, 9),
	}
}

func TestJoinKernel(t *testing.T) {
	pkts := kvConn()
	events := append(kvEvents(),
		ktrace.Event{Time: kvAt(300), Kind: ktrace.Drop, Src: kvClient, Dst: kvServer, Reason: "NO_SOCKET"},
		ktrace.Event{Time: kvAt(241), Kind: ktrace.Drop, Src: kvServer, Dst: kvClient, HaveSeq: true, Flags: capture.FIN | capture.ACK, Seq: 501, Ack: 112, Reason: "QUEUE_PURGE"},
		// The server's FIN, answered by the client's time-wait socket.
		ktrace.Event{Time: kvAt(240).Add(time.Microsecond), Kind: ktrace.Drop, Src: kvServer, Dst: kvClient, HaveSeq: true, Flags: capture.FIN | capture.ACK, Seq: 501, Ack: 112, Reason: "NOT_SPECIFIED"},
		// The listener's own changes, which no segment makes.
		ktrace.Event{Time: kvAt(0), Kind: ktrace.StateChange, Src: kvServer, Cookie: 5, OldState: capture.Closed, NewState: capture.Listen},
		ktrace.Event{Time: kvAt(400), Kind: ktrace.StateChange, Src: kvServer, Cookie: 5, OldState: capture.Listen, NewState: capture.Closed},
		// An RTO's attempt that sent nothing: the original was still queued.
		ktrace.Event{Time: kvAt(210), Kind: ktrace.Retransmit, Src: kvClient, Dst: kvServer, Cookie: 7, HaveSeq: true, Flags: capture.PSH | capture.ACK, Seq: 101, End: 111, Cause: ktrace.CauseRTO, Err: syscall.EBUSY},
	)
	a := joinKernel(events, pkts, kvServer)
	if len(a.untied) != 1 || a.untied[0].Reason != "EBUSY" || a.untied[0].Kind != report.KernelRetransmit || a.untied[0].Side != report.SideClient {
		t.Errorf("untied: %+v; want the client's attempt that sent nothing, EBUSY, and not the listener's own changes", a.untied)
	}
	var got []string
	for j := range pkts {
		for _, e := range a.events[j] {
			got = append(got, report.KernelText(&e, 0))
		}
	}
	want := []string{
		"kernel: client CLOSED -> SYN_SENT at +0.0 ms",
		"kernel: client SYN_SENT -> ESTABLISHED at +1.0 ms",
		"kernel: server LISTEN -> SYN_RECEIVED at +2.0 ms",
		"kernel: server SYN_RECEIVED -> ESTABLISHED at +2.0 ms",
		"kernel: client sent this segment again: retransmission timeout (RTO) at +220.0 ms",
		"kernel: client ESTABLISHED -> FIN_WAIT_1 at +230.0 ms",
		"kernel: server ESTABLISHED -> CLOSE_WAIT at +230.0 ms",
		"kernel: client FIN_WAIT_1 -> FIN_WAIT_2 at +231.0 ms",
		"kernel: server CLOSE_WAIT -> LAST_ACK at +240.0 ms",
		"kernel: client FIN_WAIT_2 -> TIME_WAIT at +240.0 ms",
		"kernel: server LAST_ACK -> CLOSED at +241.0 ms",
	}
	if !slices.Equal(got, want) {
		t.Errorf("joined:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(a.alone) != 1 || a.alone[0].Reason != "NO_SOCKET" || a.alone[0].Side != report.SideServer {
		t.Errorf("alone: %+v; want the NO_SOCKET drop at the server, and neither the purged FIN nor the one the time-wait socket took", a.alone)
	}
	if len(a.all) != len(want)+1 {
		t.Errorf("%d events for result.json, want %d", len(a.all), len(want)+1)
	}
	for i := 1; i < len(a.all); i++ {
		if a.all[i].Frame != 0 && a.all[i].Frame < a.all[i-1].Frame {
			t.Errorf("result.json's events are not in frame order: %d after %d", a.all[i].Frame, a.all[i-1].Frame)
		}
	}
}

// TestJoinKernelRefused: the ends of a connection refused are told by its
// segments, not by the server's address (nobody listens on its port).
func TestJoinKernelRefused(t *testing.T) {
	client, closed := kvClient, netip.AddrPortFrom(kvServer.Addr(), 9)
	pkts := []capture.Packet{
		{TCP: true, Segment: capture.Segment{Frame: 1, Time: kvAt(0), Src: client, Dst: closed, Flags: capture.SYN, Seq: 100},
			Annotation: capture.Annotation{Dir: capture.ClientToServer}},
		{TCP: true, Segment: capture.Segment{Frame: 2, Time: kvAt(0), Src: closed, Dst: client, Flags: capture.RST | capture.ACK, Ack: 101},
			Annotation: capture.Annotation{Dir: capture.ServerToClient}},
	}
	pkts[0].Info.Timestamp = kvAt(0)
	events := []ktrace.Event{
		{Time: kvAt(0), Kind: ktrace.Drop, Src: client, Dst: closed, HaveSeq: true, Flags: capture.SYN, Seq: 100, Reason: "NO_SOCKET"},
		{Time: kvAt(0), Kind: ktrace.ResetSent, Src: closed, Dst: client, HaveSeq: true, Flags: capture.RST | capture.ACK, Ack: 101, Reason: "NO_SOCKET"},
		{Time: kvAt(0), Kind: ktrace.ResetReceived, Src: client, Dst: closed, Cookie: 7, OldState: capture.SynSent},
	}
	a := joinKernel(events, pkts, kvServer)
	var got []string
	for j := range pkts {
		for _, e := range a.events[j] {
			got = append(got, report.KernelText(&e, 0))
		}
	}
	want := []string{
		"dropped by the server's kernel: no socket for it (NO_SOCKET) at +0.0 ms",
		"kernel: server sent this RST: no socket for it (NO_SOCKET) at +0.0 ms",
		"kernel: client took this RST in, in SYN_SENT at +0.0 ms",
	}
	if !slices.Equal(got, want) {
		t.Errorf("joined:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestContradictions(t *testing.T) {
	withLabels := func(j int, l ...capture.Label) func([]capture.Packet, []ktrace.Event) []ktrace.Event {
		return func(p []capture.Packet, e []ktrace.Event) []ktrace.Event {
			p[j].Annotation.Labels = 0
			for _, x := range l {
				p[j].Annotation.Labels = p[j].Annotation.Labels.With(x)
			}
			return e
		}
	}
	without := func(kind ktrace.Kind, to capture.State) func([]capture.Packet, []ktrace.Event) []ktrace.Event {
		return func(_ []capture.Packet, e []ktrace.Event) []ktrace.Event {
			return slices.DeleteFunc(e, func(e ktrace.Event) bool { return e.Kind == kind && (to == 0 || e.NewState == to) })
		}
	}
	for _, tc := range []struct {
		name string
		edit func([]capture.Packet, []ktrace.Event) []ktrace.Event
		want []string
		fail bool // judge fails the run
	}{
		{name: "wire and kernel agree"},
		{name: "a retransmission label the kernel denies", edit: without(ktrace.Retransmit, 0), fail: true,
			want: []string{"frame 5: the wire labels it a retransmission, but the client's kernel sent nothing again"}},
		{name: "a resend the kernel attempted and did not send (EBUSY)", edit: func(p []capture.Packet, e []ktrace.Event) []ktrace.Event {
			for i := range e {
				if e[i].Kind == ktrace.Retransmit {
					e[i].Err = syscall.EBUSY
				}
			}
			return e
		}, fail: true,
			want: []string{"frame 5: the wire labels it a retransmission, but the client's kernel sent nothing again"}},
		{name: "a late first copy the wire labels a retransmission", edit: func(p []capture.Packet, e []ktrace.Event) []ktrace.Event {
			// Frame 5 carries new bytes (111 to 121), captured after
			// the FIN's place: reordered, not sent again.
			p[4].Segment.Seq = 111
			return slices.DeleteFunc(e, func(e ktrace.Event) bool { return e.Kind == ktrace.Retransmit })
		},
			want: []string{"frame 5: the wire labels it a retransmission, but it is the first to carry its bytes and the client's kernel sent nothing again (reordered before the capture)"}},
		{name: "a resend the wire did not label", edit: withLabels(4), fail: true,
			want: []string{"frame 5: the client's kernel sent it again, but the wire does not label it a retransmission"}},
		{name: "a resend the wire labels out-of-order", edit: withLabels(4, capture.OutOfOrder),
			want: []string{"frame 5: the client's kernel sent it again (a fast retransmit the wire labels out-of-order, as Wireshark does)"}},
		{name: "a state the kernel never entered", edit: without(ktrace.StateChange, capture.FinWait2), fail: true,
			want: []string{"frame 8: the wire puts the client in FIN_WAIT_2, a state its socket never entered"}},
		{name: "TIME_WAIT is a time-wait socket's", edit: func(p []capture.Packet, e []ktrace.Event) []ktrace.Event {
			for i := range p {
				if p[i].Annotation.Client == capture.TimeWait {
					p[i].Annotation.Client = capture.Closing
				}
			}
			return e
		}, fail: true, want: []string{"frame 9: the wire puts the client in CLOSING, a state its socket never entered"}},
		{name: "one resend of two segments at once (GSO)", edit: func(p []capture.Packet, e []ktrace.Event) []ktrace.Event {
			// Frame 5 carries bytes 101-110 again, frame 6 (now the
			// client's) 111-120, in one buffer the kernel resent once.
			p[5].Segment.Src, p[5].Segment.Dst, p[5].Segment.Seq, p[5].Segment.Len = kvClient, kvServer, 111, 10
			p[5].Annotation.Dir, p[5].Annotation.Labels = capture.ClientToServer, p[4].Annotation.Labels
			for i := range e {
				if e[i].Kind == ktrace.Retransmit {
					e[i].End = 121
				}
			}
			return e
		}},
		{name: "a socket the kernel never told of is not checked", edit: func(p []capture.Packet, _ []ktrace.Event) []ktrace.Event {
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkts, events := kvConn(), kvEvents()
			if tc.edit != nil {
				events = tc.edit(pkts, events)
			}
			a := joinKernel(events, pkts, kvServer)
			var got []string
			for _, c := range contradictions(pkts, a) {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("contradictions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			var r report.Result
			err := a.judge(&r, pkts, false)
			if (err != nil) != tc.fail {
				t.Errorf("judge: %v, warnings %q; want failing %v", err, r.KernelWarnings, tc.fail)
			}
			if !tc.fail && len(r.KernelWarnings) != len(tc.want) {
				t.Errorf("warnings %q, want %d", r.KernelWarnings, len(tc.want))
			}
		})
	}
}

// TestJudgeWhen: a run without the kernel's events, or with some of them
// lost, is not judged on them; at full speed, or when the kernel skipped
// BPF programs during the run, a retransmission label the kernel denies
// is a warning.
func TestJudgeWhen(t *testing.T) {
	pkts := kvConn()
	events := slices.DeleteFunc(kvEvents(), func(e ktrace.Event) bool { return e.Kind == ktrace.Retransmit })
	for _, tc := range []struct {
		name     string
		edit     func(*kernelAccount)
		highRate bool
		fail     bool
		warnings int
	}{
		{name: "traced", fail: true},
		{name: "at full speed", highRate: true, warnings: 1},
		{name: "events lost", edit: func(a *kernelAccount) { a.lost = 1 }},
		// The kernel skipped BPF programs during the run: the account may
		// lack the resend, so the contradiction is a warning.
		{name: "blackout", edit: func(a *kernelAccount) { a.blackouts = 3 }, warnings: 1},
		{name: "sampled", edit: func(a *kernelAccount) { a.source = report.KernelSampled }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := joinKernel(events, pkts, kvServer)
			if tc.edit != nil {
				tc.edit(a)
			}
			var r report.Result
			err := a.judge(&r, pkts, tc.highRate)
			if (err != nil) != tc.fail || len(r.KernelWarnings) != tc.warnings {
				t.Errorf("judge: %v, warnings %q; want failing %v and %d warnings", err, r.KernelWarnings, tc.fail, tc.warnings)
			}
		})
	}
}

// TestTracedAccountGap: a server socket whose creation the events lack
// (soak round 629: a handshake's three changes missing, nothing counted)
// contradicts the wire when joined alone; the traced account counts the
// gap as lost and leaves the kernel unjudged instead. Whole events have
// no gap, and are judged.
func TestTracedAccountGap(t *testing.T) {
	pkts := kvConn()
	whole := tracedAccount(kvEvents(), 0, pkts, kvServer)
	if whole.lost != 0 {
		t.Errorf("whole events: %d lost, want none", whole.lost)
	}
	if err := whole.judge(&report.Result{}, pkts, false); err != nil {
		t.Errorf("whole events: %v", err)
	}
	gap := slices.DeleteFunc(kvEvents(), func(e ktrace.Event) bool { return e.Cookie == 9 && e.Time.Before(kvAt(3)) })
	if err := joinKernel(gap, pkts, kvServer).judge(&report.Result{}, pkts, false); err == nil || !strings.Contains(err.Error(), "a state its socket never entered") {
		t.Errorf("joined alone, the gap: %v; want a state never entered", err)
	}
	a := tracedAccount(gap, 0, pkts, kvServer)
	if a.lost != 1 {
		t.Errorf("the gap: %d lost, want 1", a.lost)
	}
	if err := a.judge(&report.Result{}, pkts, false); err != nil {
		t.Errorf("the gap, counted lost: %v; want the kernel unjudged", err)
	}
}

// TestTracedAccountSilentResend: a copy on the wire beyond the resends
// the account tells of (soak: an RTO into a zero window and its drop both
// missing) counts as lost, and leaves the kernel unjudged; the copies
// all told count nothing.
func TestTracedAccountSilentResend(t *testing.T) {
	pkts := kvConn()
	if a := tracedAccount(kvEvents(), 0, pkts, kvServer); a.lost != 0 {
		t.Errorf("every resend told: %d lost, want none", a.lost)
	}
	again := pkts[4]
	again.Segment.Frame, again.Segment.Time = 11, kvAt(225)
	again.Info.Timestamp = again.Segment.Time
	pkts = slices.Insert(pkts, 5, again)
	a := tracedAccount(kvEvents(), 0, pkts, kvServer)
	if a.lost != 1 {
		t.Errorf("a resend untold: %d lost, want 1", a.lost)
	}
	if err := a.judge(&report.Result{}, pkts, false); err != nil {
		t.Errorf("a resend untold, counted lost: %v; want the kernel unjudged", err)
	}
}

// TestFirstCopies: a segment is a first copy unless an earlier one of its
// direction carried any of its bytes, however late it comes; its SYN and
// FIN count as bytes; each direction and stream is its own.
func TestFirstCopies(t *testing.T) {
	seg := func(stream int, dir capture.Dir, f capture.Flags, seq uint32, n int) capture.Packet {
		return capture.Packet{TCP: true, Segment: capture.Segment{Flags: f, Seq: seq, Len: n},
			Annotation: capture.Annotation{Stream: stream, Dir: dir}}
	}
	c2s, s2c := capture.ClientToServer, capture.ServerToClient
	const syn, ack, fin = capture.SYN, capture.ACK, capture.FIN
	top := uint32(1<<32 - 100) // sequence numbers that wrap
	pkts := []capture.Packet{
		seg(0, c2s, syn, top, 0),        // first
		seg(0, c2s, ack, top+1, 0),      // no bytes: not judged
		seg(0, c2s, ack, top+1+200, 50), // first, past a hole, across the wrap
		seg(0, c2s, ack, top+1, 100),    // first: fills the hole, late
		seg(0, c2s, ack, top+1, 100),    // a copy
		seg(0, c2s, ack, top+51, 100),   // a piece of what came: a copy
		seg(0, c2s, ack, top+101, 100),  // half new, half seen: a copy
		seg(0, s2c, ack, top+1, 100),    // the other direction: first
		seg(1, c2s, ack, top+1, 100),    // another stream: first
		seg(0, c2s, fin, top+251, 0),    // the FIN: first
		seg(0, c2s, fin, top+251, 0),    // the FIN again: a copy
	}
	want := []bool{true, false, true, true, false, false, false, true, true, true, false}
	got := firstCopies(pkts)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("segment %d: first copy %v, want %v", i, got[i], want[i])
		}
	}
}
