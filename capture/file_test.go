package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// fixture returns the path of testdata/name, or, while that file is not
// there yet, of an equivalent file made by gen in a temporary directory.
func fixture(t *testing.T, name string, gen func(t *testing.T) []byte) string {
	t.Helper()
	path := filepath.Join("testdata", name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	path = filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, gen(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pcapBytes returns the frames as a little-endian microsecond pcap file.
func pcapBytes(t *testing.T, lt layers.LinkType, frames []capturedFrame) []byte {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(262144, lt); err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := w.WritePacket(f.ci, f.data); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// smallConv is a short conversation: handshake, request, response, close.
func smallConv() conv {
	return conv{steps: append(handshake(),
		step{cs, PSH | ACK, 1, 1, 13, 502, nil, 0},
		step{sc, ACK, 1, 14, 0, 509, nil, 0},
		step{sc, PSH | ACK, 1, 14, 5, 509, nil, 0},
		step{cs, ACK, 14, 6, 0, 502, nil, 0},
		step{cs, FIN | ACK, 14, 6, 0, 502, nil, 0},
		step{sc, FIN | ACK, 6, 15, 0, 509, nil, 0},
		step{cs, ACK, 15, 7, 0, 502, nil, 0},
	)}
}

func genHandshake(t *testing.T) []byte {
	return pcapBytes(t, layers.LinkTypeEthernet, smallConv().frames(t, 0))
}

// walkFile opens path and walks it to the end.
func walkFile(t *testing.T, path string) ([]annotated, Counts, error) {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer f.Close()
	var out []annotated
	n, err := Walk(f, NewAnnotator(), func(p *Packet) error {
		if p.TCP {
			out = append(out, annotated{p.Segment, p.Annotation})
		}
		return nil
	})
	return out, n, err
}

// TestOpenErrors checks the sentinel errors, and that each names the file.
func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		gen  func(t *testing.T) []byte
		want error
	}{
		{"empty.pcap", func(*testing.T) []byte { return nil }, ErrEmpty},
		{"notcapture.pcap", func(*testing.T) []byte { return []byte("This is not a capture file.\n") }, ErrNotCapture},
		{"truncated-header.pcap", func(t *testing.T) []byte { return genHandshake(t)[:10] }, ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := fixture(t, tc.name, tc.gen)
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatalf("Open(%s) succeeded, want %v", path, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Open(%s) = %v, want an error wrapping %v", path, err, tc.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
		})
	}
}

// TestOpenShortHeaders cuts valid files at every length inside their
// headers: each is ErrTruncated (or ErrEmpty at 0), never a panic.
func TestOpenShortHeaders(t *testing.T) {
	dir := t.TempDir()
	pcap := genHandshake(t)
	var ng bytes.Buffer
	w, err := NewWriter(&ng, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"pcap": pcap[:24], "pcapng": ng.Bytes()} {
		for n := 0; n < len(data); n++ {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			want := ErrTruncated
			if n == 0 {
				want = ErrEmpty
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Errorf("%s cut to %d bytes: Open succeeded, want %v", name, n, want)
				continue
			}
			if !errors.Is(err, want) {
				t.Errorf("%s cut to %d bytes: %v, want %v", name, n, err, want)
			}
		}
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nothere.pcap"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestTruncatedRecord reads a file cut inside its third record: the two
// whole frames before it are walked, then the error wraps ErrTruncated.
func TestTruncatedRecord(t *testing.T) {
	path := fixture(t, "truncated-record.pcap", func(t *testing.T) []byte {
		b := genHandshake(t)
		off := 24
		for range 2 {
			off += 16 + int(binary.LittleEndian.Uint32(b[off+8:]))
		}
		return b[:off+16+20]
	})
	got, n, err := walkFile(t, path)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("Walk error %v, want ErrTruncated", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	if n.Frames != 2 || len(got) != 2 {
		t.Errorf("walked %d frames (%d TCP) before the error, want 2", n.Frames, len(got))
	}
}

// TestUnsupportedLinkType: the file opens, and Walk refuses its link type.
func TestUnsupportedLinkType(t *testing.T) {
	path := fixture(t, "unsupported-linktype.pcap", func(t *testing.T) []byte {
		fr := smallConv().frames(t, 0)[:1]
		return pcapBytes(t, 147, fr)
	})
	f, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	if f.LinkType() != 147 {
		t.Errorf("LinkType %d, want 147 (USER0)", f.LinkType())
	}
	_, err = Walk(f, NewAnnotator(), func(*Packet) error { return nil })
	if !errors.Is(err, ErrUnsupportedLinkType) {
		t.Errorf("Walk error %v, want ErrUnsupportedLinkType", err)
	}
}

// TestSnaplenCut reads a capture whose snap length cut every TCP header:
// every segment is there, counted, marked header-cut and not labelled.
func TestSnaplenCut(t *testing.T) {
	path := fixture(t, "snaplen-cut.pcap", func(t *testing.T) []byte {
		return pcapBytes(t, layers.LinkTypeEthernet, smallConv().frames(t, 40))
	})
	got, n, err := walkFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if n.TCP == 0 || n.Truncated != n.TCP || n.Skipped != 0 {
		t.Errorf("counts %+v: want every frame a truncated TCP segment", n)
	}
	for _, g := range got {
		if g.seg.Problem != HeaderCut || g.seg.HeaderBytes != 6 || g.ann.Labels != 0 || g.ann.Window != WindowUnknown {
			t.Errorf("frame %d: problem %q after %d bytes, labels [%v], window %d; want header-cut after 6, none, unknown",
				g.seg.Frame, g.seg.Problem, g.seg.HeaderBytes, g.ann.Labels, g.ann.Window)
		}
		if g.seg.Src.Port() == 0 || g.seg.Dst.Port() == 0 {
			t.Errorf("frame %d: ports %v -> %v, want both (the cut keeps 6 bytes of TCP)", g.seg.Frame, g.seg.Src, g.seg.Dst)
		}
	}
}

// TestNanosecondTimestamps writes a nanosecond pcap and reads the
// timestamps back to the nanosecond; the nano.pcap fixture must carry
// sub-microsecond digits too.
func TestNanosecondTimestamps(t *testing.T) {
	c := smallConv()
	c.start = testEpoch.Add(123456789 * time.Nanosecond)
	for i := range c.steps {
		if c.steps[i].at != 0 {
			c.steps[i].at += 7 * time.Nanosecond
		}
	}
	frames := c.frames(t, 0)
	path := filepath.Join(t.TempDir(), "nano.pcap")
	writePcap(t, path, layers.LinkTypeEthernet, true, frames)
	got, _, err := walkFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		if !g.seg.Time.Equal(frames[i].ci.Timestamp) {
			t.Errorf("frame %d: time %v, want %v", i+1, g.seg.Time.Format(time.RFC3339Nano), frames[i].ci.Timestamp.Format(time.RFC3339Nano))
		}
	}

	if _, err := os.Stat("testdata/nano.pcap"); err != nil {
		t.Fatalf("testdata/nano.pcap: %v; the fixtures are in the repository (go run ./capture/testdata/mkfixtures makes them)", err)
	}
	got, _, err = walkFile(t, "testdata/nano.pcap")
	if err != nil {
		t.Fatal(err)
	}
	sub := 0
	for _, g := range got {
		if g.seg.Time.Nanosecond()%1000 != 0 {
			sub++
		}
	}
	if sub == 0 {
		t.Errorf("nano.pcap: no timestamp of %d has sub-microsecond digits", len(got))
	}
}

// bigEndianPcap writes frames as a pcap file from a big-endian host: every
// header field, the magic number included, in big-endian order.
func bigEndianPcap(lt layers.LinkType, nanos bool, frames []capturedFrame) []byte {
	be := binary.BigEndian
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	b := be.AppendUint32(nil, magic)
	b = be.AppendUint16(b, 2)
	b = be.AppendUint16(b, 4)
	b = be.AppendUint32(b, 0) // thiszone
	b = be.AppendUint32(b, 0) // sigfigs
	b = be.AppendUint32(b, 262144)
	b = be.AppendUint32(b, uint32(lt))
	for _, f := range frames {
		frac := f.ci.Timestamp.Nanosecond() / 1000
		if nanos {
			frac = f.ci.Timestamp.Nanosecond()
		}
		b = be.AppendUint32(b, uint32(f.ci.Timestamp.Unix()))
		b = be.AppendUint32(b, uint32(frac))
		b = be.AppendUint32(b, uint32(f.ci.CaptureLength))
		b = be.AppendUint32(b, uint32(f.ci.Length))
		b = append(b, f.data...)
	}
	return b
}

// TestBigEndianPcap reads pcap files written big-endian, micro- and
// nanosecond, and checks them against the same frames read from the usual
// little-endian file.
func TestBigEndianPcap(t *testing.T) {
	c := smallConv()
	c.start = testEpoch.Add(987654321 * time.Nanosecond)
	frames := c.frames(t, 0)
	dir := t.TempDir()
	le := filepath.Join(dir, "le.pcap")
	writePcap(t, le, layers.LinkTypeEthernet, true, frames)
	want, _, err := walkFile(t, le)
	if err != nil {
		t.Fatal(err)
	}
	for _, nanos := range []bool{false, true} {
		path := filepath.Join(dir, "be.pcap")
		if err := os.WriteFile(path, bigEndianPcap(layers.LinkTypeEthernet, nanos, frames), 0o644); err != nil {
			t.Fatal(err)
		}
		got, _, err := walkFile(t, path)
		if err != nil {
			t.Fatalf("nanos=%v: %v", nanos, err)
		}
		if len(got) != len(want) {
			t.Fatalf("nanos=%v: %d segments, want %d", nanos, len(got), len(want))
		}
		for i := range got {
			w := want[i]
			if !nanos {
				w.seg.Time = w.seg.Time.Truncate(time.Microsecond)
			}
			if diff := segmentDiff(got[i].seg, w.seg); diff != "" || got[i].ann != w.ann {
				t.Errorf("nanos=%v frame %d differs:%s\n  annotation %+v, want %+v", nanos, i+1, diff, got[i].ann, w.ann)
			}
		}
	}
}

// TestPcapng reads a pcapng file written with gopacket's NgWriter and the
// handshake.pcapng fixture, and checks each against its pcap twin.
func TestPcapng(t *testing.T) {
	frames := smallConv().frames(t, 0)
	dir := t.TempDir()
	var ng bytes.Buffer
	w, err := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		ci := f.ci
		ci.InterfaceIndex = 0
		if err := w.WritePacket(ci, f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	ngPath, pcapPath := filepath.Join(dir, "x.pcapng"), filepath.Join(dir, "x.pcap")
	if err := os.WriteFile(ngPath, ng.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	writePcap(t, pcapPath, layers.LinkTypeEthernet, false, frames)
	pairs := [][2]string{{ngPath, pcapPath}}
	if _, err := os.Stat("testdata/handshake.pcapng"); err == nil {
		pairs = append(pairs, [2]string{"testdata/handshake.pcapng", "testdata/handshake.pcap"})
	}
	for _, p := range pairs {
		got, _, err := walkFile(t, p[0])
		if err != nil {
			t.Fatalf("%s: %v", p[0], err)
		}
		want, _, err := walkFile(t, p[1])
		if err != nil {
			t.Fatalf("%s: %v", p[1], err)
		}
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%s: %d segments, %s: %d", p[0], len(got), p[1], len(want))
		}
		for i := range got {
			if diff := segmentDiff(got[i].seg, want[i].seg); diff != "" || got[i].ann != want[i].ann {
				t.Errorf("%s frame %d differs from %s:%s", p[0], i+1, p[1], diff)
			}
		}
	}
}

// TestFixtureVariants checks that the fixtures made from one conversation
// in different link types and file formats give the same segments and
// annotations: smalldata.pcap (Ethernet), raw, null, big-endian, nano,
// SLL and SLL2.
func TestFixtureVariants(t *testing.T) {
	base := "testdata/smalldata.pcap"
	if _, err := os.Stat(base); err != nil {
		t.Fatalf("%v; the fixtures are in the repository (go run ./capture/testdata/mkfixtures makes them)", err)
	}
	want, _, err := walkFile(t, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"raw.pcap", "null.pcap", "bigendian.pcap", "nano.pcap", "sll.pcap", "sll2.pcap"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("%v; the fixtures are in the repository (go run ./capture/testdata/mkfixtures makes them)", err)
			}
			got, _, err := walkFile(t, path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d segments, want %d", len(got), len(want))
			}
			for i := range got {
				g, w := got[i].seg, want[i].seg
				g.Time, w.Time = time.Time{}, time.Time{} // separate tcpdump runs
				if diff := segmentDiff(g, w); diff != "" {
					t.Errorf("frame %d differs:%s", i+1, diff)
				}
				ga, wa := got[i].ann, want[i].ann
				ga.Labels, wa.Labels = 0, 0 // timing-dependent labels may differ
				if ga != wa {
					t.Errorf("frame %d: annotation %+v, want %+v", i+1, got[i].ann, want[i].ann)
				}
			}
		})
	}
}

// TestOpenLinkTypes writes a conversation in every link type, IPv4 and
// IPv6, opens the file and checks that File reports the link type and Walk
// finds every segment.
func TestOpenLinkTypes(t *testing.T) {
	for l := link(0); l < numLinks; l++ {
		for _, v6 := range []bool{false, true} {
			if !l.carries(v6) {
				continue
			}
			c := smallConv()
			c.link = l
			c.client, c.server = endpoints(v6)
			path := filepath.Join(t.TempDir(), "x.pcap")
			writePcap(t, path, l.linkType(), false, c.frames(t, 0))
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if f.LinkType() != l.linkType() {
				t.Errorf("%v: LinkType %v, want %v", l, f.LinkType(), l.linkType())
			}
			f.Close()
			got, n, err := walkFile(t, path)
			if err != nil || len(got) != len(c.steps) || n.Skipped != 0 {
				t.Errorf("%v v6=%v: %d segments, counts %+v, err %v; want %d segments", l, v6, len(got), n, err, len(c.steps))
			}
		}
	}
}

// TestReadPacketDataEOF checks that a file ends with io.EOF and that a
// record's bytes are the frame written.
func TestReadPacketDataEOF(t *testing.T) {
	frames := smallConv().frames(t, 0)
	path := filepath.Join(t.TempDir(), "x.pcap")
	writePcap(t, path, layers.LinkTypeEthernet, false, frames)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, want := range frames {
		data, ci, err := f.ReadPacketData()
		if err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
		if !bytes.Equal(data, want.data) || ci.CaptureLength != want.ci.CaptureLength || ci.Length != want.ci.Length {
			t.Errorf("frame %d: read %d bytes (%+v), want %d", i+1, len(data), ci, len(want.data))
		}
	}
	if _, _, err := f.ReadPacketData(); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}
