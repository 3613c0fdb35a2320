package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/peer"
	"github.com/tcplab/tcplab/lab/report"
)

func TestMain(m *testing.M) {
	if role := os.Getenv("TCPLAB_TEST_NETHTTP"); role != "" {
		// A -server or -client command of external_test.go.
		os.Exit(runNetHTTP(role))
	}
	if lab.InChild() {
		// lab.Run re-executes this test binary in each scenario's namespace.
		os.Exit(lab.RunChild(append(append(Every(), testOnly()...), scriptedWrong())))
	}
	os.Exit(m.Run())
}

// TestScenarios runs every scenario live, each in its own namespace, all at
// once, and fails on any mismatch, drop or peer error.
func TestScenarios(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	results, err := lab.Run(context.Background(), All(), lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		t.Run(r.Scenario, func(t *testing.T) {
			if !r.Pass {
				t.Fatalf("scenario failed:\n%s", r.Failure())
			}
			if r.Drops != 0 {
				t.Errorf("%d kernel drops", r.Drops)
			}
			ws := readWithTshark(t, filepath.Join(out, r.Scenario, report.CaptureFile))
			checkArtifacts(t, filepath.Join(out, r.Scenario), r.Segments, ws)
			checkKernelAccount(t, filepath.Join(out, r.Scenario), &r)
			sameAsWireshark(t, ws)
			// tcplab check gives the run's verdict on its capture.
			var stdout, stderr bytes.Buffer
			capFile := filepath.Join(out, r.Scenario, report.CaptureFile)
			if code := lab.Command("tcplab", []string{"check", "-scenario", r.Scenario, capFile}, &stdout, &stderr, All()); code != lab.ExitPass {
				t.Errorf("check -scenario %s on its own capture: exit %d\n%s%s", r.Scenario, code, stdout.String(), stderr.String())
			}
		})
	}
	// And every scenario's check fails on every other scenario's capture:
	// a check that passes what it should not is no check.
	t.Run("others", func(t *testing.T) {
		for _, sc := range All() {
			for _, r := range results {
				if r.Scenario == sc.Name || r.Scenario == "bulk" || !r.Pass {
					continue // bulk's capture is a gigabyte's headers: its own check reads it once
				}
				capFile := filepath.Join(out, r.Scenario, report.CaptureFile)
				v := lab.Check(capFile, lab.CheckRequest{Scenario: sc, Options: lab.Options{AnyPeers: true}, Stream: -1})
				if v.Pass && !sameStory[[2]string{sc.Name, r.Scenario}] {
					t.Errorf("check -scenario %s passes %s's capture", sc.Name, r.Scenario)
				}
			}
		}
	})
}

// sameStory lists the scenarios whose check rightly passes another's
// capture, each with the reason.
var sameStory = map[[2]string]bool{
	// lan is the walkthrough's conversation across two hosts, and what
	// TCP allows the LAN (a segment resent, a window that never went to
	// zero) it allows on loopback too, where a busy machine has shown
	// both: what tells the two apart is the network, which a check of
	// the segments does not see. lan's own check still fails the
	// walkthrough's capture (its segments are cut at the LAN's MSS).
	{"walkthrough", "lan"}: true,
}

// checkArtifacts reads back a scenario's capture: every TCP packet is there
// and carries its comment, in tcplab's reading and in tshark's (ws, of
// readWithTshark).
func checkArtifacts(t *testing.T, dir string, segments int, ws *tsharkReading) {
	t.Helper()
	for _, f := range []string{"capture.pcapng", "walkthrough.md", "result.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	f, err := capture.Open(filepath.Join(dir, "capture.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := capture.Walk(f, capture.NewAnnotator(), func(*capture.Packet) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n.TCP != segments || segments == 0 {
		t.Errorf("capture.pcapng has %d TCP segments, result says %d", n.TCP, segments)
	}
	// Wireshark reads the file and finds a comment on every packet.
	if len(ws.frames) != n.Frames {
		t.Errorf("tshark read %d frames, tcplab wrote %d", len(ws.frames), n.Frames)
	}
	for _, cols := range ws.frames {
		if !strings.HasPrefix(cols[1], "tcplab: ") {
			t.Errorf("frame without a tcplab comment: %q", cols[0]+"\t"+cols[1])
		}
	}
}

// TestExplainedInBothLanguages: every scenario has its summary and every
// step its explanation in English and Chinese, so -lang zh translates what
// a reader sees.
func TestExplainedInBothLanguages(t *testing.T) {
	for _, sc := range Every() {
		if sc.Summary == "" || sc.SummaryZH == "" {
			t.Errorf("%s: summary %q, Chinese %q", sc.Name, sc.Summary, sc.SummaryZH)
		}
		for i, st := range sc.Steps(lab.Options{}) {
			en, zh := st.Text(expect.English), st.Text(expect.Chinese)
			if en == "" || zh == en {
				t.Errorf("%s step %d: English %q, Chinese %q", sc.Name, i+1, en, zh)
			}
		}
	}
}

// TestAnyPeersStepsTakeNoByteCounts: for tcplab check, the scenarios whose
// peers can be anyone's expect no byte count of the blog post's request
// (417 bytes) or response (113 bytes).
func TestAnyPeersStepsTakeNoByteCounts(t *testing.T) {
	req, resp := len(peer.GetRequest()), len(peer.Response)
	counts := []string{
		fmt.Sprintf("len=%d", req), fmt.Sprintf("len=%d", resp),
		fmt.Sprintf("ack=%d", 1+req), fmt.Sprintf("ack=%d", 1+resp), fmt.Sprintf("seq=%d", 1+resp),
	}
	for _, sc := range []*lab.Scenario{HalfClose(), HTTPRealClient(), KeepAlive(), Reset(), SynRetry(), Handshake(), Walkthrough(), Window(), Bulk()} {
		for i, st := range sc.Steps(lab.Options{AnyPeers: true}) {
			for _, c := range counts {
				if strings.Contains(st.String(), c) {
					t.Errorf("%s step %d expects %s: %s", sc.Name, i+1, c, st)
				}
			}
		}
	}
}
