package property

import (
	"fmt"
	"strings"

	"github.com/tcplab/tcplab/capture"
)

// event is one expected event of a connection's close: a side's FIN, its
// ACK of the other side's FIN, or its RST, with or without a direction.
type event struct {
	dir    capture.Dir
	anyDir bool // the expectation named no direction
	kind   capture.CloseKind
}

func (e event) String() string {
	if e.anyDir {
		return e.kind.String()
	}
	return e.dir.String() + " " + e.kind.String()
}

func eventsString(evs []event) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.String()
	}
	return strings.Join(s, ",")
}

func closeString(evs []capture.CloseEvent) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.String()
	}
	return strings.Join(s, ",")
}

// parseEvent reads "C>S FIN", "S>C ACK", "RST", "C>S ignored-RST" or
// "FIN".
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
	switch strings.ToUpper(f[len(f)-1]) {
	case "FIN":
		ev.kind = capture.CloseFIN
	case "ACK":
		ev.kind = capture.CloseACK
	case "RST":
		ev.kind = capture.CloseRST
	case "IGNORED-RST":
		// A RST its receiver did not take (capture.RSTCheck).
		ev.kind = capture.CloseIgnoredRST
	default:
		return ev, fmt.Errorf("%q: a closing segment is FIN, ACK, RST or ignored-RST", s)
	}
	return ev, nil
}

func other(d capture.Dir) capture.Dir { return 1 - d }

// matches reports whether the closing event g is the expected w: the same
// kind, and the same direction when w names one. An expectation without
// directions fits the capture's own directions, which TCP produced, so it
// never stands for an order TCP cannot produce.
func (w event) matches(g capture.CloseEvent) bool {
	return g.Kind == w.kind && (w.anyDir || g.Dir == w.dir)
}

// teardown checks the close (capture.Ending's closing events: each side's
// first FIN, the first ACK of each, every RST) against the expected
// events. An ACK that rides on the same side's FIN may be left out of
// the expectation, as a kernel may merge them; a pass says so.
func teardown(r Result, end *capture.Ending, want []event, fail failFunc) Result {
	got := end.Events()
	var notes []string
	i := 0
	for _, w := range want {
		// Skip a merged ACK that the expectation leaves out.
		if i < len(got) && got[i].Merged && !w.matches(got[i]) {
			notes = append(notes, fmt.Sprintf("%s ACK rides on its FIN (frame %d)", got[i].Dir, got[i].Frame))
			i++
		}
		if i >= len(got) || !w.matches(got[i]) {
			return teardownFail(end, want, got, i, fail)
		}
		if got[i].Merged {
			notes = append(notes, fmt.Sprintf("%s ACK and FIN in one segment (frame %d), as kernels may send them", got[i].Dir, got[i].Frame))
		}
		i++
	}
	if i < len(got) {
		return teardownFail(end, want, got, i, fail)
	}
	if end.Crossed {
		notes = append(notes, "the FINs crossed: a simultaneous close")
	}
	r.Detail = strings.Join(append([]string{closeString(got)}, notes...), "; ")
	return r
}

// teardownFail fails the teardown where the close parted from want: at the event at
// of got, or after the last when got ran out.
func teardownFail(end *capture.Ending, want []event, got []capture.CloseEvent, at int, fail failFunc) Result {
	shown := closeString(got)
	if shown == "" {
		shown = "no FIN or RST"
	}
	detail := fmt.Sprintf("expected %s; the capture shows %s (%s)", eventsString(want), shown, end)
	switch {
	case at < len(got):
		return fail(detail, got[at].Frame)
	case len(got) > 0:
		return fail(strings.Replace(detail, " (", " and no more (", 1), got[len(got)-1].Frame)
	}
	return fail(detail)
}

// Ending returns how the connection ended, as capture.Ending defines it
// for every command.
func (c *Conn) Ending() capture.Ending { return capture.EndingOf(c.Packets) }

// closer checks who closed first: want is "client", "server" or
// "simultaneous", capture.Closer's words.
func closer(r Result, end *capture.Ending, want string, fail failFunc) Result {
	got := end.Closer()
	first := end.FIN[end.First]
	switch {
	case got == capture.NoCloser && end.Reset.Frame != 0:
		return fail("no FIN: "+end.Reset.String(), end.Reset.Frame)
	case got == capture.NoCloser:
		return fail("no FIN in the connection: it was not closed gracefully within the capture")
	case got.String() == want:
		r.Detail = end.String()
		return r
	case got == capture.Simultaneous:
		return fail(fmt.Sprintf("not the %s's close: %s; the %s's FIN was first on the wire (frame %d)",
			want, end.String(), capture.Side(end.First), first.Frame), first.Frame, end.FIN[other(end.First)].Frame)
	case want == capture.Simultaneous.String():
		second := end.FIN[other(end.First)]
		why := fmt.Sprintf("the %s's FIN (frame %d) acknowledges it, so the FINs did not cross", capture.Side(other(end.First)), second.Frame)
		if second.Frame == 0 {
			why = fmt.Sprintf("the %s sent no FIN", capture.Side(other(end.First)))
		}
		return fail(fmt.Sprintf("the %s closed first (FIN frame %d); %s", capture.Side(end.First), first.Frame, why), first.Frame)
	}
	return fail(fmt.Sprintf("the %s closed first (FIN frame %d), not the %s", capture.Side(end.First), first.Frame, want), first.Frame)
}

// halfClose checks that a side went on sending data after it had received
// the other side's FIN.
func halfClose(r Result, end *capture.Ending, fail failFunc) Result {
	for _, d := range [2]capture.Dir{end.First, other(end.First)} {
		if h := end.HalfClose[d]; h.Frame != 0 {
			r.Detail = fmt.Sprintf("the %s sent %d bytes (frame %d) after it received the %s's FIN (frame %d)",
				capture.Side(d), h.Len, h.Frame, capture.Side(other(d)), end.FIN[other(d)].Frame)
			return r
		}
	}
	first := end.FIN[end.First]
	if first.Frame == 0 {
		return fail("no FIN in the connection")
	}
	for _, d := range [2]capture.Dir{end.First, other(end.First)} {
		if h := end.Refused[d]; h.Frame != 0 {
			return fail(fmt.Sprintf("no half-close: the %s sent %d bytes (frame %d) after the %s's FIN, and the %s reset the connection (frame %d): it had closed, not half-closed",
				capture.Side(d), h.Len, h.Frame, capture.Side(other(d)), capture.Side(other(d)), end.Reset.Frame), h.Frame, end.Reset.Frame)
		}
	}
	d := other(end.First)
	if u := end.Unread[d]; u.Frame != 0 {
		return fail(fmt.Sprintf("no half-close: the %s's data (frame %d) crossed the %s's FIN (frame %d): it was sent before the FIN arrived (it does not acknowledge it)",
			capture.Side(d), u.Frame, capture.Side(end.First), first.Frame), u.Frame)
	}
	return fail(fmt.Sprintf("no data from the %s after it received the %s's FIN (frame %d): a full close, not a half-close",
		capture.Side(d), capture.Side(end.First), first.Frame), first.Frame)
}
