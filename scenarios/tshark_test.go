package scenarios

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
)

// tsharkReading is what one run of tshark says of a live scenario's
// capture: each frame's first comment (checkArtifacts), and its two-pass
// analysis of each TCP frame (sameAsWireshark). tshark takes longer to
// start than to read a scenario's capture, so one run serves both.
type tsharkReading struct {
	path   string
	frames [][]string // one row of readingFields a frame
	labels []capture.Label
}

// readingFields are the fields of a tsharkReading's rows: the frame's
// number and first comment, whether it holds TCP, then relative seq and
// ack and the tcp.analysis field of each of labels.
func readingFields(labels []capture.Label) []string {
	fields := []string{"frame.number", "frame.comment", "tcp", "tcp.seq", "tcp.ack"}
	for _, l := range labels {
		fields = append(fields, l.WiresharkField())
	}
	return fields
}

// readWithTshark runs tshark's two-pass analysis on the capture at path,
// once, for checkArtifacts and sameAsWireshark.
func readWithTshark(t *testing.T, path string) *tsharkReading {
	t.Helper()
	var labels []capture.Label
	for l := capture.Label(0); l.WiresharkField() != ""; l++ {
		labels = append(labels, l)
	}
	fields := readingFields(labels)
	args := []string{"-r", path, "-2", "-T", "fields", "-E", "occurrence=f"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(testenv.Tool(t, "tshark"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v: %s", path, err, stderr.String())
	}
	r := &tsharkReading{path: path, labels: labels}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != len(fields) {
			t.Fatalf("tshark line %q: %d columns, want %d", sc.Text(), len(cols), len(fields))
		}
		r.frames = append(r.frames, cols)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("tshark %s: %v", path, err)
	}
	return r
}

// sameAsWireshark checks tshark's two-pass TCP analysis of a live
// scenario's capture (ws, of readWithTshark): every TCP frame has
// Wireshark's labels and relative numbers, but for the deliberate
// difference that Labels.AsWireshark undoes.
func sameAsWireshark(t *testing.T, ws *tsharkReading) {
	t.Helper()
	path, labels := ws.path, ws.labels
	type view struct {
		seq, ack uint64
		labels   capture.Labels
	}
	byFrame := map[int]view{}
	for _, cols := range ws.frames {
		if cols[2] == "" {
			continue // no TCP
		}
		frame, _ := strconv.Atoi(cols[0])
		v := view{}
		v.seq, _ = strconv.ParseUint(cols[3], 10, 32)
		v.ack, _ = strconv.ParseUint(cols[4], 10, 32)
		for i, l := range labels {
			if cols[5+i] != "" {
				v.labels = v.labels.With(l)
			}
		}
		byFrame[frame] = v
	}
	f, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bad := 0
	n, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		if !p.TCP {
			return nil
		}
		w, ok := byFrame[p.Segment.Frame]
		mine := p.Annotation.Labels.AsWireshark(p.Segment.Len)
		ack := uint64(p.Annotation.RelAck)
		if p.Segment.Flags&capture.ACK == 0 {
			ack = w.ack // tshark shows no ack without the flag
		}
		if !ok || mine != w.labels || uint64(p.Annotation.RelSeq) != w.seq || ack != w.ack {
			if bad++; bad <= 5 {
				t.Errorf("frame %d: tcplab [%s] seq=%d ack=%d, Wireshark [%s] seq=%d ack=%d (seen %v)",
					p.Segment.Frame, mine, p.Annotation.RelSeq, p.Annotation.RelAck, w.labels, w.seq, w.ack, ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n.TCP != len(byFrame) {
		t.Errorf("tcplab annotated %d TCP frames, Wireshark %d", n.TCP, len(byFrame))
	}
}
