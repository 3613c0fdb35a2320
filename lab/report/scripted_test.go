package report

import (
	"html"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcplab/tcplab/lab/expect"
)

// TestScriptedMarks: a frame marked Scripted says so, with the script's
// step, in capture.pcapng's comment (in English whatever the language),
// in walkthrough.md and walkthrough.html in the run's language, and under
// its arrow in ladder.svg; a frame without the mark says nothing of a
// script anywhere.
func TestScriptedMarks(t *testing.T) {
	for _, tt := range []struct {
		lang expect.Lang
		word string
	}{{expect.English, "scripted"}, {expect.Chinese, "脚本发出"}} {
		t.Run(tt.lang.String(), func(t *testing.T) {
			run := talkRun(tt.lang, func(c *fakeCapture, _ *Result) {
				c.seen[0].Info.AncillaryData = append(c.seen[0].Info.AncillaryData, Scripted("step 1: C>S SYN"))
			})
			dir := t.TempDir()
			if err := Write(openDir(t, dir), run); err != nil {
				t.Fatal(err)
			}
			comments := readComments(t, filepath.Join(dir, CaptureFile))
			if len(comments) != len(run.Packets) {
				t.Fatalf("%d comments for %d packets", len(comments), len(run.Packets))
			}
			if !strings.HasSuffix(comments[0], " | scripted: step 1: C>S SYN") {
				t.Errorf("frame 1's comment %q does not end with the script's step", comments[0])
			}
			for i, c := range comments[1:] {
				if strings.Contains(c, "scripted") {
					t.Errorf("frame %d, not scripted, has comment %q", i+2, c)
				}
			}
			mark := "[" + tt.word + ": step 1: C>S SYN]"
			for f, mark := range map[string]string{WalkthroughFile: mark, WalkthroughHTMLFile: html.EscapeString(mark)} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if n := strings.Count(string(b), mark); n != 1 {
					t.Errorf("%s shows %q %d times, want once", f, mark, n)
				}
			}
			svg, err := os.ReadFile(filepath.Join(dir, LadderFile))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(svg), tt.word+": step 1: C&gt;S SYN") {
				t.Errorf("%s has no note %q", LadderFile, tt.word+": step 1")
			}
		})
	}
}

// readComments returns the comment of each frame of a pcapng file.
func readComments(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		_, _, opts, err := r.ReadPacketDataWithOptions()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(opts.Comments, "; "))
	}
}
