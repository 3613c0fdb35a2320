package pkt

import (
	"fmt"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// Script is a parsed .pkt file: the options its header sets, then its
// events in order.
type Script struct {
	Path    string
	Options []Option
	// Init and Cleanup are the untimed backtick commands packetdrill
	// allows before the first event and after the last (nil when
	// absent): Init runs before the script plays, Cleanup after it,
	// whether it passed or not (scripts restore their sysctls there).
	Init, Cleanup *Shell
	Events        []Event
}

// Option is one "--name=value" line of a script's header.
type Option struct {
	Line  int
	Name  string // without the leading "--"
	Value string // empty for a flag without "="
}

// TimeKind is how an event's time is written.
type TimeKind uint8

// The kinds of event time.
const (
	Absolute TimeKind = iota // 0.100: from the script's start
	Relative                 // +0.100: from the previous event
	AnyTime                  // *: whenever it happens
)

// String names the kind.
func (k TimeKind) String() string {
	switch k {
	case Absolute:
		return "absolute"
	case Relative:
		return "relative"
	case AnyTime:
		return "any"
	}
	return fmt.Sprintf("TimeKind(%d)", uint8(k))
}

// SpanKind says what a second time after an event's first means.
type SpanKind uint8

// The kinds of span.
const (
	NoSpan   SpanKind = iota
	Range             // 0.1~0.2: any time in between
	Blocking          // 0.1...0.2: a system call that starts at the first and returns at the second
)

// Time is an event's time: At, and for a span End (of kind EndKind,
// relative to the event's start when EndKind is Relative).
type Time struct {
	Kind    TimeKind
	At      time.Duration
	Span    SpanKind
	EndKind TimeKind
	End     time.Duration
}

// String writes the time as a script does.
func (t Time) String() string {
	one := func(k TimeKind, d time.Duration) string {
		s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", d.Seconds()), "0"), ".")
		switch k {
		case Relative:
			return "+" + s
		case AnyTime:
			return "*"
		}
		return s
	}
	s := one(t.Kind, t.At)
	switch t.Span {
	case Range:
		s += "~" + one(t.EndKind, t.End)
	case Blocking:
		s += "..." + one(t.EndKind, t.End)
	}
	return s
}

// Event is one timed line of a script: a *Packet, *Syscall, *Shell or
// *Python.
type Event interface {
	// Pos returns the event's line and time.
	Pos() (line int, t Time)
}

// Base is what every event has: its line in the script and its time.
type Base struct {
	Line int
	Time Time
}

// Pos returns the event's line and time.
func (b Base) Pos() (int, Time) { return b.Line, b.Time }

// Direction is which way a packet goes.
type Direction uint8

// The directions, as seen from the kernel under test.
const (
	Inbound  Direction = iota // "<": the script sends it to the kernel
	Outbound                  // ">": the kernel must send it
)

// String is the direction's sign in a script.
func (d Direction) String() string {
	if d == Outbound {
		return ">"
	}
	return "<"
}

// Packet is a TCP segment line: its direction, flags, sequence range,
// acknowledgement, window and options. Sequence numbers are relative to
// the sender's initial sequence number, acknowledgements to the
// receiver's, as packetdrill writes them.
type Packet struct {
	Base
	Dir      Direction
	Protocol string // "tcp" or "icmp"; "udp", "gre" and "mpls" are parsed only to be skipped
	// ICMP is the message of an "icmp" line.
	ICMP *ICMPMessage
	// ECN is the IP header's ECN field as packetdrill writes it in
	// brackets: "noecn", "ect0", "ect1", "ce" or "ect01" (either ECT,
	// outbound only); empty when the line gives none, which sends
	// Not-ECT and checks nothing.
	ECN   string
	Flags capture.Flags
	// AE is the flag "A", AccECN's (RFC 9768) bit beside the eight
	// flags.
	AE  bool
	Seq uint32 // the range's start
	End uint32 // the range's end
	Len int    // the length in parentheses
	Ack *uint32
	Win *uint16
	Urg *uint16
	// Options are the options in "<...>", in order; nil when the line has
	// none, which on an outbound packet means it must carry none.
	Options []TCPOption
	// AnyOptions is "<...>": any options will do.
	AnyOptions bool
}

// ICMPMessage is an ICMP line's message, as packetdrill writes it:
// "< icmp unreachable frag_needed mtu 1200 [1:1461(1460)]".
type ICMPMessage struct {
	// Type and Code are named as packetdrill names them ("unreachable",
	// "frag_needed", "packet_too_big", or "type_N" and "code_N"); Code
	// is empty when the line gives none (code 0).
	Type, Code string
	MTU        *uint32
	ID         *uint16
	// Quoted is what the message quotes: "tcp" (the kernel's segment
	// Seq:End(Len), its sequence numbers the kernel's, relative), "udp"
	// or "raw" (Len bytes), or "" for nothing.
	Quoted   string
	Seq, End uint32
	Len      int
}

// OptionKind is a TCP option's kind as a script names it.
type OptionKind uint8

// The option kinds.
const (
	OptNOP OptionKind = iota
	OptEOL
	OptMSS
	OptWScale
	OptSACKOK
	OptSACK
	OptTS
	OptFO  // TCP Fast Open cookie, RFC 7413
	OptExp // an experimental option, kind 253 or 254
	OptMD5
	OptOther
	// OptAccECN is the AccECN option (RFC 9768) as the kernel's
	// selftests write it: "ECN e1b 1 ceb 0 e0b 1", its counters named in
	// their order on the wire (Values), the first name telling the
	// order (e0b: kind 172, e1b: kind 174; AccECN1 is set for 174).
	OptAccECN
)

var optionKindNames = [...]string{"nop", "eol", "mss", "wscale", "sackOK", "sack", "TS", "FO", "exp", "md5", "other", "ECN"}

// String names the kind as a script does.
func (k OptionKind) String() string {
	if int(k) < len(optionKindNames) {
		return optionKindNames[k]
	}
	return fmt.Sprintf("OptionKind(%d)", uint8(k))
}

// TCPOption is one option of a packet line. Values holds its numbers:
// the MSS, the shift, TS val and ecr, the SACK blocks' edges in pairs;
// Raw is the text after the name (an FO cookie, an experimental option's
// bytes).
type TCPOption struct {
	Kind   OptionKind
	Values []uint32
	Raw    string
	// Exp is FOEXP: the Fast Open option in its experimental form
	// (kind 254 with the magic 0xF989) rather than kind 34.
	Exp bool
	// AccECN1 is an AccECN option of order 1 (kind 174, e1b first).
	AccECN1 bool
}

// Syscall is a system call line: name(args) = result, with an errno and
// its text when the call must fail.
type Syscall struct {
	Base
	Name   string
	Args   []Expr
	Result Expr
	Errno  string // such as "EAGAIN"; empty when the call succeeds
	Note   string // the errno's text in parentheses, unchecked
}

// Shell is a backtick command, run by /bin/sh in the script's network
// namespace.
type Shell struct {
	Base
	Command string
}

// Python is a %{ ... }% block, run by python3 after the script with the
// tcpi_* values of the socket.
type Python struct {
	Base
	Code string
}

// Expr is an argument or result of a system call: Int, Name, String,
// Ellipsis, *Array, *Struct, *BinOp or *Call.
type Expr interface {
	String() string
}

// Int is a number.
type Int int64

// String writes the number.
func (i Int) String() string { return fmt.Sprint(int64(i)) }

// Name is a symbol such as SOL_SOCKET or TCP_ESTABLISHED.
type Name string

// String writes the name.
func (n Name) String() string { return string(n) }

// String is a quoted string.
type String string

// String writes the string quoted.
func (s String) String() string { return fmt.Sprintf("%q", string(s)) }

// Ellipsis is "...": the default value, or anything.
type Ellipsis struct{}

// String writes "...".
func (Ellipsis) String() string { return "..." }

// Array is [a, b, ...]: a buffer's value, such as an option's [1].
type Array struct{ Elems []Expr }

// String writes the array.
func (a *Array) String() string { return "[" + join(a.Elems) + "]" }

// Struct is {name=value, ...}.
type Struct struct{ Fields []Field }

// Field is one name=value of a Struct; Index is the n of "msg_iov(n)=".
type Field struct {
	Name  string
	Index *int64
	Value Expr
}

// String writes the struct.
func (s *Struct) String() string {
	parts := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		name := f.Name
		if f.Index != nil {
			name += fmt.Sprintf("(%d)", *f.Index)
		}
		if name == "" {
			parts[i] = f.Value.String()
			continue
		}
		parts[i] = name + "=" + f.Value.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// BinOp is a | b (flags) or a & b.
type BinOp struct {
	Op   byte
	L, R Expr
}

// String writes the expression.
func (b *BinOp) String() string { return b.L.String() + string(b.Op) + b.R.String() }

// Call is a function in an argument, such as htons(8080) or
// inet_addr("192.0.2.1").
type Call struct {
	Name string
	Args []Expr
}

// String writes the call.
func (c *Call) String() string { return c.Name + "(" + join(c.Args) + ")" }

func join(es []Expr) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.String()
	}
	return strings.Join(parts, ", ")
}
