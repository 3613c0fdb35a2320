package scripted

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tcplab/tcplab/capture"
)

// Row is one field where a segment differs from its template.
type Row struct {
	Field, Got, Want string
}

// Mismatch is a failed step: what it wanted, the segment that came
// instead (empty when none did), the fields that differ, and every frame
// seen while waiting, oldest first.
type Mismatch struct {
	Step int
	Want string
	Got  string
	Rows []Row
	Seen []string
}

// Error prints the step, a got/want table of only the fields that
// differ, and the frames seen while waiting.
func (m *Mismatch) Error() string {
	var b strings.Builder
	switch {
	case m.Got == "":
		fmt.Fprintf(&b, "step %d: want %s: nothing came\n", m.Step, m.Want)
	default:
		fmt.Fprintf(&b, "step %d: want %s; got %s\n", m.Step, m.Want, m.Got)
		if len(m.Rows) == 0 {
			break
		}
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\tfield\tgot\twant")
		for _, r := range m.Rows {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\n", r.Field, r.Got, r.Want)
		}
		tw.Flush()
	}
	fmt.Fprintf(&b, "frames seen while waiting (%d):", len(m.Seen))
	for _, s := range m.Seen {
		b.WriteString("\n\t" + s)
	}
	return b.String()
}

// diff returns the fields of got that want names and got does not have.
func diff(want TCP, got Segment) []Row {
	var rows []Row
	add := func(field string, g, w any) { rows = append(rows, Row{field, fmt.Sprint(g), fmt.Sprint(w)}) }
	if want.Flags != 0 && want.Flags != got.Flags {
		add("flags", got.Flags, want.Flags)
	}
	if want.Flags != 0 && want.AE != got.AE {
		add("AE flag", got.AE, want.AE)
	}
	if want.ECN != nil && !want.ECN.matches(got.ECN) {
		add("ECN field", got.ECN, *want.ECN)
	}
	if want.Seq != nil && *want.Seq != got.Seq {
		add("seq", got.Seq, *want.Seq)
	}
	if want.Ack != nil && *want.Ack != got.Ack {
		add("ack", got.Ack, *want.Ack)
	}
	if want.Window != nil && *want.Window != got.Window {
		add("window", got.Window, *want.Window)
	}
	if want.Urgent != nil && *want.Urgent != got.Urgent {
		add("urg", got.Urgent, *want.Urgent)
	}
	if want.Len != nil && *want.Len != len(got.Payload) {
		add("len", len(got.Payload), *want.Len)
	}
	if want.Payload != nil && !bytes.Equal(want.Payload, got.Payload) {
		add("payload", fmt.Sprintf("%q", got.Payload), fmt.Sprintf("%q", want.Payload))
	}
	return append(rows, diffOptions(want.Options, got)...)
}

// diffOptions is diff for the options.
func diffOptions(want Options, got Segment) []Row {
	var rows []Row
	o := got.Options
	kinds := has(o)
	if got.AccECN != nil {
		kinds |= OptAccECN
	}
	add := func(field string, g, w any) { rows = append(rows, Row{field, fmt.Sprint(g), fmt.Sprint(w)}) }
	absent := func(k OptionSet, g any) {
		if kinds&k == 0 {
			add(k.String(), "absent", g)
		}
	}
	if want.MSS != nil {
		absent(OptMSS, *want.MSS)
		if kinds&OptMSS != 0 && o.MSS != *want.MSS {
			add("mss", o.MSS, *want.MSS)
		}
	}
	if want.WindowScale != nil {
		absent(OptWindowScale, *want.WindowScale)
		if kinds&OptWindowScale != 0 && uint8(o.WindowScale) != *want.WindowScale {
			add("wscale", o.WindowScale, *want.WindowScale)
		}
	}
	if want.SACKPermitted {
		absent(OptSACKPermitted, "present")
	}
	if want.TSVal != nil || want.TSEcr != nil {
		absent(OptTimestamps, "present")
		if kinds&OptTimestamps != 0 {
			if want.TSVal != nil && o.TSVal != *want.TSVal {
				add("TS val", o.TSVal, *want.TSVal)
			}
			if want.TSEcr != nil && o.TSEcr != *want.TSEcr {
				add("TS ecr", o.TSEcr, *want.TSEcr)
			}
		}
	}
	if want.SACK != nil {
		if g := o.SACK[:o.NSACK]; !slices.Equal(g, want.SACK) {
			add("sack", sackString(g), sackString(want.SACK))
		}
	}
	if want.FastOpen != nil {
		absent(OptFastOpen, "present")
		if kinds&OptFastOpen != 0 && !bytes.Equal(got.FastOpenCookie, want.FastOpen) {
			add("FO cookie", cookieString(got.FastOpenCookie), cookieString(want.FastOpen))
		}
	}
	if want.AccECN != nil && !want.AccECN.equal(got.AccECN) {
		g := "absent"
		if got.AccECN != nil {
			g = got.AccECN.String()
		}
		add("AccECN", g, want.AccECN.String())
	}
	if miss := want.Present &^ kinds; miss != 0 {
		add("options", kinds, "with "+miss.String())
	}
	if extra := want.Absent & kinds; extra != 0 {
		add("options", kinds, "without "+extra.String())
	}
	return rows
}

// line describes one frame the device gave, as the report lists it:
// its time since the peer opened, the endpoints, and the segment,
// sequence numbers relative when it is the connection's.
func (c *Conn) line(f frame) string {
	at := fmt.Sprintf("+%.3fs", f.at.Sub(c.p.start).Seconds())
	if !f.tcp {
		return fmt.Sprintf("%s %d bytes, not a TCP segment", at, len(f.data))
	}
	s := &f.seg
	if !c.owns(f) {
		return fmt.Sprintf("%s %v > %v %v seq=%d ack=%d win=%d len=%d (another connection)", at, s.Src, s.Dst, s.Flags, s.Seq, s.Ack, s.Window, s.Len)
	}
	g := c.relative(f)
	return fmt.Sprintf("%s %v > %v %s%s", at, s.Src, s.Dst, segmentString(g.Flags, g.Seq, g.Ack, g.Window, len(g.Payload), g.Options), ecnString(g))
}

// ecnString is what line adds for a segment's ECN field, AE flag and
// AccECN option, each when set: " [ect0] AE <ECN e1b 1 ceb 0 e0b 1>".
func ecnString(g Segment) string {
	var b strings.Builder
	if g.ECN != NotECT {
		fmt.Fprintf(&b, " [%v]", g.ECN)
	}
	if g.AE {
		b.WriteString(" AE")
	}
	if g.AccECN != nil {
		fmt.Fprintf(&b, " <%v>", g.AccECN)
	}
	return b.String()
}

func (c *Conn) lines(fs []frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = c.line(f)
	}
	return out
}

// wireLine describes a segment the script sends, relative, for the
// pcapng's comment.
func (c *Conn) wireLine(w *wire) string {
	ack := w.ack - c.irs
	if !w.flags.Has(ACK) {
		ack = w.ack
	}
	var b strings.Builder
	b.WriteString(segmentString(w.flags, w.seq-c.iss, ack, w.window, len(w.payload), optionsOf(w)))
	return b.String()
}

// optionsOf returns the options w carries, in capture's form.
func optionsOf(w *wire) (o capture.Options) {
	o.WindowScale = -1
	if w.mss != nil {
		o.MSS = *w.mss
	}
	if w.wscale != nil {
		o.WindowScale = int8(*w.wscale)
	}
	o.SACKPermitted = w.sackOK
	o.HasTimestamps, o.TSVal, o.TSEcr = w.ts, w.tsVal, w.tsEcr
	for i, s := range w.sack {
		if i < len(o.SACK) {
			o.SACK[i] = s
			o.NSACK++
		}
	}
	return o
}

// segmentString prints a segment in the words of the templates.
func segmentString(flags capture.Flags, seq, ack uint32, win uint16, n int, o capture.Options) string {
	s := fmt.Sprintf("%v seq=%d ack=%d win=%d len=%d", flags, seq, ack, win, n)
	var opts []string
	if o.MSS != 0 {
		opts = append(opts, fmt.Sprintf("mss %d", o.MSS))
	}
	if o.SACKPermitted {
		opts = append(opts, "sackOK")
	}
	if o.HasTimestamps {
		opts = append(opts, fmt.Sprintf("TS val %d ecr %d", o.TSVal, o.TSEcr))
	}
	if o.WindowScale >= 0 {
		opts = append(opts, fmt.Sprintf("wscale %d", o.WindowScale))
	}
	if o.NSACK > 0 {
		opts = append(opts, "sack "+sackString(o.SACK[:o.NSACK]))
	}
	if len(opts) > 0 {
		s += " <" + strings.Join(opts, ",") + ">"
	}
	return s
}

// cookieString is a Fast Open cookie as a mismatch row shows it: hex, or
// "none (a request)".
func cookieString(c []byte) string {
	if len(c) == 0 {
		return "none (a request)"
	}
	return hex.EncodeToString(c)
}
