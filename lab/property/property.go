package property

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
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
	text   string // String's, made once: every connection's Result holds it
}

// String returns the property as -expect writes it.
func (p Property) String() string {
	if p.text != "" {
		return p.text
	}
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
		p.text = p.String()
		props = append(props, p)
	}
	if len(props) == 0 {
		return nil, fmt.Errorf("no property; known: %s", strings.Join(Known(), "; "))
	}
	return props, nil
}

// Check judges the property on one connection. A Judge does the same
// for many properties with the segments fed one at a time.
func (p Property) Check(c *Conn) Result {
	j := NewJudge([]Property{p}, c.start)
	for i := range c.Packets {
		j.Add(&c.Packets[i])
	}
	return j.Results()[0]
}
