package scripted

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tcplab/tcplab/capture"
)

// The TCP flags, as package capture names them, for templates.
const (
	FIN = capture.FIN
	SYN = capture.SYN
	RST = capture.RST
	PSH = capture.PSH
	ACK = capture.ACK
	URG = capture.URG
	ECE = capture.ECE
	CWR = capture.CWR
)

// TCP describes one segment: one the script sends, or one it expects
// from the kernel. Sequence numbers are relative to the sender's initial
// sequence number, acknowledgement numbers and SACK blocks to the
// receiver's.
type TCP struct {
	// Flags are sent as given (0 sends none); on expect, 0 does not
	// check them and anything else must equal them exactly.
	Flags capture.Flags
	// Seq defaults on send to the script's next sequence number.
	Seq *uint32
	// Ack defaults on send, when Flags has ACK, to everything received
	// from the kernel.
	Ack *uint32
	// Window is the raw window field; it defaults on send to the
	// connection's window (DefaultWindow).
	Window *uint16
	// Options are sent as given; on expect, only what they name is
	// checked.
	Options Options
	// Payload is sent as given; on expect, a non-nil Payload (even empty)
	// must equal the segment's.
	Payload []byte
	// Len, on expect, is the payload length the segment must have; send
	// uses Payload's.
	Len *int
	// ECN is the IP header's ECN field: sent as given (nil sends
	// Not-ECT); on expect, nil does not check it.
	ECN *ECN
	// AE is AccECN's flag (RFC 9768), the header's bit before CWR: sent
	// as given; on expect, checked with the flags (when Flags is not 0).
	AE bool
	// Urgent is the urgent pointer field (RFC 9293 3.1): sent as given
	// (nil sends 0; Flags says whether URG is set); on expect, nil does
	// not check it.
	Urgent *uint16
}

// Options are the TCP options of a template. A field that is nil (or
// false) puts no option in a sent segment and checks nothing on an
// expected one; Present and Absent check only whether an option is there.
type Options struct {
	MSS           *uint16
	WindowScale   *uint8
	SACKPermitted bool
	// TSVal and TSEcr: either set sends the timestamps option (the other
	// part defaulting to the connection's clock, or to the kernel's last
	// TSval); on expect, each set part must equal the segment's.
	TSVal, TSEcr *uint32
	// SACK blocks, relative to the receiver's initial sequence number. On
	// expect a non-nil SACK must equal the segment's blocks.
	SACK []SACKBlock
	// Present names options an expected segment must carry, whatever
	// their values.
	Present OptionSet
	// Absent names options an expected segment must not carry.
	Absent OptionSet
	// FastOpen, when not nil, sends the TCP Fast Open option (RFC 7413,
	// kind 34) with this cookie; empty is a cookie request. On expect, a
	// non-nil FastOpen wants the segment's option (kind 34, or 254 with
	// the experimental magic) with this cookie, empty a request; nil
	// checks nothing of it but what Present and Absent name.
	FastOpen []byte
	// Raw are options sent as given after the others (each padded with
	// NOPs to a 32-bit word), such as an MD5 signature option (kind 19)
	// with the bytes a script writes; expect does not check them.
	Raw []RawOption
	// AccECN, when not nil, sends the AccECN option (RFC 9768, kind 172
	// or 174) after the others; on expect, the segment's must equal it:
	// its order and every counter.
	AccECN *AccECN
}

// RawOption is a TCP option as bytes: its kind and its data (the length
// byte is added).
type RawOption struct {
	Kind uint8
	Data []byte
}

// SACKBlock is one selective acknowledgement block, [Left, Right),
// relative.
type SACKBlock = capture.SACKBlock

// OptionSet is a set of TCP option kinds.
type OptionSet uint8

// The option kinds of an OptionSet.
const (
	OptMSS OptionSet = 1 << iota
	OptWindowScale
	OptSACKPermitted
	OptTimestamps
	OptSACK
	OptFastOpen
	OptAccECN
)

var optionNames = [...]string{"mss", "wscale", "sackOK", "TS", "sack", "FO", "AccECN"}

// String lists the kinds as packetdrill names them, such as "mss,TS".
func (s OptionSet) String() string {
	var names []string
	for i, n := range optionNames {
		if s&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// has returns the option kinds o carries.
func has(o capture.Options) OptionSet {
	var s OptionSet
	if o.MSS != 0 {
		s |= OptMSS
	}
	if o.WindowScale >= 0 {
		s |= OptWindowScale
	}
	if o.FastOpen != capture.NoFastOpen {
		s |= OptFastOpen
	}
	if o.SACKPermitted {
		s |= OptSACKPermitted
	}
	if o.HasTimestamps {
		s |= OptTimestamps
	}
	if o.NSACK > 0 {
		s |= OptSACK
	}
	return s
}

// Uint32 returns a pointer to v, for a template's Seq, Ack, TSVal or
// TSEcr.
func Uint32(v uint32) *uint32 { return &v }

// Uint16 returns a pointer to v, for a template's Window or MSS.
func Uint16(v uint16) *uint16 { return &v }

// Uint8 returns a pointer to v, for a template's WindowScale.
func Uint8(v uint8) *uint8 { return &v }

// Int returns a pointer to v, for a template's Len.
func Int(v int) *int { return &v }

// String describes the template as the mismatch report shows it: what it
// sets, "*" for what it leaves to the connection or does not check.
func (t TCP) String() string {
	var b strings.Builder
	if t.ECN != nil {
		fmt.Fprintf(&b, "[%v] ", *t.ECN)
	}
	switch {
	case t.Flags == 0:
		b.WriteString("*")
	case t.AE:
		b.WriteString(t.Flags.String() + ",AE")
	default:
		b.WriteString(t.Flags.String())
	}
	opt := func(name string, p *uint32) {
		if p != nil {
			fmt.Fprintf(&b, " %s=%d", name, *p)
		}
	}
	opt("seq", t.Seq)
	opt("ack", t.Ack)
	if t.Window != nil {
		fmt.Fprintf(&b, " win=%d", *t.Window)
	}
	// A pointer of 0 is what every segment without URG carries: a
	// template that checks it says nothing worth reading, and a
	// mismatch shows it in its own row.
	if t.Urgent != nil && *t.Urgent != 0 {
		fmt.Fprintf(&b, " urg=%d", *t.Urgent)
	}
	switch {
	case t.Payload != nil:
		fmt.Fprintf(&b, " len=%d", len(t.Payload))
	case t.Len != nil:
		fmt.Fprintf(&b, " len=%d", *t.Len)
	}
	if o := t.Options.String(); o != "" {
		b.WriteString(" <" + o + ">")
	}
	return b.String()
}

// String lists the options in packetdrill's words.
func (o Options) String() string {
	var parts []string
	if o.MSS != nil {
		parts = append(parts, fmt.Sprintf("mss %d", *o.MSS))
	}
	if o.SACKPermitted {
		parts = append(parts, "sackOK")
	}
	if o.TSVal != nil || o.TSEcr != nil {
		parts = append(parts, "TS val "+optU32(o.TSVal)+" ecr "+optU32(o.TSEcr))
	}
	if o.WindowScale != nil {
		parts = append(parts, fmt.Sprintf("wscale %d", *o.WindowScale))
	}
	if o.SACK != nil {
		parts = append(parts, "sack "+sackString(o.SACK))
	}
	if o.FastOpen != nil {
		parts = append(parts, strings.TrimSpace("FO "+hex.EncodeToString(o.FastOpen)))
	}
	if o.AccECN != nil {
		parts = append(parts, o.AccECN.String())
	}
	if o.Present != 0 {
		parts = append(parts, "present "+o.Present.String())
	}
	if o.Absent != 0 {
		parts = append(parts, "absent "+o.Absent.String())
	}
	return strings.Join(parts, ",")
}

func optU32(p *uint32) string {
	if p == nil {
		return "*"
	}
	return fmt.Sprint(*p)
}

func sackString(bs []SACKBlock) string {
	parts := make([]string, len(bs))
	for i, s := range bs {
		parts[i] = fmt.Sprintf("%d:%d", s.Left, s.Right)
	}
	return strings.Join(parts, " ")
}
