package scenarios

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/report"
	"github.com/tcplab/tcplab/lab/scripted"
)

// scriptAddr is the scripted peer's address (lab.Scripted).
const scriptAddr = "192.168.0.2"

// needTUN skips the test (fails it in CI) when this process may not make
// the TUN device a scripted peer stands behind.
func needTUN(t *testing.T) {
	t.Helper()
	testenv.NetNS(t)
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		testenv.SkipOrFail(t, "cannot open /dev/net/tun: "+err.Error(), "run as root, with the tun module")
		return
	}
	unix.Close(fd)
}

// TestScriptedScenarios runs every scripted scenario through lab.Run, in
// English and in Chinese, and checks what any scenario gets: a pass, the
// artifacts, every frame commented, tcplab check's verdict on its own
// capture; and what a scripted one adds: exactly the frames from the
// script's address marked "scripted: step N" in capture.pcapng, N
// growing, and the mark in the walkthrough in the run's language.
func TestScriptedScenarios(t *testing.T) {
	needTUN(t)
	for _, lang := range []expect.Lang{expect.English, expect.Chinese} {
		out := t.TempDir()
		results, err := lab.Run(context.Background(), Scripted(), lab.Config{Out: out, Options: lab.Options{Lang: lang}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			t.Run(lang.String()+"/"+r.Scenario, func(t *testing.T) {
				if !r.Pass {
					t.Fatalf("scenario failed:\n%s", r.Failure())
				}
				dir := filepath.Join(out, r.Scenario)
				capFile := filepath.Join(dir, report.CaptureFile)
				checkArtifacts(t, dir, r.Segments, readWithTshark(t, capFile))
				scripted := checkScriptedComments(t, capFile)
				md, err := os.ReadFile(filepath.Join(dir, report.WalkthroughFile))
				if err != nil {
					t.Fatal(err)
				}
				word := map[expect.Lang]string{expect.English: "[scripted: step ", expect.Chinese: "[脚本发出: step "}[lang]
				if got := strings.Count(string(md), word); got != scripted {
					t.Errorf("walkthrough.md marks %d segments %q, the capture has %d scripted frames", got, word, scripted)
				}
				// The probes are timed steps: result.json says how far from
				// due each came, the run's spread, within the tolerance.
				if r.Scenario == "zero-window-probe" {
					timed := 0
					for name, ms := range r.Metrics {
						if step, ok := strings.CutSuffix(name, "_offset_ms"); ok {
							timed++
							if tol := r.Metrics[step+"_tolerance_ms"]; tol <= 0 || ms < -tol || ms > tol {
								t.Errorf("%s = %v ms, tolerance %v ms", name, ms, tol)
							}
						}
					}
					if timed != zeroWindowProbes-1 {
						t.Errorf("%d timed steps in the metrics, want %d: %v", timed, zeroWindowProbes-1, r.Metrics)
					}
				}
				var stdout, stderr bytes.Buffer
				if code := lab.Command("tcplab", []string{"check", "-scenario", r.Scenario, capFile}, &stdout, &stderr, Every()); code != lab.ExitPass {
					t.Errorf("check -scenario %s on its own capture: exit %d\n%s%s", r.Scenario, code, stdout.String(), stderr.String())
				}
			})
		}
	}
}

// checkScriptedComments reads capture.pcapng's comments: a frame from the
// script's address must say "| scripted: step N:", N growing, and no
// other frame may. It returns how many frames are scripted.
func checkScriptedComments(t *testing.T, name string) int {
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
	dec, err := capture.NewDecoder(r.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	last, n := 0, 0
	for frame := 1; ; frame++ {
		data, _, opts, err := r.ReadPacketDataWithOptions()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var seg capture.Segment
		if !dec.Decode(data, &seg) {
			t.Errorf("frame %d is not TCP", frame)
			continue
		}
		comment := strings.Join(opts.Comments, "; ")
		_, rest, marked := strings.Cut(comment, " | scripted: step ")
		fromScript := seg.Src.Addr().String() == scriptAddr
		if marked != fromScript {
			t.Errorf("frame %d from %v: comment %q; want it marked scripted exactly when it comes from %s", frame, seg.Src, comment, scriptAddr)
			continue
		}
		if !marked {
			continue
		}
		n++
		step := 0
		for _, c := range rest {
			if c < '0' || c > '9' {
				break
			}
			step = step*10 + int(c-'0')
		}
		if step <= last {
			t.Errorf("frame %d: script step %d after step %d", frame, step, last)
		}
		last = step
	}
	if n == 0 {
		t.Errorf("%s: no scripted frame", name)
	}
	return n
}

// scriptedWrong is a scripted scenario whose script expects what the
// kernel does not send (a SYN/ACK acknowledging 2): its run must fail at
// that step of the script, with the script's table of what differs.
func scriptedWrong() *lab.Scenario {
	return &lab.Scenario{
		Name:     "scripted-wrong",
		Summary:  "a script that expects the wrong acknowledgement number",
		Topology: lab.Scripted,
		Timeout:  5 * time.Second,
		Server: func(ctx context.Context, env *lab.Env) error {
			ln, err := env.Listen(ctx, nil)
			if err != nil {
				return err
			}
			defer ln.Close()
			<-env.ClientDone()
			return nil
		},
		Client: func(ctx context.Context, env *lab.Env) error {
			conn := env.Scripted().Dial(scriptPort(env))
			conn.Send(env, scripted.TCP{Flags: scripted.SYN})
			conn.Expect(env, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(2)}, time.Second)
			return nil
		},
		Steps: func(lab.Options) []expect.Step {
			return []expect.Step{expect.C2S(expect.SYN), expect.S2C(synAck)}
		},
	}
}

// TestScriptedFailure: a script's failed expectation (Env.Fatalf) ends
// its side alone; the run fails with the script's step and the field
// that differs, and keeps the capture, the SYN in it marked scripted.
func TestScriptedFailure(t *testing.T) {
	needTUN(t)
	out := t.TempDir()
	start := time.Now()
	results, err := lab.Run(context.Background(), []*lab.Scenario{scriptedWrong()}, lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if r.Pass {
		t.Fatal("a script that expects the wrong ack passed")
	}
	for _, want := range []string{"client: step 2: want SYN,ACK ack=2", "ack ", "frames seen while waiting"} {
		if !strings.Contains(r.Error, want) {
			t.Errorf("error %q does not say %q", r.Error, want)
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the run took %v: the failed script did not end its side", d)
	}
	if n := checkScriptedComments(t, filepath.Join(out, r.Scenario, report.CaptureFile)); n != 1 {
		t.Errorf("%d scripted frames, want the SYN", n)
	}
}
