package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// randomPackets makes annotated segments with every field varied: flags,
// labels, states, options, IPv4 and IPv6, times from microseconds to
// hours.
func randomPackets(n int) []Packet {
	r := rand.New(rand.NewPCG(1, 2))
	start := time.Unix(1700000000, 0)
	addrs := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("10.1.2.3:443"),
		netip.MustParseAddrPort("[::1]:8000"), netip.MustParseAddrPort("[2001:db8::5]:51234"),
	}
	pkts := make([]Packet, n)
	for i := range pkts {
		p := &pkts[i]
		p.TCP = true
		s, a := &p.Segment, &p.Annotation
		s.Frame = i + 1
		s.Time = start.Add(time.Duration(r.Int64N(int64(3 * time.Hour)))).Add(-time.Duration(r.IntN(2)) * time.Hour)
		if i%7 == 0 {
			s.Time = start.Add(time.Duration(r.IntN(1000))) // below a microsecond
		}
		s.Src, s.Dst = addrs[r.IntN(4)], addrs[r.IntN(4)]
		s.Flags = Flags(r.IntN(256))
		s.Seq, s.Ack = r.Uint32(), r.Uint32()
		s.Len = r.IntN(70000)
		o := &s.Options
		o.WindowScale = int8(r.IntN(16) - 1)
		if r.IntN(2) == 0 {
			o.MSS = uint16(r.IntN(65536))
		}
		o.SACKPermitted = r.IntN(2) == 0
		o.HasTimestamps = r.IntN(2) == 0
		o.TSVal, o.TSEcr = r.Uint32(), r.Uint32()
		o.NSACK = uint8(r.IntN(5))
		for k := range o.SACK {
			o.SACK[k] = SACKBlock{r.Uint32(), r.Uint32()}
		}
		a.Stream = r.IntN(100000)
		a.Dir = Dir(r.IntN(2))
		a.RelSeq, a.RelAck = r.Uint32(), r.Uint32()
		a.Win = r.IntN(1 << 30)
		a.Labels = Labels(r.IntN(1 << numLabels))
		a.Client, a.Server = State(r.IntN(12)), State(r.IntN(12))
		a.Window = WindowKnown(r.IntN(3))
		if r.IntN(4) == 0 {
			s.Problem = Problem(1 + r.IntN(int(numProblems)-1))
			s.HeaderBytes = r.IntN(20)
		}
	}
	return pkts
}

// TestAppendMatchesFmt: the allocation-free formatters write exactly what
// fmt and encoding/json write (fmtLine, fmtComment, record).
func TestAppendMatchesFmt(t *testing.T) {
	start := time.Unix(1700000000, 0)
	for i, p := range randomPackets(20000) {
		if got, want := string(AppendLine(nil, &p, start)), fmtLine(&p, start)+"\n"; got != want {
			t.Fatalf("packet %d: AppendLine\n%q\nLine\n%q", i, got, want)
		}
		if got, want := string(AppendComment(nil, &p)), fmtComment(&p); got != want {
			t.Fatalf("packet %d: AppendComment\n%q\nComment\n%q", i, got, want)
		}
		want, err := newRecord(&p, start).marshalLine()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(AppendJSON(nil, &p, start)); got != string(want) {
			t.Fatalf("packet %d: AppendJSON\n%s\nencoding/json\n%s", i, got, want)
		}
	}
}

func TestAppendAllocates(t *testing.T) {
	start := time.Unix(1700000000, 0)
	pkts := randomPackets(100)
	buf := make([]byte, 0, 1<<16)
	for name, f := range map[string]func([]byte, *Packet, time.Time) []byte{
		"AppendLine": AppendLine, "AppendJSON": AppendJSON,
		"AppendComment": func(b []byte, p *Packet, _ time.Time) []byte { return AppendComment(b, p) },
	} {
		if n := testing.AllocsPerRun(100, func() {
			b := buf[:0]
			for i := range pkts {
				b = f(b, &pkts[i], start)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per run of 100 packets", name, n)
		}
	}
}

// fmtLine is the readable line written with fmt, as tcplab first wrote
// it: the reference AppendLine must equal. It formats p as one line: frame, time since start, direction,
// flags, relative seq and ack, payload length, scaled window, labels and
// the endpoints' states after the segment.
func fmtLine(p *Packet, start time.Time) string {
	s, a := &p.Segment, &p.Annotation
	labels := ""
	if a.Labels != 0 {
		labels = " [" + a.Labels.String() + "]"
	}
	if s.Problem != NoProblem {
		labels += " (" + s.Problem.String() + ")"
	}
	f := fields(p)
	return fmt.Sprintf("%6d %10.6f %3d %s %-11s seq=%-10s ack=%-10s len=%-5s win=%-7s%s  %s/%s",
		s.Frame, s.Time.Sub(start).Seconds(), a.Stream, a.Dir, f.flags, f.seq, f.ack, f.len, f.win,
		labels, a.Client, a.Server)
}

// textFields are the fields of a segment that may be unknown, as the text
// formats write them: "?" for what the snap length cut.
type textFields struct{ flags, seq, ack, len, win string }

func fields(p *Packet) textFields {
	s, a := &p.Segment, &p.Annotation
	known := func(v any, ok bool) string {
		if !ok {
			return "?"
		}
		return fmt.Sprint(v)
	}
	win := fmt.Sprint(a.Win)
	switch a.Window {
	case WindowUnscaled:
		win += "?"
	case WindowUnknown:
		win = "?"
	}
	return textFields{known(s.Flags, s.Captured(14)), known(a.RelSeq, s.Captured(8)), known(a.RelAck, s.Captured(12)),
		known(s.Len, s.Captured(13)), win}
}

// fmtComment is the pcapng comment written with fmt, the reference
// AppendComment must equal: the one-line comment tcplab writes on a packet of a
// pcapng file: stream, direction, flags, relative numbers, labels, states.
func fmtComment(p *Packet) string {
	s, a := &p.Segment, &p.Annotation
	var b strings.Builder
	f := fields(p)
	fmt.Fprintf(&b, "tcplab: stream %d %s %s seq=%s ack=%s len=%s win=%s", a.Stream, a.Dir, f.flags, f.seq, f.ack, f.len, f.win)
	if a.Labels != 0 {
		b.WriteString(" [" + a.Labels.String() + "]")
	}
	if s.Problem != NoProblem {
		b.WriteString(" (" + s.Problem.String() + ")")
	}
	fmt.Fprintf(&b, " client=%s server=%s", a.Client, a.Server)
	return b.String()
}

// record is the JSON form of one annotated TCP segment, as encoding/json
// writes it: the reference AppendJSON must equal. Its field names are an
// interface (README): scripts read them.
type record struct {
	Frame  int     `json:"frame"`
	Time   float64 `json:"time"` // seconds since the first frame
	Stream int     `json:"stream"`
	Dir    string  `json:"dir"`
	Src    string  `json:"src"`
	Dst    string  `json:"dst"`
	// Flags, Seq, Ack, Len and Win are null when the snap length cut
	// them; Problem says so.
	Flags       *string  `json:"flags"`
	Seq         *uint32  `json:"seq"`
	Ack         *uint32  `json:"ack"`
	Len         *int     `json:"len"`
	Win         *int     `json:"win"`
	WinUnscaled bool     `json:"win_unscaled,omitempty"`
	Problem     string   `json:"problem,omitempty"`
	Labels      []string `json:"labels"`
	Client      string   `json:"client_state"`
	Server      string   `json:"server_state"`
	// RawSeq and RawAck are the absolute numbers on the wire.
	RawSeq *uint32 `json:"raw_seq"`
	RawAck *uint32 `json:"raw_ack"`
	// Options holds the TCP options that were present.
	MSS           uint16      `json:"mss,omitempty"`
	WindowScale   *int8       `json:"wscale,omitempty"`
	SACKPermitted bool        `json:"sack_perm,omitempty"`
	SACK          [][2]uint32 `json:"sack,omitempty"`
	TSVal         *uint32     `json:"tsval,omitempty"`
	TSEcr         *uint32     `json:"tsecr,omitempty"`
}

// newRecord returns the JSON record of p; SACK edges are relative to the
// receiver's base, as Wireshark shows them.
func newRecord(p *Packet, start time.Time) record {
	s, a := &p.Segment, &p.Annotation
	r := record{
		Frame: s.Frame, Time: s.Time.Sub(start).Seconds(), Stream: a.Stream, Dir: a.Dir.String(),
		Src: s.Src.String(), Dst: s.Dst.String(),
		WinUnscaled: a.Window == WindowUnscaled, Problem: s.Problem.String(),
		Labels: a.Labels.Append(make([]string, 0, 2)),
		Client: a.Client.String(), Server: a.Server.String(),
		MSS: s.Options.MSS, SACKPermitted: s.Options.SACKPermitted,
	}
	if s.Captured(14) {
		f := s.Flags.String()
		r.Flags = &f
	}
	if s.Captured(8) {
		r.Seq, r.RawSeq = &a.RelSeq, &s.Seq
	}
	if s.Captured(12) {
		r.Ack, r.RawAck = &a.RelAck, &s.Ack
	}
	if s.Captured(13) {
		r.Len = &s.Len
	}
	if a.Window != WindowUnknown {
		r.Win = &a.Win
	}
	if ws := s.Options.WindowScale; ws >= 0 {
		r.WindowScale = &ws
	}
	if s.Options.HasTimestamps {
		r.TSVal, r.TSEcr = &s.Options.TSVal, &s.Options.TSEcr
	}
	base := s.Ack - a.RelAck
	for _, b := range s.Options.SACK[:s.Options.NSACK] {
		r.SACK = append(r.SACK, [2]uint32{b.Left - base, b.Right - base})
	}
	return r
}

// marshalLine returns r as one line of JSON with a trailing newline; "C>S"
// stays "C>S", not the HTML-safe "C\u003eS".
func (r record) marshalLine() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(r)
	return b.Bytes(), err
}

// TestAppendPadSeconds holds appendPadSeconds to appendPadFloat, whose
// digits it writes without the float for whole microseconds: both signs,
// every rounding boundary it could miss, nanoseconds, and beyond its
// limit.
func TestAppendPadSeconds(t *testing.T) {
	ds := []time.Duration{0, time.Microsecond, -time.Microsecond, 999999 * time.Microsecond, time.Second,
		1234567 * time.Microsecond, -1234567 * time.Microsecond, 86399999999 * time.Microsecond,
		999999999999 * time.Microsecond, -999999999999 * time.Microsecond, 1e6 * time.Second, -1e6 * time.Second,
		1500 * time.Nanosecond, 1234567891 * time.Nanosecond, 3e6 * time.Second}
	for us := int64(0); us < 3e6; us += 997 {
		ds = append(ds, time.Duration(us)*time.Microsecond, time.Duration(us)*time.Microsecond+123456789*time.Second)
	}
	for _, d := range ds {
		if got, want := string(appendPadSeconds([]byte("x"), d, 10)), string(appendPadFloat([]byte("x"), d.Seconds(), 10)); got != want {
			t.Errorf("appendPadSeconds(%v) = %q, appendPadFloat %q", d, got, want)
		}
	}
}
