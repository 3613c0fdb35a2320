package property

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// Conn is one connection of a capture: its TCP packets in capture order.
type Conn struct {
	Stream         int
	Client, Server netip.AddrPort
	Packets        []capture.Packet
	start          time.Time // of the capture, for the times shown
}

// Name says which connection it is: "stream 0: 127.0.0.1:40000 (client)
// <-> 127.0.0.1:8000 (server)".
func (c *Conn) Name() string {
	return fmt.Sprintf("stream %d: %s (client) <-> %s (server)", c.Stream, c.Client, c.Server)
}

// Conns groups the TCP packets of pkts by connection, in order of first
// appearance. The client is the sender of the first SYN, as the annotator
// decides.
func Conns(pkts []capture.Packet) []Conn {
	var conns []Conn
	index := map[int]int{}
	var start time.Time
	for i := range pkts {
		p := &pkts[i]
		if start.IsZero() {
			start = p.Info.Timestamp
		}
		if !p.TCP {
			continue
		}
		k, ok := index[p.Annotation.Stream]
		if !ok {
			k = len(conns)
			index[p.Annotation.Stream] = k
			c := Conn{Stream: p.Annotation.Stream, Client: p.Segment.Src, Server: p.Segment.Dst, start: start}
			if p.Annotation.Dir == capture.ServerToClient {
				c.Client, c.Server = c.Server, c.Client
			}
			conns = append(conns, c)
		}
		conns[k].Packets = append(conns[k].Packets, *p)
	}
	return conns
}

// Result is the verdict of one property on one connection.
type Result struct {
	Property string `json:"property"` // as -expect wrote it, normalized: "closer=server"
	Pass     bool   `json:"pass"`
	// Detail says in a line why it failed, or what a pass accepted (a
	// FIN and an ACK merged into one segment, say).
	Detail string `json:"detail,omitempty"`
	// Frames are the frames that break the property; Context shows them
	// among their neighbours, marked with ">".
	Frames  []int    `json:"frames,omitempty"`
	Context []string `json:"context,omitempty"`
}

// Property is one assertion about a connection, as Parse reads it.
type Property struct {
	name string
	arg  string
	// teardown: the expected closing events; syn: the retries allowed.
	events []event
	n      int
}

// String returns the property as -expect writes it.
func (p Property) String() string {
	if p.arg == "" {
		return p.name
	}
	return p.name + "=" + p.arg
}

// Known lists the properties Parse accepts, in the form a usage message
// shows them.
func Known() []string {
	return []string{
		"handshake", "no-rst", "no-retransmission", "no-zero-window",
		"closer=client|server|simultaneous", "half-close",
		"teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK (or FIN,ACK,FIN,ACK)",
		"keepalive", "max-syn-retries=N",
	}
}

// takesArg tells which properties take a value after "=".
var takesArg = map[string]bool{"closer": true, "teardown": true, "max-syn-retries": true}

// ErrUnknown is wrapped by Parse's error for a name it does not know.
var ErrUnknown = fmt.Errorf("unknown property")

// Parse reads a comma-separated list of properties. The items of a
// teardown (themselves separated by commas) run until the next item that
// is not a closing event.
func Parse(list string) ([]Property, error) {
	items := strings.Split(list, ",")
	var props []Property
	for i := 0; i < len(items); i++ {
		item := strings.TrimSpace(items[i])
		if item == "" {
			continue
		}
		name, arg, hasArg := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		known := slices.ContainsFunc(Known(), func(k string) bool { return k == name || strings.HasPrefix(k, name+"=") })
		if !known {
			return nil, fmt.Errorf("%w %q; known: %s", ErrUnknown, name, strings.Join(Known(), "; "))
		}
		if hasArg != takesArg[name] {
			if takesArg[name] {
				return nil, fmt.Errorf("property %s needs a value: %s=...", name, name)
			}
			return nil, fmt.Errorf("property %s takes no value", name)
		}
		p := Property{name: name, arg: strings.TrimSpace(arg)}
		switch name {
		case "closer":
			if p.arg != "client" && p.arg != "server" && p.arg != "simultaneous" {
				return nil, fmt.Errorf("closer=%s: use closer=client, closer=server or closer=simultaneous", p.arg)
			}
		case "max-syn-retries":
			n, err := strconv.Atoi(p.arg)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("max-syn-retries=%s: use a whole number, 0 or more", p.arg)
			}
			p.n = n
		case "teardown":
			words := []string{p.arg}
			for i+1 < len(items) {
				if _, err := parseEvent(items[i+1]); err != nil {
					break
				}
				i++
				words = append(words, strings.TrimSpace(items[i]))
			}
			for _, w := range words {
				ev, err := parseEvent(w)
				if err != nil {
					return nil, fmt.Errorf("teardown: %w", err)
				}
				p.events = append(p.events, ev)
			}
			p.arg = eventsString(p.events)
		}
		props = append(props, p)
	}
	if len(props) == 0 {
		return nil, fmt.Errorf("no property; known: %s", strings.Join(Known(), "; "))
	}
	return props, nil
}

// Check judges the property on one connection.
func (p Property) Check(c *Conn) Result {
	r := Result{Property: p.String(), Pass: true}
	fail := func(detail string, frames ...int) Result { return c.fail(r, detail, frames...) }
	pk := c.Packets
	switch p.name {
	case "handshake":
		return c.handshake(r)
	case "no-rst":
		if f := c.frames(func(p *capture.Packet) bool { return p.Segment.Flags&capture.RST != 0 }); len(f) > 0 {
			return fail(fmt.Sprintf("%d segment(s) with RST", len(f)), f...)
		}
	case "no-retransmission":
		re := capture.Labels(0).With(capture.Retransmission).With(capture.FastRetransmission).With(capture.SpuriousRetransmission)
		if f := c.frames(func(p *capture.Packet) bool { return p.Annotation.Labels&re != 0 }); len(f) > 0 {
			return fail(fmt.Sprintf("%d retransmitted segment(s)", len(f)), f...)
		}
	case "no-zero-window":
		if f := c.frames(func(p *capture.Packet) bool { return p.Annotation.Labels.Has(capture.ZeroWindow) }); len(f) > 0 {
			return fail(fmt.Sprintf("%d segment(s) announce a zero window", len(f)), f...)
		}
	case "closer":
		return c.closer(r, p.arg)
	case "half-close":
		return c.halfClose(r)
	case "teardown":
		return c.teardown(r, p.events)
	case "keepalive":
		for i := range pk {
			if !pk[i].Annotation.Labels.Has(capture.KeepAlive) {
				continue
			}
			for j := i + 1; j < len(pk); j++ {
				if pk[j].Annotation.Labels.Has(capture.KeepAliveACK) && pk[j].Annotation.Dir != pk[i].Annotation.Dir {
					r.Detail = fmt.Sprintf("probe frame %d, answered in frame %d", pk[i].Segment.Frame, pk[j].Segment.Frame)
					return r
				}
			}
			return fail(fmt.Sprintf("keep-alive probe in frame %d never answered", pk[i].Segment.Frame), pk[i].Segment.Frame)
		}
		return fail(fmt.Sprintf("no keep-alive probe in %d segments", len(pk)))
	case "max-syn-retries":
		syns := c.frames(func(p *capture.Packet) bool {
			return p.Annotation.Dir == capture.ClientToServer && p.Segment.Flags&(capture.SYN|capture.ACK) == capture.SYN
		})
		if len(syns) > p.n+1 {
			return fail(fmt.Sprintf("the client sent its SYN %d times: %d retries, more than %d", len(syns), len(syns)-1, p.n), syns[1:]...)
		}
		r.Detail = fmt.Sprintf("%d SYN retries", max(len(syns)-1, 0))
	}
	return r
}

// fail returns r failed, for detail, with the frames that break the
// property shown among their neighbours.
func (c *Conn) fail(r Result, detail string, frames ...int) Result {
	r.Pass, r.Detail, r.Frames, r.Context = false, detail, frames, c.context(frames)
	return r
}

// frames returns the frames of the packets for which is holds.
func (c *Conn) frames(is func(*capture.Packet) bool) []int {
	var f []int
	for i := range c.Packets {
		if is(&c.Packets[i]) {
			f = append(f, c.Packets[i].Segment.Frame)
		}
	}
	return f
}

// context shows the frames among their neighbours: three segments before
// the first and after the last, each of the frames marked with ">", and
// at most 20 lines.
func (c *Conn) context(frames []int) []string {
	if len(frames) == 0 {
		return nil
	}
	first, last := -1, -1
	for i := range c.Packets {
		if slices.Contains(frames, c.Packets[i].Segment.Frame) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	lo, hi := max(0, first-3), min(len(c.Packets), last+4)
	hi = min(hi, lo+20)
	var lines []string
	for i := lo; i < hi; i++ {
		mark := "  "
		if slices.Contains(frames, c.Packets[i].Segment.Frame) {
			mark = "> "
		}
		lines = append(lines, mark+expect.Format(&c.Packets[i], c.start))
	}
	return lines
}

// handshake checks that the connection opens with SYN, SYN/ACK, ACK.
func (c *Conn) handshake(r Result) Result {
	pk := c.Packets
	fail := func(detail string, frames ...int) Result { return c.fail(r, detail, frames...) }
	if len(pk) == 0 {
		return fail("no segments")
	}
	if f := pk[0].Segment.Flags; f&(capture.SYN|capture.ACK) != capture.SYN {
		return fail(fmt.Sprintf("the capture begins in the middle of the connection: its first segment is %s %s, not the client's SYN", pk[0].Annotation.Dir, f), pk[0].Segment.Frame)
	}
	synAck, ack := -1, -1
	for i := range pk {
		s, a := &pk[i].Segment, &pk[i].Annotation
		switch {
		case synAck < 0 && a.Dir == capture.ServerToClient && s.Flags&(capture.SYN|capture.ACK|capture.RST) == capture.SYN|capture.ACK:
			synAck = i
		case synAck >= 0 && a.Dir == capture.ClientToServer && s.Flags&capture.ACK != 0 && s.Flags&(capture.SYN|capture.RST) == 0:
			ack = i
		case s.Flags&capture.RST != 0 && ack < 0:
			return fail(fmt.Sprintf("%s RST before the handshake completed", a.Dir), s.Frame)
		}
		if ack >= 0 {
			break
		}
	}
	switch {
	case synAck < 0:
		return fail("the server never answered the SYN with SYN,ACK", pk[0].Segment.Frame)
	case ack < 0:
		return fail("the client never acknowledged the SYN,ACK", pk[synAck].Segment.Frame)
	}
	r.Detail = fmt.Sprintf("frames %d, %d, %d", pk[0].Segment.Frame, pk[synAck].Segment.Frame, pk[ack].Segment.Frame)
	return r
}
