package pkt

import (
	"fmt"
	"strings"

	"github.com/tcplab/tcplab/capture"
)

// Format writes an event back as one line of a script, in a canonical
// spelling: what the pcapng's comments and reports show.
func Format(e Event) string {
	_, t := e.Pos()
	switch e := e.(type) {
	case *Packet:
		return t.String() + " " + e.text()
	case *Syscall:
		return t.String() + " " + e.text()
	case *Shell:
		return t.String() + " `" + e.Command + "`"
	case *Python:
		return t.String() + " %{" + strings.TrimSpace(e.Code) + "}%"
	}
	return fmt.Sprintf("%s %T", t, e)
}

// flagOrder is the order packetdrill writes flags in.
var flagOrder = []struct {
	c byte
	f capture.Flags
}{{'F', capture.FIN}, {'S', capture.SYN}, {'R', capture.RST}, {'P', capture.PSH}, {'.', capture.ACK}, {'U', capture.URG}, {'E', capture.ECE}, {'W', capture.CWR}}

// flagText writes flags as a script does, such as "S." or "P.".
func flagText(f capture.Flags) string {
	var b []byte
	for _, o := range flagOrder {
		if f&o.f != 0 {
			b = append(b, o.c)
		}
	}
	return string(b)
}

func (pk *Packet) text() string {
	var b strings.Builder
	b.WriteString(pk.Dir.String())
	if m := pk.ICMP; m != nil {
		fmt.Fprintf(&b, " icmp %s", m.Type)
		if m.Code != "" {
			fmt.Fprintf(&b, " %s", m.Code)
		}
		if m.MTU != nil {
			fmt.Fprintf(&b, " mtu %d", *m.MTU)
		}
		if m.ID != nil {
			fmt.Fprintf(&b, " id %d", *m.ID)
		}
		switch m.Quoted {
		case "tcp":
			fmt.Fprintf(&b, " [%d:%d(%d)]", m.Seq, m.End, m.Len)
		case "udp", "raw":
			fmt.Fprintf(&b, " [%s (%d)]", m.Quoted, m.Len)
		}
		return b.String()
	}
	if pk.Protocol != "tcp" {
		fmt.Fprintf(&b, " %s", pk.Protocol)
		return b.String()
	}
	if pk.ECN != "" {
		fmt.Fprintf(&b, " [%s]", pk.ECN)
	}
	ae := ""
	if pk.AE {
		ae = "A"
	}
	flags := flagText(pk.Flags) + ae
	if flags == "" {
		flags = "-"
	}
	fmt.Fprintf(&b, " %s %d:%d(%d)", flags, pk.Seq, pk.End, pk.Len)
	if pk.Ack != nil {
		fmt.Fprintf(&b, " ack %d", *pk.Ack)
	}
	if pk.Win != nil {
		fmt.Fprintf(&b, " win %d", *pk.Win)
	}
	if pk.Urg != nil {
		fmt.Fprintf(&b, " urg %d", *pk.Urg)
	}
	switch {
	case pk.AnyOptions:
		b.WriteString(" <...>")
	case pk.Options != nil:
		parts := make([]string, len(pk.Options))
		for i, o := range pk.Options {
			parts[i] = o.String()
		}
		b.WriteString(" <" + strings.Join(parts, ",") + ">")
	}
	return b.String()
}

// String writes the option as a script does.
func (o TCPOption) String() string {
	switch o.Kind {
	case OptMSS, OptWScale:
		return fmt.Sprintf("%s %d", o.Kind, o.Values[0])
	case OptTS:
		return fmt.Sprintf("TS val %d ecr %d", o.Values[0], o.Values[1])
	case OptSACK:
		s := "sack"
		for i := 0; i+1 < len(o.Values); i += 2 {
			s += fmt.Sprintf(" %d:%d", o.Values[i], o.Values[i+1])
		}
		return s
	case OptOther:
		return o.Raw
	case OptAccECN:
		return o.accECN().String()
	case OptFO, OptExp, OptMD5:
		if o.Exp {
			return strings.TrimSpace("FOEXP " + o.Raw)
		}
		return strings.TrimSpace(o.Kind.String() + " " + o.Raw)
	}
	return o.Kind.String()
}

func (sc *Syscall) text() string {
	s := sc.Name + "(" + join(sc.Args) + ") = " + sc.Result.String()
	if sc.Errno != "" {
		s += " " + sc.Errno
	}
	if sc.Note != "" {
		s += " (" + sc.Note + ")"
	}
	return s
}
