package capture

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/internal/testenv"
)

// tsharkStreams returns tshark's tcp.stream of every frame of path in
// which it found TCP, by frame number.
func tsharkStreams(t *testing.T, path string) map[int]int {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-r", path, "-2", "-Y", "tcp", "-T", "fields",
		"-E", "occurrence=f", "-e", "frame.number", "-e", "tcp.stream").Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", path, err)
	}
	streams := map[int]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			frame, _ := strconv.Atoi(f[0])
			streams[frame], _ = strconv.Atoi(f[1])
		}
	}
	return streams
}

// TestDifferences shows, with tshark, each difference of DIFFERENCES.md
// that the label and fixture comparisons do not already pin: tshark does
// what the file says it does, and tcplab does what the file says instead.
func TestDifferences(t *testing.T) {
	testenv.Tool(t, "tshark")
	tcp4 := seg{link: linkRaw, src: client4, dst: server4, flags: PSH | ACK, seq: 1, ack: 1, win: 1, len: 100}.frame(t)
	t.Run("icmp-quoted-tcp", func(t *testing.T) {
		frame := serialize(t, append([]gopacket.SerializableLayer{ethernet(nextIPv4)}, icmpError(t, tcp4, false)...)...)
		path := filepath.Join(t.TempDir(), "icmp.pcap")
		writePcap(t, path, linkEthernet.linkType(), false, []capturedFrame{captured(frame, testEpoch, 0)})
		if _, ok := tsharkStreams(t, path)[1]; !ok {
			t.Error("tshark gives TCP quoted in an ICMP error no tcp.stream; DIFFERENCES.md is out of date")
		}
		if got, _ := walkFrames(t, linkEthernet.linkType(), []capturedFrame{captured(frame, testEpoch, 0)}); len(got) != 0 {
			t.Errorf("tcplab annotated TCP quoted in an ICMP error: %+v", got[0].seg)
		}
	})
	t.Run("nesting-beyond-32", func(t *testing.T) {
		nested := tcp4
		for range maxHeaders {
			nested = serialize(t, ipLayersOf(t, layers.IPProtocolIPv4), gopacket.Payload(nested))
		}
		frames := []capturedFrame{captured(nested, testEpoch, 0)}
		path := filepath.Join(t.TempDir(), "nested.pcap")
		writePcap(t, path, linkRaw.linkType(), false, frames)
		if _, ok := tsharkStreams(t, path)[1]; !ok {
			t.Error("tshark finds no TCP 33 headers deep; DIFFERENCES.md is out of date")
		}
		if got, _ := walkFrames(t, linkRaw.linkType(), frames); len(got) != 0 {
			t.Error("tcplab decoded more than maxHeaders headers")
		}
	})
	t.Run("ipcomp-beyond-65535", func(t *testing.T) {
		// An IPComp payload holding an IPv4 packet of 60040 bytes, then
		// junk: 5000 bytes of it inflate to less than 65535 bytes in all,
		// 10000 to more.
		inner := seg{link: linkRaw, src: client4, dst: server4, flags: PSH | ACK, seq: 1, ack: 1, win: 1, len: 60000}.frame(t)
		var frames []capturedFrame
		for i, junk := range []int{5000, 10000} {
			ip, _ := ipLayers(client4.Addr(), server4.Addr(), ipProtocolIPComp, ipHeaders{})
			body := deflate(t, slices.Concat(inner, payloadBytes(junk)))
			frame := serialize(t, ethernet(nextIPv4), ip[0], rawBytes{4, 0, 0, 2}, gopacket.Payload(body))
			frames = append(frames, captured(frame, testEpoch.Add(time.Duration(i)*time.Second), 0))
		}
		path := filepath.Join(t.TempDir(), "ipcomp.pcap")
		writePcap(t, path, linkEthernet.linkType(), false, frames)
		if ws := tsharkLens(t, path); ws[1] != 60000 || ws[2] != 60000 {
			t.Errorf("tshark finds segments %v, want 60000 bytes in frames 1 and 2; DIFFERENCES.md is out of date", ws)
		}
		got, _ := walkFrames(t, linkEthernet.linkType(), frames)
		if len(got) != 1 || got[0].seg.Frame != 1 || got[0].seg.Len != 60000 {
			t.Errorf("tcplab finds %+v, want a segment of 60000 bytes in frame 1 only", got)
		}
	})
	t.Run("amsdu-several-packets", func(t *testing.T) {
		// An 802.11 A-MSDU of two subframes, each a segment.
		first := seg{link: linkRaw, src: client4, dst: server4, flags: PSH | ACK, seq: 1, ack: 1, win: 1, len: 100}.frame(t)
		second := seg{link: linkRaw, src: client4, dst: server4, flags: PSH | ACK, seq: 101, ack: 1, win: 1, len: 100}.frame(t)
		qos := wlanData(nextIPv4, false, wlanQoS)
		sub := func(packet []byte) []byte {
			body := slices.Concat(qos[26:], packet) // LLC/SNAP, then the packet
			b := slices.Concat(mac2, mac1, binary.BigEndian.AppendUint16(nil, uint16(len(body))), body)
			for len(b)%4 != 0 {
				b = append(b, 0)
			}
			return b
		}
		frame := slices.Concat(qos[:24], []byte{0x80, 0}, sub(first), sub(second))
		frames := []capturedFrame{captured(frame, testEpoch, 0)}
		path := filepath.Join(t.TempDir(), "amsdu.pcap")
		writePcap(t, path, 105, false, frames)
		out, err := exec.Command(testenv.Tool(t, "tshark"), "-r", path, "-T", "fields", "-e", "tcp.seq_raw").Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != "1,101" {
			t.Errorf("tshark finds segments of seq %q in the A-MSDU, want 1,101; DIFFERENCES.md is out of date", got)
		}
		got, _ := walkFrames(t, 105, frames)
		if len(got) != 1 || got[0].seg.Seq != 1 {
			t.Errorf("tcplab finds %+v, want one segment, of seq 1", got)
		}
	})
	t.Run("midstream-completeness", func(t *testing.T) {
		c := conv{steps: []step{{cs, PSH | ACK, 1, 1, 100, 502, nil, 0}, {cs, RST, 101, 0, 0, 0, nil, 0}}}
		frames := c.frames(t, 0)
		path := filepath.Join(t.TempDir(), "mid.pcap")
		writePcap(t, path, c.link.linkType(), false, frames)
		if w := tsharkConns(t, path, map[int]Dir{})[0]; w.completeness&int(CompleteACK) != 0 {
			t.Errorf("tshark's completeness %d counts the ACK; DIFFERENCES.md is out of date", w.completeness)
		}
		_, a := walkFrames(t, c.link.linkType(), frames)
		if got, want := a.Conns()[0].Completeness, CompleteACK|CompleteData|CompleteRST; got != want {
			t.Errorf("completeness %s, want %s", got, want)
		}
	})
	t.Run("late-segment-after-eviction", func(t *testing.T) {
		// The server's FIN again, Linger and TombLinger after the
		// connection closed: forgotten, and no longer known in brief.
		c := conv{steps: append(handshake(),
			step{cs, FIN | ACK, 1, 1, 0, 502, nil, 0},
			step{sc, FIN | ACK, 1, 2, 0, 509, nil, 0},
			step{cs, ACK, 2, 2, 0, 502, nil, 0},
			step{sc, ACK, 2, 2, 0, 509, nil, Linger + time.Second},
			step{sc, FIN | ACK, 1, 2, 0, 509, nil, Linger + TombLinger + 2*time.Second},
		)}
		frames := c.frames(t, 0)
		path := filepath.Join(t.TempDir(), "late.pcap")
		writePcap(t, path, c.link.linkType(), false, frames)
		if s := tsharkStreams(t, path); s[8] != 0 {
			t.Errorf("tshark puts the late FIN in stream %d, want 0 (it keeps every connection)", s[8])
		}
		for _, evict := range []bool{false, true} {
			a := NewAnnotator()
			if evict {
				a.EvictClosed(func(*ConnSummary) {})
			}
			var last Annotation
			if _, err := Walk(&frameSource{lt: c.link.linkType(), frames: frames}, a, func(p *Packet) error {
				last = p.Annotation
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			want := 0
			if evict {
				want = 1
			}
			if last.Stream != want {
				t.Errorf("evicting %v: the late FIN is in stream %d, want %d", evict, last.Stream, want)
			}
		}
	})
}

// TestDifferencesDocumented: every test DIFFERENCES.md names exists, so
// each difference it lists is pinned by a test.
func TestDifferencesDocumented(t *testing.T) {
	doc, err := os.ReadFile("DIFFERENCES.md")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	files, _ := filepath.Glob("*_test.go")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	names := regexp.MustCompile("`(Test[A-Za-z]+)(/[^`]*)?`").FindAllStringSubmatch(string(doc), -1)
	if len(names) < 8 {
		t.Fatalf("DIFFERENCES.md names %d tests, want one or more per difference", len(names))
	}
	for _, n := range names {
		if !strings.Contains(src.String(), "func "+n[1]+"(t *testing.T)") {
			t.Errorf("DIFFERENCES.md names %s, which is not a test of this package", n[1])
		}
		if sub := strings.TrimPrefix(n[2], "/"); sub != "" && !strings.Contains(src.String(), strconv.Quote(sub)) {
			t.Errorf("DIFFERENCES.md names %s%s, but no test case is called %q", n[1], n[2], sub)
		}
	}
}
