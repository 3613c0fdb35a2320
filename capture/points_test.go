package capture

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/internal/testenv"
)

// TestWriterPoints writes one conversation seen at two capture points into
// one pcapng: Wireshark names each frame's interface as the point that saw
// it, and keeps each frame's comment.
func TestWriterPoints(t *testing.T) {
	frames := smallConv().frames(t, 0)
	path := filepath.Join(t.TempDir(), "points.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriterPoints(f, []Point{{"client eth0", layers.LinkTypeEthernet}, {"server eth0", layers.LinkTypeEthernet}})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, fr := range frames {
		for point, name := range []string{"client eth0", "server eth0"} {
			ci := fr.ci
			ci.InterfaceIndex = point
			if err := w.WritePacket(ci, fr.data, name+" saw frame "+string(rune('a'+i))); err != nil {
				t.Fatal(err)
			}
			want = append(want, name+"\t"+name+" saw frame "+string(rune('a'+i)))
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-r", path, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tshark reads:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
