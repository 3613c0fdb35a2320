package capture

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The fuzz targets' seed corpora live in testdata/fuzz/FuzzXxx; the targets
// also add the small capture fixtures and frames built by the test helpers,
// so the seeds follow the fixtures when they are re-made.

// fuzzMaxFrames bounds a walk: a fuzzed file of at most a few MB cannot
// hold more frames than that, so reaching it means Walk is not advancing.
const fuzzMaxFrames = 1 << 20

var errFuzzStop = errors.New("too many frames")

// FuzzReader writes the input to a file and walks it as a capture: Open and
// Walk must not panic, must end, and must report errors a caller can tell
// apart; the text and JSON formats of every segment must work.
func FuzzReader(f *testing.F) {
	for _, pat := range []string{"testdata/*.pcap", "testdata/*.pcapng"} {
		files, _ := filepath.Glob(pat)
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil && len(b) <= 4096 {
				f.Add(b)
			}
		}
	}
	// The small fixtures compressed, each way tcplab reads.
	if b, err := os.ReadFile("testdata/handshake.pcap"); err == nil {
		for _, z := range compressors {
			f.Add(z.pack(f, b))
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.pcap")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := Open(path)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrNotCapture) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadRecord) && !errors.Is(err, ErrDamaged) {
				t.Fatalf("Open: %v is none of ErrEmpty, ErrNotCapture, ErrTruncated, ErrBadRecord, ErrDamaged", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("Open error %q does not name the file", err)
			}
			return
		}
		defer src.Close()
		a := NewAnnotator()
		var start time.Time
		n, err := Walk(src, a, func(p *Packet) error {
			if start.IsZero() {
				start = p.Info.Timestamp
			}
			if p.TCP {
				checkSegment(t, &p.Segment, &p.Annotation)
				_ = Line(p, start)
				_ = Comment(p)
				if b := AppendJSON(nil, p, start); !json.Valid(b) {
					t.Fatalf("frame %d: invalid JSON %s", p.Segment.Frame, b)
				}
			}
			if p.Info.CaptureLength != len(p.Data) {
				t.Fatalf("frame: capture length %d, %d bytes", p.Info.CaptureLength, len(p.Data))
			}
			if p.Segment.Frame > fuzzMaxFrames {
				return errFuzzStop
			}
			return nil
		})
		if errors.Is(err, errFuzzStop) {
			t.Fatalf("%d bytes gave more than %d frames", len(data), fuzzMaxFrames)
		}
		if n.TCP+n.Skipped != n.Frames || n.Truncated > n.TCP {
			t.Fatalf("inconsistent counts %+v", n)
		}
		checkConns(t, a.Conns(), n.TCP)
	})
}

// checkSegment checks what must hold of any annotated segment.
func checkSegment(t *testing.T, s *Segment, a *Annotation) {
	t.Helper()
	fail := func(what string) {
		t.Helper()
		t.Fatalf("frame %d %s %v seq=%d len=%d win=%d [%v]: %s", s.Frame, a.Dir, s.Flags, a.RelSeq, s.Len, s.Window, a.Labels, what)
	}
	l := a.Labels
	switch {
	case !s.Src.IsValid() || !s.Dst.IsValid():
		fail("invalid address")
	case s.Len < 0 || s.Len > 1<<17:
		fail("impossible payload length")
	case s.Options.NSACK > 4 || s.Options.WindowScale < -1 || s.Options.WindowScale > 14:
		fail("impossible options")
	case l>>numLabels != 0:
		fail("unknown label bits")
	case a.Dir > ServerToClient || a.Client > LastACK || a.Server > LastACK:
		fail("invalid direction or state")
	case s.Problem == HeaderCut && l != 0:
		fail("a segment with its header cut must carry no label")
	case s.Problem >= numProblems:
		fail("unknown problem")
	case l.Has(FastRetransmission) && !l.Has(Retransmission), l.Has(SpuriousRetransmission) && !l.Has(Retransmission):
		fail("fast or spurious retransmission without retransmission")
	case l.Has(KeepAlive) && l.Has(Retransmission):
		fail("a keep-alive is no retransmission")
	case l.Has(ZeroWindow) && s.Window != 0, l.Has(ZeroWindowProbeACK) && !l.Has(ZeroWindow):
		fail("zero-window label with an open window")
	case (l.Has(WindowUpdate) || l.Has(DupACK) || l.Has(KeepAliveACK)) && (s.Len != 0 || s.Window == 0):
		fail("window-update, dup-ack or keep-alive-ack on data or a closed window")
	case l.Has(LostSegment) && s.Flags.Has(RST):
		fail("lost-segment on a RST")
	case l.Has(WindowFull) && s.Len == 0:
		fail("window-full without data")
	case s.Problem != HeaderCut && a.Win < int(s.Window):
		fail("scaled window below the raw one")
	}
}

// checkConns checks the connection summaries against the segment count.
func checkConns(t *testing.T, conns []ConnSummary, segments int) {
	t.Helper()
	slices.SortFunc(conns, func(x, y ConnSummary) int { return x.Stream - y.Stream })
	total := 0
	for i, c := range conns {
		total += c.Segments
		if c.Stream != i || c.Segments == 0 || len(c.History) > maxHistory || strings.Trim(c.History, "shadfrtwSHADFRTW") != "" {
			t.Fatalf("connection %d: %s", i, Summary(&c))
		}
		for l, n := range c.Counts {
			if int(n) > c.Segments {
				t.Fatalf("connection %d: %d segments labelled %v of %d", i, n, Label(l), c.Segments)
			}
		}
	}
	if total != segments {
		t.Fatalf("connections hold %d segments, %d were annotated", total, segments)
	}
}

// FuzzDecode decodes a frame of one of the supported link types. Decode must
// not panic, must give the same segment from a fresh decoder as from one
// that decoded another frame before (no state leaks between frames), and
// whatever it returns must be sane.
func FuzzDecode(f *testing.F) {
	for l := link(0); l < numLinks; l++ {
		for _, v6 := range []bool{false, true} {
			if !l.carries(v6) {
				continue
			}
			src, dst := endpoints(v6)
			s := seg{link: l, src: src, dst: dst, flags: PSH | ACK, seq: 1, ack: 2, win: 3, len: 10,
				ip:   ipHeaders{v4Options: !v6, v6Ext: v6},
				opts: []layers.TCPOption{optNOP(), optNOP(), optTS(1, 2), optNOP(), optNOP(), optSACK(1, 2)}}
			frame := s.frame(f)
			f.Add(uint8(l), frame)
			f.Add(uint8(l), frame[:len(frame)-10-12])
		}
	}
	// Frames in every tunnel stack, whole and cut inside the inner TCP
	// header, and frames that try the choices inside the headers or that
	// Decode must refuse.
	for i, e := range testEncaps() {
		v6 := i%2 == 1
		src, dst := endpoints(v6)
		for _, l := range linksFor(f, e, v6, i) {
			frame := seg{link: l, encap: e, src: src, dst: dst, flags: PSH | ACK, seq: 1, ack: 2, win: 3, len: 10,
				opts: []layers.TCPOption{optNOP(), optNOP(), optTS(1, 2)}}.frame(f)
			f.Add(uint8(l), frame)
			f.Add(uint8(l), frame[:len(frame)-10-8])
		}
	}
	for _, c := range append(variantFrames(f), refusedFrames(f)...) {
		f.Add(uint8(c.l), c.data)
	}
	// IP fragments, first, middle and last, and a fragmented tunnel
	// packet: each alone completes nothing.
	for _, v6 := range []bool{false, true} {
		src, dst := endpoints(v6)
		packet := fragSegment(src, dst).frame(f)
		for _, frag := range fragmentPacket(f, packet, 1, cutA, cutB, cutC) {
			f.Add(uint8(linkEthernet), onEthernet(f, frag))
		}
		ip, _, _ := outerIP(!v6, false, layers.IPProtocolIPv4)
		tunnel := serialize(f, ip, gopacket.Payload(fragSegment(client4, server4).frame(f)))
		f.Add(uint8(linkRaw), fragmentPacket(f, tunnel, 2, fragCut{off: 0, n: 48})[0])
	}
	// A frame with other options and IPv6 extension headers, decoded
	// before the input by the used decoder.
	other := seg{link: linkEthernet, src: client6, dst: server6, flags: SYN, seq: 9, win: 9, opts: synOptions(),
		ip: ipHeaders{v6Ext: true}}.frame(f)
	f.Fuzz(func(t *testing.T, lt uint8, data []byte) {
		l := link(lt % uint8(numLinks))
		fresh, err := NewDecoder(l.linkType())
		if err != nil {
			t.Fatal(err)
		}
		var want Segment
		ok := fresh.Decode(data, &want)

		used, _ := NewDecoder(l.linkType())
		var got Segment
		used.Decode(other, &got)
		// The segment is only defined when Decode reports true.
		if ok2 := used.Decode(data, &got); ok2 != ok || ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("a used decoder gives %v %+v, a fresh one %v %+v", ok2, got, ok, want)
		}
		if !ok {
			return
		}
		a := NewAnnotator()
		ann := a.Annotate(&want)
		checkSegment(t, &want, &ann)
	})
}

// fuzzSegments turns data into segments of up to four connections, eight
// bytes a segment:
//
//	0: bit 0 server to client; bits 1-2 the connection; bit 3 new ISN on
//	   a SYN (port reuse); bit 4 window scale option on a SYN; bit 5
//	   truncated (header cut)
//	1: TCP flags
//	2: seq, as a signed step from the sender's next seq
//	3: ack, as a signed step from the other side's next seq
//	4: payload length in 8-byte units (1 means 1 byte)
//	5: raw window in 16-byte units (0 is a zero window)
//	6: time since the previous segment in 100µs units
//	7: MSS and SACK-permitted on a SYN (bit 0); SACK block (bit 1); an
//	   ack number without the ACK flag (bit 2)
func fuzzSegments(data []byte) []Segment {
	var (
		segs []Segment
		next [4][2]uint32
		isn  [4][2]uint32
		at   = testEpoch
	)
	for c := range next {
		for d := range next[c] {
			isn[c][d] = uint32(c*7919+d*104729) * 40503
			next[c][d] = isn[c][d] + 1
		}
	}
	for len(data) >= 8 {
		b := data[:8]
		data = data[8:]
		dir, c := int(b[0]&1), int(b[0]>>1&3)
		s := Segment{
			Frame:   len(segs) + 1,
			Flags:   Flags(b[1]),
			Window:  uint16(b[5]) << 4,
			Len:     int(b[4]) * 8,
			Options: Options{WindowScale: -1},
		}
		if b[4] == 1 {
			s.Len = 1
		}
		gap := time.Duration(b[6]) * 100 * time.Microsecond
		if b[6] == 255 {
			gap = 2 * Linger // long enough to evict what closed before
		}
		at = at.Add(gap)
		s.Time = at
		cl := netip.AddrPortFrom(client4.Addr(), uint16(40000+c))
		s.Src, s.Dst = cl, server4
		if dir == 1 {
			s.Src, s.Dst = server4, cl
		}
		if s.Flags.Has(SYN) {
			if b[0]&8 != 0 {
				isn[c][dir] += 1 << 20
				next[c][dir] = isn[c][dir]
			}
			s.Seq = isn[c][dir]
			if b[0]&16 != 0 {
				s.Options.WindowScale = int8(b[5] % 15)
			}
			if b[7]&1 != 0 {
				s.Options.MSS, s.Options.SACKPermitted = 1460, true
			}
		} else {
			s.Seq = next[c][dir] + uint32(int8(b[2]))
		}
		s.Ack = next[c][1-dir] + uint32(int8(b[3]))
		if !s.Flags.Has(ACK) && b[7]&4 == 0 {
			s.Ack = 0 // as real stacks send it
		}
		if b[7]&2 != 0 {
			s.Options.NSACK, s.Options.SACK[0] = 1, SACKBlock{s.Ack + 100, s.Ack + 200}
		}
		if b[0]&32 != 0 {
			s.Problem, s.HeaderBytes = HeaderCut, int(b[1]%20)
		}
		end := s.Seq + uint32(s.Len)
		if s.Flags&(SYN|FIN) != 0 {
			end++
		}
		if seqGT(end, next[c][dir]) {
			next[c][dir] = end
		}
		segs = append(segs, s)
	}
	return segs
}

// fuzzBytes is the inverse of fuzzSegments for hand-written seeds: one
// 8-byte record a segment.
func fuzzBytes(recs ...[8]byte) []byte {
	var b []byte
	for _, r := range recs {
		b = append(b, r[:]...)
	}
	return b
}

// FuzzAnnotate feeds the Annotator segments made from the input (see
// fuzzSegments): it must not panic, and every annotation and connection
// summary must be sane.
func FuzzAnnotate(f *testing.F) {
	syn, synack, ack, psh, fin, rst := byte(SYN), byte(SYN|ACK), byte(ACK), byte(PSH|ACK), byte(FIN|ACK), byte(RST|ACK)
	hs := [][8]byte{{16, syn, 0, 0, 0, 40, 0, 1}, {17, synack, 0, 0, 0, 40, 10, 1}, {0, ack, 0, 0, 0, 40, 10, 0}}
	f.Add(fuzzBytes(append(hs, [8]byte{0, psh, 0, 0, 10, 40, 1, 0}, [8]byte{1, ack, 0, 0, 0, 40, 1, 0},
		[8]byte{0, fin, 0, 0, 0, 40, 1, 0}, [8]byte{1, fin, 0, 0, 0, 40, 1, 0}, [8]byte{0, ack, 0, 0, 0, 40, 1, 0})...))
	// Retransmissions, dup-acks, a gap, a zero window and probes.
	f.Add(fuzzBytes(append(hs, [8]byte{0, psh, 0, 0, 10, 40, 1, 0}, [8]byte{0, psh, 80, 0, 10, 40, 1, 0},
		[8]byte{1, ack, 0, 0xb0, 0, 40, 1, 2}, [8]byte{1, ack, 0, 0xb0, 0, 40, 1, 2}, [8]byte{1, ack, 0, 0xb0, 0, 40, 1, 2},
		[8]byte{0, psh, 0xb0, 0, 10, 40, 1, 0}, [8]byte{1, ack, 0, 0, 0, 0, 1, 0}, [8]byte{0, ack, 0, 0, 1, 40, 200, 0},
		[8]byte{0, ack, 0xff, 0, 0, 40, 200, 0}, [8]byte{1, ack, 0, 0, 0, 0, 1, 0})...))
	// Two connections, port reuse, a RST, truncated segments.
	f.Add(fuzzBytes(append(hs, [8]byte{2, syn, 0, 0, 0, 40, 0, 0}, [8]byte{3, rst, 0, 0, 0, 0, 1, 0},
		[8]byte{8 | 16, syn, 0, 0, 0, 40, 0, 1}, [8]byte{32, psh, 0, 0, 10, 40, 1, 0}, [8]byte{33, ack, 0, 0, 0, 40, 1, 0})...))
	f.Fuzz(func(t *testing.T, data []byte) {
		a := NewAnnotator()
		// An odd length also evicts closed connections; the summaries
		// of the evicted ones and of the rest must cover every segment.
		var evicted []ConnSummary
		if len(data)%2 == 1 {
			a.EvictClosed(func(s *ConnSummary) { evicted = append(evicted, *s) })
		}
		segs := fuzzSegments(data)
		// Each endpoint's inferred state only moves as RFC 9293's
		// diagram allows: never CLOSE_WAIT -> CLOSING, say.
		type states struct{ client, server State }
		last := map[int]states{}
		for i := range segs {
			ann := a.Annotate(&segs[i])
			checkSegment(t, &segs[i], &ann)
			if was, ok := last[ann.Stream]; ok && (!was.client.Leads(ann.Client) || !was.server.Leads(ann.Server)) {
				t.Fatalf("segment %d (%v %v): states %v/%v after %v/%v, which TCP cannot reach",
					i+1, ann.Dir, segs[i].Flags, ann.Client, ann.Server, was.client, was.server)
			}
			last[ann.Stream] = states{ann.Client, ann.Server}
			if n := a.streams; ann.Stream >= n {
				t.Fatalf("segment %d: stream %d of %d", i+1, ann.Stream, n)
			}
			if c := a.conns[keyOf(segs[i].Src, segs[i].Dst)]; c.stream != ann.Stream || (segs[i].Src == c.client) != (ann.Dir == ClientToServer) {
				t.Fatalf("segment %d: stream %d direction %v, connection %d client %v, source %v", i+1, ann.Stream, ann.Dir, c.stream, c.client, segs[i].Src)
			}
		}
		all := append(slices.Clip(evicted), a.Conns()...) // checkConns sorts all
		checkConns(t, all, len(segs))
		// An evicted connection is closed, or a later one took its
		// 4-tuple (a new SYN retires it).
		for _, s := range evicted {
			closed := (s.ClientState == Closed || s.ClientState == TimeWait) && (s.ServerState == Closed || s.ServerState == TimeWait)
			retired := slices.ContainsFunc(all, func(o ConnSummary) bool {
				return o.Stream > s.Stream && keyOf(o.Client, o.Server) == keyOf(s.Client, s.Server)
			})
			if !closed && !retired {
				t.Fatalf("evicted a connection that is neither closed nor replaced: %s", Summary(&s))
			}
		}
	})
}

// TestFuzzSegmentsRoundTrip checks the fuzz encoding itself on a seed: a
// handshake decodes to SYN, SYN/ACK, ACK with the expected relative
// numbers, so the fuzzer explores real conversations.
func TestFuzzSegmentsRoundTrip(t *testing.T) {
	segs := fuzzSegments(fuzzBytes([8]byte{16, byte(SYN), 0, 0, 0, 40, 0, 1}, [8]byte{17, byte(SYN | ACK), 0, 0, 0, 40, 10, 1},
		[8]byte{0, byte(ACK), 0, 0, 0, 40, 10, 0}, [8]byte{0, byte(PSH | ACK), 0, 0, 10, 40, 1, 0}))
	a := NewAnnotator()
	for i, want := range []struct {
		dir      Dir
		seq, ack uint32
		state    State
	}{{cs, 0, 0, Listen}, {sc, 0, 1, SynReceived}, {cs, 1, 1, Established}, {cs, 1, 1, Established}} {
		ann := a.Annotate(&segs[i])
		if ann.Dir != want.dir || ann.RelSeq != want.seq || ann.RelAck != want.ack || ann.Server != want.state || ann.Labels != 0 {
			t.Errorf("segment %d: %+v, want %v seq=%d ack=%d server %v, no labels", i+1, ann, want.dir, want.seq, want.ack, want.state)
		}
	}
}

// fuzzFrames splits data into frames for FuzzReassemble: a byte of capture
// time since the previous frame (in seconds), a 2-byte big-endian length,
// then that many bytes (fewer at the end of the data).
func fuzzFrames(data []byte) []capturedFrame {
	var out []capturedFrame
	at := testEpoch
	for len(data) >= 3 {
		at = at.Add(time.Duration(data[0]) * time.Second)
		n := min(int(data[1])<<8|int(data[2]), len(data)-3)
		out = append(out, captured(data[3:3+n], at, 0))
		data = data[3+n:]
	}
	return out
}

// fuzzFrameBytes is the inverse of fuzzFrames, every frame 1 s apart.
func fuzzFrameBytes(frames ...[]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, 1, byte(len(f)>>8), byte(len(f)))
		b = append(b, f...)
	}
	return b
}

// FuzzReassemble decodes a sequence of raw IP frames (see fuzzFrames) with
// one Decoder, so that fragments meet: it must not panic, must keep the
// reassembler within its bounds, and every segment must be sane.
func FuzzReassemble(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		src, dst := endpoints(v6)
		packet := fragSegment(src, dst).frame(f)
		for _, cuts := range [][]fragCut{
			{cutA, cutB, cutC}, {cutC, cutB, cutA}, {cutA, cutAAck, cutBC}, {cutAck, cutA, cutBC},
			{cutA, cutA, cutPay, cutBC}, {cutA, cutC},
		} {
			f.Add(fuzzFrameBytes(fragmentPacket(f, packet, 3, cuts...)...))
		}
		// A tunnel packet fragmented, carrying fragments itself.
		var frames [][]byte
		for i, inner := range fragmentPacket(f, packet, 4, cutA, cutBC) {
			ip, _, _ := outerIP(!v6, false, layers.IPProtocolIPv4)
			if v6 {
				ip, _, _ = outerIP(!v6, false, layers.IPProtocolIPv6)
			}
			tunnel := serialize(f, ip, gopacket.Payload(inner))
			frames = append(frames, fragmentPacket(f, tunnel, uint32(10+i), fragCut{off: 0, n: 40}, fragCut{off: 40, n: -1})...)
		}
		f.Add(fuzzFrameBytes(frames...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := mustDecoder(t, linkRaw)
		a := NewAnnotator()
		for i, fr := range fuzzFrames(data) {
			var s Segment
			ok := d.DecodeFrame(fr.data, fr.ci, &s)
			checkBounds(t, &d.frags)
			if d.frags.lent > maxHeaders {
				t.Fatalf("frame %d: %d datagram buffers in use", i+1, d.frags.lent)
			}
			if !ok {
				continue
			}
			s.Frame, s.Time = i+1, fr.ci.Timestamp
			ann := a.Annotate(&s)
			checkSegment(t, &s, &ann)
		}
	})
}
