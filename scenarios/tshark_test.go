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

// sameAsWireshark runs tshark's two-pass TCP analysis on a live scenario's
// capture and checks that every TCP frame has Wireshark's labels and
// relative numbers, but for the deliberate difference that
// Labels.AsWireshark undoes.
func sameAsWireshark(t *testing.T, path string) {
	t.Helper()
	args := []string{"-r", path, "-2", "-Y", "tcp", "-T", "fields", "-E", "occurrence=f",
		"-e", "frame.number", "-e", "tcp.seq", "-e", "tcp.ack"}
	var labels []capture.Label
	for l := capture.Label(0); l.WiresharkField() != ""; l++ {
		labels = append(labels, l)
		args = append(args, "-e", l.WiresharkField())
	}
	cmd := exec.Command(testenv.Tool(t, "tshark"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v: %s", path, err, stderr.String())
	}
	type view struct {
		seq, ack uint64
		labels   capture.Labels
	}
	ws := map[int]view{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 3+len(labels) {
			t.Fatalf("tshark line %q: %d columns, want %d", sc.Text(), len(cols), 3+len(labels))
		}
		frame, _ := strconv.Atoi(cols[0])
		v := view{}
		v.seq, _ = strconv.ParseUint(cols[1], 10, 32)
		v.ack, _ = strconv.ParseUint(cols[2], 10, 32)
		for i, l := range labels {
			if cols[3+i] != "" {
				v.labels = v.labels.With(l)
			}
		}
		ws[frame] = v
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
		w, ok := ws[p.Segment.Frame]
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
	if n.TCP != len(ws) {
		t.Errorf("tcplab annotated %d TCP frames, Wireshark %d", n.TCP, len(ws))
	}
}
