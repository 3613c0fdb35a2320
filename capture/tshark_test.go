package capture

import (
	"errors"
	"io"
	"path/filepath"
	"testing"
)

// tsharkFields are the tcp.analysis flags tshark prints, in the order of
// the label each one means.
var tsharkFields = []struct {
	field string
	label Label
}{
	{"tcp.analysis.keep_alive", KeepAlive},
	{"tcp.analysis.keep_alive_ack", KeepAliveACK},
	{"tcp.analysis.window_update", WindowUpdate},
	{"tcp.analysis.zero_window", ZeroWindow},
	{"tcp.analysis.zero_window_probe", ZeroWindowProbe},
	{"tcp.analysis.zero_window_probe_ack", ZeroWindowProbeACK},
	{"tcp.analysis.window_full", WindowFull},
	{"tcp.analysis.duplicate_ack", DupACK},
	{"tcp.analysis.retransmission", Retransmission},
	{"tcp.analysis.fast_retransmission", FastRetransmission},
	{"tcp.analysis.spurious_retransmission", SpuriousRetransmission},
	{"tcp.analysis.out_of_order", OutOfOrder},
	{"tcp.analysis.lost_segment", LostSegment},
	{"tcp.analysis.ack_lost_segment", ACKLostSegment},
}

// tsharkLabels runs tshark's two-pass TCP analysis on path and returns the
// labels it sets on each TCP frame, by frame number.
func tsharkLabels(t *testing.T, path string) map[int]Labels {
	t.Helper()
	got := make(map[int]Labels)
	for frame, v := range tsharkView(t, path) {
		got[frame] = v.labels
	}
	return got
}

// tcplabLabels annotates path and returns each TCP frame's labels.
func tcplabLabels(t *testing.T, path string) map[int]Labels {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make(map[int]Labels)
	_, err = Walk(f, NewAnnotator(), func(p *Packet) error {
		if p.TCP {
			got[p.Segment.Frame] = p.Annotation.Labels.Without(Truncated)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// asWireshark maps tcplab's labels to what Wireshark 4.0 says of the same
// segment, undoing the deliberate difference: Linux's empty zero-window
// probe is a keep-alive to Wireshark, and its answer only a zero-window.
func asWireshark(l Labels, seg int) Labels {
	if l.Has(ZeroWindowProbe) && seg == 0 {
		l = l.Without(ZeroWindowProbe).With(KeepAlive)
	}
	if l.Has(ZeroWindowProbeACK) {
		l = l.Without(ZeroWindowProbeACK)
	}
	return l
}

// captures lists the capture fixtures that hold TCP traffic.
func captures(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"testdata/*.pcap", "testdata/*.pcapng"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	var out []string
	for _, f := range files {
		src, err := Open(f)
		if err != nil {
			continue // the error fixtures
		}
		// Files that cannot be read to the end are error fixtures too.
		if _, err := Walk(src, NewAnnotator(), func(*Packet) error { return nil }); err == nil {
			out = append(out, f)
		}
		src.Close()
	}
	if len(out) < 7 {
		t.Fatalf("found %d capture fixtures in testdata, want at least 7", len(out))
	}
	return out
}

// TestLabelsMatchWireshark checks every TCP frame of every fixture: tcplab's
// labels equal Wireshark's tcp.analysis flags, apart from the deliberate
// difference for Linux zero-window probes.
func TestLabelsMatchWireshark(t *testing.T) {
	for _, path := range captures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ws := tsharkLabels(t, path)
			ours := tcplabLabels(t, path)
			lens := segmentLens(t, path)
			if len(ws) != len(ours) {
				t.Errorf("tshark saw %d TCP frames, tcplab %d", len(ws), len(ours))
			}
			for frame, want := range ws {
				got, ok := ours[frame]
				if !ok {
					t.Errorf("frame %d: tcplab did not see a TCP segment", frame)
					continue
				}
				if asWireshark(got, lens[frame]) != want {
					t.Errorf("frame %d: tcplab [%v] (as Wireshark: [%v]), tshark [%v]", frame, got, asWireshark(got, lens[frame]), want)
				}
			}
		})
	}
}

// segmentLens returns each TCP frame's payload length.
func segmentLens(t *testing.T, path string) map[int]int {
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lens := make(map[int]int)
	if _, err := Walk(f, NewAnnotator(), func(p *Packet) error {
		lens[p.Segment.Frame] = p.Segment.Len
		return nil
	}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return lens
}
