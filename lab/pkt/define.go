package pkt

import (
	"strconv"
	"strings"
)

// Definitions are packetdrill's -D NAME=VALUE (--define): a word of a
// system call line that is a defined NAME reads as its VALUE, as
// packetdrill's lexer reads it. The kernel's selftests pass
// -D CMSG_LEVEL_IP=SOL_IP and the like on their command line.

// define reads one definition, NAME=VALUE: NAME a word (letters, digits
// and underscores, not a number), VALUE not empty. ok is false when it
// is not one.
func define(text string) (name, value string, ok bool) {
	name, value, found := strings.Cut(text, "=")
	if !found || value == "" || name == "" || isDigit(name[0]) {
		return "", "", false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !isDigit(c) {
			return "", "", false
		}
	}
	return name, value, true
}

// defined returns s with each name in its system calls' arguments,
// results and errnos that defs defines replaced by its value (see
// defineValue), and each Fast Open cookie and ICMP type or code its
// packets name so (definedPacket). s is not changed; with no
// definitions it is returned.
func defined(s *Script, defs map[string]string) *Script {
	if len(defs) == 0 {
		return s
	}
	c := *s
	c.Events = make([]Event, len(s.Events))
	for i, e := range s.Events {
		if pk, ok := e.(*Packet); ok {
			c.Events[i] = definedPacket(pk, defs)
			continue
		}
		sc, ok := e.(*Syscall)
		if !ok {
			c.Events[i] = e
			continue
		}
		n := *sc
		n.Args = make([]Expr, len(sc.Args))
		for j, a := range sc.Args {
			n.Args[j] = substitute(a, defs)
		}
		if sc.Result != nil {
			n.Result = substitute(sc.Result, defs)
		}
		if v, ok := defs[sc.Errno]; ok && sc.Errno != "" {
			n.Errno = v
		}
		c.Events[i] = &n
	}
	return &c
}

// definedPacket returns pk with its ICMP type and code, and each Fast
// Open cookie (FO MY_COOKIE), replaced by the value defs gives, where it
// gives one: packetdrill's lexer reads them as any other word.
// TFO_COOKIE and TFO_COOKIE_ZERO stay names: a runner defines them for
// packetdrill's addresses, and tcplab computes them for the run's
// (namedCookies).
func definedPacket(pk *Packet, defs map[string]string) *Packet {
	if m := pk.ICMP; m != nil {
		n := *m
		if v, ok := defs[n.Type]; ok {
			n.Type = v
		}
		if v, ok := defs[n.Code]; ok && n.Code != "" {
			n.Code = v
		}
		if n == *m {
			return pk
		}
		c := *pk
		c.ICMP = &n
		return &c
	}
	var opts []TCPOption
	for i, o := range pk.Options {
		v, ok := defs[o.Raw]
		if _, named := namedCookies[o.Raw]; !ok || named || o.Kind != OptFO || o.Raw == "" {
			continue
		}
		if opts == nil {
			opts = append([]TCPOption(nil), pk.Options...)
		}
		opts[i].Raw = v
	}
	if opts == nil {
		return pk
	}
	c := *pk
	c.Options = opts
	return &c
}

// substitute returns e with its defined names replaced, at any depth.
func substitute(e Expr, defs map[string]string) Expr {
	switch e := e.(type) {
	case Name:
		if v, ok := defs[string(e)]; ok {
			return defineValue(v)
		}
	case *Array:
		a := &Array{Elems: make([]Expr, len(e.Elems))}
		for i, x := range e.Elems {
			a.Elems[i] = substitute(x, defs)
		}
		return a
	case *Struct:
		st := &Struct{Fields: make([]Field, len(e.Fields))}
		for i, f := range e.Fields {
			f.Value = substitute(f.Value, defs)
			st.Fields[i] = f
		}
		return st
	case *BinOp:
		return &BinOp{Op: e.Op, L: substitute(e.L, defs), R: substitute(e.R, defs)}
	case *Call:
		c := &Call{Name: e.Name, Args: make([]Expr, len(e.Args))}
		for i, x := range e.Args {
			c.Args[i] = substitute(x, defs)
		}
		return c
	}
	return e
}

// defineValue is a definition's value as packetdrill's lexer returns
// it: "text" a string, any other word a name, which is looked up as a
// symbol once and not defined again. A number is a number here, where
// packetdrill would look it up as a symbol and stop.
func defineValue(v string) Expr {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return String(v[1 : len(v)-1])
	}
	if n, err := strconv.ParseInt(v, 0, 64); err == nil {
		return Int(n)
	}
	return Name(v)
}
