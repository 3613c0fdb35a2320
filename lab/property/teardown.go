package property

import (
	"fmt"
	"strings"

	"github.com/tcplab/tcplab/capture"
)

// event is one step of a connection's close: a side's FIN, its ACK of
// the other side's FIN, or its RST.
type event struct {
	dir    capture.Dir
	anyDir bool   // the expectation named no direction
	flag   string // "FIN", "ACK" or "RST"
	frame  int
	// merged marks an ACK carried by the segment that also carries the
	// same side's FIN, as a kernel may send them.
	merged bool
}

func (e event) String() string {
	if e.anyDir {
		return e.flag
	}
	return e.dir.String() + " " + e.flag
}

func eventsString(evs []event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.String())
	}
	return strings.Join(s, ",")
}

// parseEvent reads "C>S FIN", "S>C ACK", "RST" or "FIN".
func parseEvent(s string) (event, error) {
	f := strings.Fields(s)
	var ev event
	switch len(f) {
	case 1:
		ev.anyDir = true
	case 2:
		switch strings.ToUpper(f[0]) {
		case "C>S", "CLIENT":
			ev.dir = capture.ClientToServer
		case "S>C", "SERVER":
			ev.dir = capture.ServerToClient
		default:
			return ev, fmt.Errorf("%q: the direction is C>S or S>C", s)
		}
	default:
		return ev, fmt.Errorf("%q: write a closing segment as C>S FIN, S>C ACK, RST", s)
	}
	switch ev.flag = strings.ToUpper(f[len(f)-1]); ev.flag {
	case "FIN", "ACK", "RST":
	default:
		return ev, fmt.Errorf("%q: a closing segment is FIN, ACK or RST", s)
	}
	return ev, nil
}

func other(d capture.Dir) capture.Dir { return 1 - d }

// seqGE reports whether a is at or after b in sequence space.
func seqGE(a, b uint32) bool { return int32(a-b) >= 0 }

// closing returns the events of the connection's close, from its first FIN
// or RST on: each side's first FIN, the first ACK of it by the other side,
// and any RST. Data and other ACKs are not part of it.
func (c *Conn) closing() []event {
	var evs []event
	var finSeen, finAcked [2]bool
	var finEnd [2]uint32
	started := false
	for i := range c.Packets {
		s, a := &c.Packets[i].Segment, &c.Packets[i].Annotation
		if s.Flags&(capture.FIN|capture.RST) != 0 {
			started = true
		}
		if !started {
			continue
		}
		d, o := a.Dir, other(a.Dir)
		ackEv := -1
		if s.Flags&capture.ACK != 0 && finSeen[o] && !finAcked[o] && seqGE(s.Ack, finEnd[o]) {
			finAcked[o] = true
			ackEv = len(evs)
			evs = append(evs, event{dir: d, flag: "ACK", frame: s.Frame})
		}
		if s.Flags&capture.FIN != 0 && !finSeen[d] {
			finSeen[d], finEnd[d] = true, s.Seq+uint32(s.Len)+1
			if ackEv >= 0 {
				evs[ackEv].merged = true
			}
			evs = append(evs, event{dir: d, flag: "FIN", frame: s.Frame})
		}
		if s.Flags&capture.RST != 0 {
			evs = append(evs, event{dir: d, flag: "RST", frame: s.Frame})
		}
	}
	return evs
}

// teardown checks the close against the expected events. An expectation
// without directions takes them from the capture: the first FIN is the
// closer's, an ACK answers the latest FIN, the next FIN is the other
// side's. An ACK that rides on the same side's FIN may be left out of the
// expectation, as a kernel may merge them; a pass says so.
func (c *Conn) teardown(r Result, want []event) Result {
	got := c.closing()
	want = c.direct(want, got)
	var notes []string
	i := 0
	for _, w := range want {
		// Skip a merged ACK that the expectation leaves out.
		if i < len(got) && got[i].merged && !(got[i].flag == w.flag && (w.anyDir || got[i].dir == w.dir)) {
			notes = append(notes, fmt.Sprintf("%s ACK rides on its FIN (frame %d)", got[i].dir, got[i].frame))
			i++
		}
		if i >= len(got) || got[i].flag != w.flag || (!w.anyDir && got[i].dir != w.dir) {
			return c.teardownFail(r, want, got, i)
		}
		if got[i].merged {
			notes = append(notes, fmt.Sprintf("%s ACK and FIN in one segment (frame %d), as kernels may send them", got[i].dir, got[i].frame))
		}
		i++
	}
	if i < len(got) {
		return c.teardownFail(r, want, got, i)
	}
	r.Detail = strings.Join(append([]string{eventsString(got)}, notes...), "; ")
	return r
}

// direct gives undirected expected events the directions the rule of
// teardown gives them, as far as the capture shows a closer.
func (c *Conn) direct(want, got []event) []event {
	closer := capture.ClientToServer
	for _, g := range got {
		if g.flag == "FIN" {
			closer = g.dir
			break
		}
	}
	out := make([]event, len(want))
	copy(out, want)
	var finSent [2]bool
	last := closer
	for i := range out {
		e := &out[i]
		if e.anyDir && e.flag != "RST" {
			switch e.flag {
			case "FIN":
				e.dir = closer
				if finSent[closer] {
					e.dir = other(closer)
				}
			case "ACK":
				e.dir = other(last)
			}
			e.anyDir = false
		}
		if e.flag == "FIN" && !e.anyDir {
			finSent[e.dir], last = true, e.dir
		}
	}
	return out
}

// teardownFail fails r where the close parted from want: at the event at
// of got, or after the last when got ran out.
func (c *Conn) teardownFail(r Result, want, got []event, at int) Result {
	shown := eventsString(got)
	if shown == "" {
		shown = "no FIN or RST"
	}
	detail := fmt.Sprintf("expected %s; the capture shows %s", eventsString(want), shown)
	switch {
	case at < len(got):
		return c.fail(r, detail, got[at].frame)
	case len(got) > 0:
		return c.fail(r, detail+" and no more", got[len(got)-1].frame)
	}
	return c.fail(r, detail)
}
