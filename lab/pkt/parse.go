package pkt

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// ErrSyntax marks a script that does not parse; the error's text starts
// with the file and line.
var ErrSyntax = errors.New("syntax error")

// SyntaxError is a script's first syntax error: where, and what was
// wanted there.
type SyntaxError struct {
	Path string
	Line int
	Msg  string
}

// Error reads "file:line: msg".
func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// Unwrap makes the error ErrSyntax.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// ParseFile reads and parses the script at path.
func ParseFile(path string) (*Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read script: %w", err)
	}
	return Parse(path, b)
}

// Parse parses a script's text; path names it in errors.
func Parse(path string, src []byte) (*Script, error) {
	p := &parser{path: path, src: string(src), line: 1}
	s, err := p.script()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parser reads the script one byte at a time: the language's tokens
// depend on where they are (a flag "F." after a direction, "..." as a
// time span or an argument), so scanning and parsing go together.
type parser struct {
	path string
	src  string
	pos  int
	line int
}

// fail stops the parse with a syntax error at the current line.
func (p *parser) fail(format string, args ...any) error {
	return &SyntaxError{Path: p.path, Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

// near shows the text at the current position for an error.
func (p *parser) near() string {
	if p.pos >= len(p.src) {
		return "end of file"
	}
	s := p.src[p.pos:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 24 {
		s = s[:24] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.src[p.pos]
}

func (p *parser) has(s string) bool { return strings.HasPrefix(p.src[p.pos:], s) }

// advance moves past n bytes, counting lines.
func (p *parser) advance(n int) {
	for i := 0; i < n && p.pos < len(p.src); i++ {
		if p.src[p.pos] == '\n' {
			p.line++
		}
		p.pos++
	}
}

// space skips blanks, newlines and comments.
func (p *parser) space() error {
	for !p.eof() {
		switch c := p.peek(); {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			p.advance(1)
		case p.has("//"):
			for !p.eof() && p.peek() != '\n' {
				p.advance(1)
			}
		case p.has("/*"):
			line := p.line
			i := strings.Index(p.src[p.pos+2:], "*/")
			if i < 0 {
				p.line = line
				return p.fail("comment /* never closed")
			}
			p.advance(i + 4)
		default:
			return nil
		}
	}
	return nil
}

// inlineSpace skips blanks and comments on the current line only.
func (p *parser) inlineSpace() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == '\r') {
		p.advance(1)
	}
}

// lit consumes s, after blanks, or fails.
func (p *parser) lit(s string) error {
	if err := p.space(); err != nil {
		return err
	}
	if !p.has(s) {
		return p.fail("want %q, got %s", s, p.near())
	}
	p.advance(len(s))
	return nil
}

// accept consumes s, after blanks, if it is next.
func (p *parser) accept(s string) (bool, error) {
	if err := p.space(); err != nil {
		return false, err
	}
	if p.has(s) {
		p.advance(len(s))
		return true, nil
	}
	return false, nil
}

func isLetter(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// ident reads a name: a letter or _, then letters, digits and _.
func (p *parser) ident() (string, error) {
	if err := p.space(); err != nil {
		return "", err
	}
	start := p.pos
	if !isLetter(p.peek()) {
		return "", p.fail("want a name, got %s", p.near())
	}
	for !p.eof() && (isLetter(p.peek()) || isDigit(p.peek())) {
		p.pos++
	}
	return p.src[start:p.pos], nil
}

// uint reads an unsigned integer (decimal or 0x hexadecimal) no larger
// than max.
func (p *parser) uint(what string, max uint64) (uint64, error) {
	if err := p.space(); err != nil {
		return 0, err
	}
	start := p.pos
	if p.has("0x") || p.has("0X") {
		p.pos += 2
	}
	for !p.eof() && (isDigit(p.peek()) || p.pos > start+1 && p.src[start+1]|0x20 == 'x' && strings.IndexByte("abcdefABCDEF", p.peek()) >= 0) {
		p.pos++
	}
	text := p.src[start:p.pos]
	if text == "" {
		return 0, p.fail("want %s, got %s", what, p.near())
	}
	v, err := strconv.ParseUint(text, 0, 64)
	if err != nil || v > max {
		return 0, p.fail("%s %s is out of range (at most %d)", what, text, max)
	}
	return v, nil
}

// seconds reads a time in seconds such as 0, 1.5 or .250.
func (p *parser) seconds() (time.Duration, error) {
	start := p.pos
	for !p.eof() && isDigit(p.peek()) {
		p.pos++
	}
	if p.peek() == '.' && p.pos+1 < len(p.src) && isDigit(p.src[p.pos+1]) {
		p.pos++
		for !p.eof() && isDigit(p.peek()) {
			p.pos++
		}
	}
	text := p.src[start:p.pos]
	if text == "" {
		return 0, p.fail("want a time such as 0.100 or +0.1, got %s", p.near())
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f > 1e6 {
		return 0, p.fail("time %s is out of range", text)
	}
	return time.Duration(f * float64(time.Second)).Round(time.Microsecond), nil
}

func (p *parser) script() (*Script, error) {
	s := &Script{Path: p.path}
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.eof() {
			return s, nil
		}
		if s.Cleanup != nil {
			return nil, p.fail("%s after the script's cleanup command (line %d): an untimed command must come first or last", p.near(), s.Cleanup.Line)
		}
		if p.peek() == '`' {
			// An untimed command: the script's init before any event,
			// its cleanup after the last.
			sh, err := p.command(Base{Line: p.line})
			if err != nil {
				return nil, err
			}
			switch {
			case len(s.Events) > 0:
				s.Cleanup = sh
			case s.Init != nil:
				return nil, p.fail("a second untimed command before the first event (the first is line %d): give it a time, such as 0", s.Init.Line)
			default:
				s.Init = sh
			}
			continue
		}
		if p.has("--") {
			if len(s.Events) > 0 || s.Init != nil {
				return nil, p.fail("option %s after the first event: put the script's options at its top", p.near())
			}
			o, err := p.option()
			if err != nil {
				return nil, err
			}
			s.Options = append(s.Options, o)
			continue
		}
		e, err := p.event()
		if err != nil {
			return nil, err
		}
		s.Events = append(s.Events, e)
	}
}

// option reads a header line "--name=value".
func (p *parser) option() (Option, error) {
	line := p.line
	p.advance(2)
	end := strings.IndexByte(p.src[p.pos:], '\n')
	if end < 0 {
		end = len(p.src) - p.pos
	}
	text := strings.TrimSpace(p.src[p.pos : p.pos+end])
	p.advance(end)
	if i := strings.Index(text, "//"); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	name, value, _ := strings.Cut(text, "=")
	if name == "" || strings.ContainsAny(name, " \t") {
		p.line = line
		return Option{}, p.fail("want an option such as --tolerance_usecs=10000, got %q", "--"+text)
	}
	return Option{Line: line, Name: name, Value: value}, nil
}

// oneTime reads "*", "+N" or "N".
func (p *parser) oneTime() (TimeKind, time.Duration, error) {
	switch p.peek() {
	case '*':
		p.advance(1)
		return AnyTime, 0, nil
	case '+':
		p.advance(1)
		d, err := p.seconds()
		return Relative, d, err
	}
	d, err := p.seconds()
	return Absolute, d, err
}

func (p *parser) time() (Time, error) {
	var t Time
	var err error
	if t.Kind, t.At, err = p.oneTime(); err != nil {
		return t, err
	}
	// packetdrill's lexer takes blanks around "..." and "~": "+.002 ...
	// 0.004", "+.02 ~ +1.1".
	save := p.pos
	p.inlineSpace()
	switch {
	case p.has("..."):
		t.Span = Blocking
		p.advance(3)
		p.inlineSpace()
	case p.peek() == '~':
		t.Span = Range
		p.advance(1)
		p.inlineSpace()
	default:
		p.pos = save
		return t, nil
	}
	if t.Kind == AnyTime {
		return t, p.fail("a time span cannot start at *")
	}
	if t.EndKind, t.End, err = p.oneTime(); err != nil {
		return t, err
	}
	if t.EndKind == AnyTime {
		return t, p.fail("a time span cannot end at *")
	}
	// A relative event's end counts from the event before, as its start
	// does (spanEnd).
	if (t.Kind == Relative || t.EndKind == Absolute && t.Kind == Absolute) && t.End < t.At {
		return t, p.fail("time span %v ends before it starts", t)
	}
	return t, nil
}

// command reads a backtick shell command at its opening "`".
func (p *parser) command(b Base) (*Shell, error) {
	p.advance(1)
	end := strings.IndexByte(p.src[p.pos:], '`')
	if end < 0 {
		return nil, p.fail("shell command ` never closed")
	}
	cmd := p.src[p.pos : p.pos+end]
	p.advance(end + 1)
	return &Shell{Base: b, Command: strings.TrimSpace(cmd)}, nil
}

func (p *parser) event() (Event, error) {
	line := p.line
	t, err := p.time()
	if err != nil {
		return nil, err
	}
	b := Base{Line: line, Time: t}
	p.inlineSpace()
	switch {
	case p.peek() == '<' || p.peek() == '>':
		return p.packet(b)
	case p.peek() == '`':
		return p.command(b)
	case p.has("%{"):
		p.advance(2)
		end := strings.Index(p.src[p.pos:], "}%")
		if end < 0 {
			return nil, p.fail("python block %%{ never closed with }%%")
		}
		code := p.src[p.pos : p.pos+end]
		p.advance(end + 2)
		return &Python{Base: b, Code: code}, nil
	case isLetter(p.peek()):
		return p.syscall(b)
	}
	return nil, p.fail("want a packet (< or >), a system call, a `command` or %%{ python }%% after the time, got %s", p.near())
}

// flagBits maps packetdrill's flag letters to TCP flags.
var flagBits = map[byte]capture.Flags{
	'F': capture.FIN, 'S': capture.SYN, 'R': capture.RST, 'P': capture.PSH,
	'.': capture.ACK, 'U': capture.URG, 'E': capture.ECE, 'W': capture.CWR,
}

func (p *parser) packet(b Base) (Event, error) {
	pk := &Packet{Base: b, Protocol: "tcp"}
	if p.peek() == '>' {
		pk.Dir = Outbound
	}
	p.advance(1)
	p.inlineSpace()
	var quoted *ICMPMessage
	if p.has("[") && p.pos+1 < len(p.src) && isDigit(p.src[p.pos+1]) {
		// packetdrill's older order: the quoted segment before "icmp".
		quoted = &ICMPMessage{}
		if err := p.quoted(quoted); err != nil {
			return nil, err
		}
		p.inlineSpace()
		if !p.has("icmp") {
			return nil, p.fail("a quoted segment [...] is an ICMP message's: want icmp after it, got %s", p.near())
		}
	}
	if err := p.ecn(pk); err != nil {
		return nil, err
	}
	if p.has("icmp ") || p.has("icmp\t") {
		p.advance(4)
		pk.Protocol = "icmp"
		m, err := p.icmp(quoted)
		if err != nil {
			return nil, err
		}
		pk.ICMP = m
		return pk, nil
	}
	for _, proto := range []string{"udp", "gre", "mpls"} {
		if p.has(proto) {
			// Parsed only to be reported as skipped: keep the rest of
			// the line.
			pk.Protocol = proto
			for !p.eof() && p.peek() != '\n' {
				p.advance(1)
			}
			return pk, nil
		}
	}
	start := p.pos
	for !p.eof() {
		if p.peek() == 'A' && !pk.AE {
			pk.AE = true
			p.pos++
			continue
		}
		f, ok := flagBits[p.peek()]
		if !ok || p.has("...") {
			break
		}
		if pk.Flags&f != 0 {
			return nil, p.fail("flag %q twice in %q", p.peek(), p.src[start:p.pos+1])
		}
		pk.Flags |= f
		p.pos++
	}
	if p.pos > start && !p.eof() && p.peek() >= '0' && p.peek() <= '7' {
		// AccECN's ACE field as a digit after the flags (".5"): its
		// bits are AE (4), CWR (2) and ECE (1).
		ace := p.peek() - '0'
		for _, b := range []struct {
			bit  byte
			flag byte
		}{{4, 'A'}, {2, 'W'}, {1, 'E'}} {
			if ace&b.bit == 0 {
				continue
			}
			if b.flag == 'A' && pk.AE || b.flag != 'A' && pk.Flags&flagBits[b.flag] != 0 {
				return nil, p.fail("ACE %c sets %c, which the flags %q already have", p.peek(), b.flag, p.src[start:p.pos])
			}
			if b.flag == 'A' {
				pk.AE = true
			} else {
				pk.Flags |= flagBits[b.flag]
			}
		}
		p.pos++
	}
	if p.pos == start && p.peek() == '-' {
		// "-": a segment with no flags at all.
		p.pos++
	} else if p.pos == start {
		return nil, p.fail("want the packet's flags (S, ., P., F., R, ..., or - for none), got %s", p.near())
	}
	if !p.eof() && p.peek() != ' ' && p.peek() != '\t' && p.peek() != '[' {
		return nil, p.fail("unknown flag %q: flags are F S R P . U E W A, and AccECN's ACE as a digit 0 to 7 after them", p.peek())
	}
	if err := p.ecn(pk); err != nil {
		return nil, err
	}
	var err error
	if pk.Seq, pk.End, pk.Len, err = p.seqRange("", 1<<16); err != nil {
		return nil, err
	}
	for {
		p.inlineSpace()
		switch {
		case p.has("ack "):
			p.advance(3)
			v, err := p.uint("the acknowledgement number", 1<<32-1)
			if err != nil {
				return nil, err
			}
			pk.Ack = ptr(uint32(v))
		case p.has("win "):
			p.advance(3)
			v, err := p.uint("the window", 1<<16-1)
			if err != nil {
				return nil, err
			}
			pk.Win = ptr(uint16(v))
		case p.has("urg "):
			p.advance(3)
			v, err := p.uint("the urgent pointer", 1<<16-1)
			if err != nil {
				return nil, err
			}
			pk.Urg = ptr(uint16(v))
		case p.peek() == '<':
			p.advance(1)
			if err := p.options(pk); err != nil {
				return nil, err
			}
		default:
			return pk, nil
		}
	}
}

// icmp reads an ICMP message after "icmp": its type, code, "mtu N",
// "id N" and the quoted segment ("[1:1461(1460)]", "[udp (100)]" or
// "[raw (100)]"), unless quoted already holds it (the older order).
func (p *parser) icmp(quoted *ICMPMessage) (*ICMPMessage, error) {
	m := &ICMPMessage{}
	if quoted != nil {
		*m = *quoted
	}
	p.inlineSpace()
	t, err := p.ident()
	if err != nil {
		return nil, p.fail("want the ICMP message's type (unreachable, packet_too_big, time_exceeded, type_N...), got %s", p.near())
	}
	m.Type = t
	for {
		p.inlineSpace()
		switch {
		case p.has("mtu ") || p.has("mtu\t"):
			p.advance(3)
			v, err := p.uint("the MTU", 1<<32-1)
			if err != nil {
				return nil, err
			}
			m.MTU = ptr(uint32(v))
		case p.has("id ") || p.has("id\t"):
			p.advance(2)
			v, err := p.uint("the echo id", 1<<16-1)
			if err != nil {
				return nil, err
			}
			m.ID = ptr(uint16(v))
		case p.peek() == '[':
			if m.Quoted != "" {
				return nil, p.fail("an ICMP message quotes one segment: a second [...]")
			}
			if err := p.quoted(m); err != nil {
				return nil, err
			}
		case isLetter(p.peek()) && m.Code == "" && m.MTU == nil && m.ID == nil && m.Quoted == "":
			c, err := p.ident()
			if err != nil {
				return nil, err
			}
			m.Code = c
		case p.eof() || p.peek() == '\n' || p.has("//") || p.has("/*"):
			return m, nil
		default:
			return nil, p.fail("want the ICMP message's code, mtu N, id N or [quoted segment], got %s", p.near())
		}
	}
}

// quoted reads what an ICMP message quotes, in brackets: a TCP sequence
// range "[1:1461(1460)]", "[udp (N)]" or "[raw (N)]".
func (p *parser) quoted(m *ICMPMessage) error {
	if err := p.lit("["); err != nil {
		return err
	}
	p.inlineSpace()
	for _, proto := range []string{"udp", "raw"} {
		if p.has(proto) {
			p.advance(len(proto))
			if err := p.lit("("); err != nil {
				return err
			}
			n, err := p.uint("the quoted length", 1<<16-1)
			if err != nil {
				return err
			}
			m.Quoted, m.Len = proto, int(n)
			if err := p.lit(")"); err != nil {
				return err
			}
			return p.lit("]")
		}
	}
	var err error
	if m.Seq, m.End, m.Len, err = p.seqRange("quoted ", 1<<16-1); err != nil {
		return err
	}
	m.Quoted = "tcp"
	return p.lit("]")
}

// seqRange reads a sequence range "start:end(length)", the length at
// most maxLen and equal to end - start; what prefixes the range's name
// in errors ("quoted " for an ICMP message's).
func (p *parser) seqRange(what string, maxLen uint64) (seq, end uint32, n int, err error) {
	s, err := p.uint("the "+what+"sequence range's start", 1<<32-1)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := p.lit(":"); err != nil {
		return 0, 0, 0, err
	}
	e, err := p.uint("the "+what+"sequence range's end", 1<<32-1)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := p.lit("("); err != nil {
		return 0, 0, 0, err
	}
	l, err := p.uint("the "+what+"payload length", maxLen)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := p.lit(")"); err != nil {
		return 0, 0, 0, err
	}
	if uint32(e-s) != uint32(l) {
		return 0, 0, 0, p.fail("%ssequence range %d:%d is %d bytes but its length says %d", what, s, e, uint32(e-s), l)
	}
	return uint32(s), uint32(e), int(l), nil
}

// ecn reads an optional "[ect0]", "[ect1]", "[ce]", "[noecn]" or
// "[ect01]".
func (p *parser) ecn(pk *Packet) error {
	p.inlineSpace()
	if p.peek() != '[' {
		return nil
	}
	p.advance(1)
	w, err := p.ident()
	if err != nil {
		return err
	}
	switch w {
	case "ect0", "ect1", "ce", "noecn", "ect01":
	default:
		return p.fail("unknown ECN codepoint [%s]: want [noecn], [ect0], [ect1], [ce] or [ect01]", w)
	}
	pk.ECN = w
	if err := p.lit("]"); err != nil {
		return err
	}
	p.inlineSpace()
	return nil
}

// options reads a packet's "<...>" after its "<".
func (p *parser) options(pk *Packet) error {
	pk.Options = []TCPOption{}
	if ok, err := p.accept("..."); err != nil {
		return err
	} else if ok {
		pk.AnyOptions = true
		return p.lit(">")
	}
	if ok, err := p.accept(">"); ok || err != nil {
		return err
	}
	for {
		o, err := p.option1()
		if err != nil {
			return err
		}
		pk.Options = append(pk.Options, o)
		if ok, err := p.accept(","); err != nil {
			return err
		} else if ok {
			continue
		}
		return p.lit(">")
	}
}

// option1 reads one TCP option.
func (p *parser) option1() (TCPOption, error) {
	if err := p.space(); err != nil {
		return TCPOption{}, err
	}
	start := p.pos
	for !p.eof() && (isLetter(p.peek()) || isDigit(p.peek()) || p.peek() == '-') {
		p.pos++
	}
	name := p.src[start:p.pos]
	num := func(what string, max uint64) (uint32, error) {
		v, err := p.uint(what, max)
		return uint32(v), err
	}
	switch name {
	case "nop":
		return TCPOption{Kind: OptNOP}, nil
	case "eol":
		return TCPOption{Kind: OptEOL}, nil
	case "sackOK":
		return TCPOption{Kind: OptSACKOK}, nil
	case "mss":
		v, err := num("the MSS", 1<<16-1)
		return TCPOption{Kind: OptMSS, Values: []uint32{v}}, err
	case "wscale":
		v, err := num("the window scale", 255)
		return TCPOption{Kind: OptWScale, Values: []uint32{v}}, err
	case "TS":
		if err := p.lit("val"); err != nil {
			return TCPOption{}, err
		}
		val, err := num("TS val", 1<<32-1)
		if err != nil {
			return TCPOption{}, err
		}
		if err := p.lit("ecr"); err != nil {
			return TCPOption{}, err
		}
		ecr, err := num("TS ecr", 1<<32-1)
		return TCPOption{Kind: OptTS, Values: []uint32{val, ecr}}, err
	case "sack":
		o := TCPOption{Kind: OptSACK}
		for {
			p.inlineSpace()
			if !isDigit(p.peek()) {
				break
			}
			l, err := num("a SACK block's left edge", 1<<32-1)
			if err != nil {
				return o, err
			}
			if err := p.lit(":"); err != nil {
				return o, err
			}
			r, err := num("a SACK block's right edge", 1<<32-1)
			if err != nil {
				return o, err
			}
			o.Values = append(o.Values, l, r)
		}
		if len(o.Values) == 0 {
			return o, p.fail("sack without blocks: write sack 1001:2001")
		}
		return o, nil
	case "ECN":
		return p.accECN()
	case "":
		return TCPOption{}, p.fail("want a TCP option (mss, wscale, sackOK, sack, TS, nop, eol, FO, ECN, ...), got %s", p.near())
	}
	// The rest of the option is raw text up to "," or ">".
	end := strings.IndexAny(p.src[p.pos:], ",>\n")
	if end < 0 || p.src[p.pos+end] == '\n' {
		return TCPOption{}, p.fail("option %s never ends with , or >", name)
	}
	raw := strings.TrimSpace(p.src[p.pos : p.pos+end])
	p.advance(end)
	switch name {
	case "FO", "FOEXP":
		return TCPOption{Kind: OptFO, Raw: raw, Exp: name == "FOEXP"}, nil
	case "exp", "EXP":
		return TCPOption{Kind: OptExp, Raw: raw}, nil
	case "md5":
		return TCPOption{Kind: OptMD5, Raw: raw}, nil
	}
	return TCPOption{Kind: OptOther, Raw: strings.TrimSpace(name + " " + raw)}, nil
}

// accECN reads an AccECN option after its name "ECN": up to three
// counters, each a name and a number of 24 bits, in the order of one of
// the option's two kinds (e0b ceb e1b, or e1b ceb e0b).
func (p *parser) accECN() (TCPOption, error) {
	o := TCPOption{Kind: OptAccECN, Values: []uint32{}}
	for {
		p.inlineSpace()
		if p.peek() == ',' || p.peek() == '>' {
			return o, nil
		}
		if len(o.Values) == 3 {
			return o, p.fail("option ECN has three counters at most, got %s", p.near())
		}
		start := p.pos
		for !p.eof() && (isLetter(p.peek()) || isDigit(p.peek())) {
			p.pos++
		}
		name := p.src[start:p.pos]
		if len(o.Values) == 0 {
			o.AccECN1 = name == "e1b"
		}
		if want := accECNNames[o.order()][len(o.Values)]; name != want {
			return o, p.fail("option ECN: want the counter %s (the order is e0b ceb e1b, or e1b ceb e0b), got %s", want, p.near())
		}
		v, err := p.uint("the counter "+name, 1<<24-1)
		if err != nil {
			return o, err
		}
		o.Values = append(o.Values, uint32(v))
	}
}

func (p *parser) syscall(b Base) (Event, error) {
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	sc := &Syscall{Base: b, Name: name}
	if err := p.lit("("); err != nil {
		return nil, err
	}
	if sc.Args, err = p.exprs(")"); err != nil {
		return nil, err
	}
	if err := p.lit("="); err != nil {
		return nil, fmt.Errorf("%w (every system call says what it returns: = 0, = -1 EAGAIN (...))", err)
	}
	if sc.Result, err = p.expr(); err != nil {
		return nil, err
	}
	p.inlineSpace()
	if c := p.peek(); c >= 'A' && c <= 'Z' || c == '(' {
		// An errno and its text, or the text alone (packetdrill then
		// checks the result only).
		if c != '(' {
			if sc.Errno, err = p.ident(); err != nil {
				return nil, err
			}
		}
		p.inlineSpace()
		if p.peek() == '(' {
			end := strings.IndexByte(p.src[p.pos:], ')')
			if end < 0 {
				return nil, p.fail("errno's text ( never closed")
			}
			sc.Note = p.src[p.pos+1 : p.pos+end]
			p.advance(end + 1)
		}
	}
	return sc, nil
}

// exprs reads expressions separated by commas up to close.
func (p *parser) exprs(close string) ([]Expr, error) {
	var out []Expr
	if ok, err := p.accept(close); ok || err != nil {
		return out, err
	}
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if ok, err := p.accept(","); err != nil {
			return nil, err
		} else if ok {
			continue
		}
		return out, p.lit(close)
	}
}

func (p *parser) expr() (Expr, error) {
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		c := p.peek()
		if c != '|' && c != '&' {
			return l, nil
		}
		p.advance(1)
		r, err := p.operand()
		if err != nil {
			return nil, err
		}
		l = &BinOp{Op: c, L: l, R: r}
	}
}

func (p *parser) operand() (Expr, error) {
	if err := p.space(); err != nil {
		return nil, err
	}
	switch c := p.peek(); {
	case p.has("..."):
		p.advance(3)
		return Ellipsis{}, nil
	case c == '-' || isDigit(c):
		neg := c == '-'
		if neg {
			p.advance(1)
		}
		v, err := p.uint("a number", 1<<63-1)
		if err != nil {
			return nil, err
		}
		if neg {
			return Int(-int64(v)), nil
		}
		return Int(v), nil
	case c == '"':
		end := p.pos + 1
		for end < len(p.src) && p.src[end] != '"' && p.src[end] != '\n' {
			if p.src[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(p.src) || p.src[end] != '"' {
			return nil, p.fail("string never closed")
		}
		s, err := strconv.Unquote(p.src[p.pos : end+1])
		if err != nil {
			return nil, p.fail("bad string %s: %v", p.src[p.pos:end+1], err)
		}
		p.advance(end + 1 - p.pos)
		return String(s), nil
	case c == '[':
		p.advance(1)
		es, err := p.exprs("]")
		return &Array{Elems: es}, err
	case c == '{':
		p.advance(1)
		return p.structure()
	case isLetter(c):
		name, _ := p.ident()
		p.inlineSpace()
		if p.peek() == '(' {
			p.advance(1)
			args, err := p.exprs(")")
			return &Call{Name: name, Args: args}, err
		}
		return Name(name), nil
	}
	return nil, p.fail("want an argument (a number, NAME, \"string\", [..], {..} or ...), got %s", p.near())
}

// structure reads a struct's fields after its "{": name=value,
// name(n)=value, or a bare value.
func (p *parser) structure() (Expr, error) {
	s := &Struct{}
	if ok, err := p.accept("}"); ok || err != nil {
		return s, err
	}
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		var f Field
		save, saveLine := p.pos, p.line
		if isLetter(p.peek()) {
			name, _ := p.ident()
			p.inlineSpace()
			if p.peek() == '(' {
				p.advance(1)
				if ok, _ := p.accept("..."); !ok {
					n, err := p.uint("an index", 1<<31)
					if err != nil {
						return nil, err
					}
					f.Index = ptr(int64(n))
				}
				if err := p.lit(")"); err != nil {
					return nil, err
				}
				p.inlineSpace()
			}
			if p.peek() == '=' {
				p.advance(1)
				f.Name = name
			} else {
				p.pos, p.line, f.Index = save, saveLine, nil
			}
		}
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		f.Value = v
		s.Fields = append(s.Fields, f)
		if ok, err := p.accept(","); err != nil {
			return nil, err
		} else if ok {
			continue
		}
		return s, p.lit("}")
	}
}

func ptr[T any](v T) *T { return &v }
