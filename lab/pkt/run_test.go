package pkt

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
)

// The live tests run again, each alone, in a private network namespace
// (testenv.InNamespace); Run makes a namespace of its own inside it for
// each script.
func TestMain(m *testing.M) { testenv.Main(m) }

// needTUN skips the test (fails it in CI) when this process may not
// create TUN devices.
func needTUN(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		testenv.SkipOrFail(t, "cannot open /dev/net/tun: "+err.Error(), "run as root, with the tun module")
		return
	}
	f.Close()
}

// testFloor is the tests' timing tolerance: wider than tcplab's 25 ms,
// for a machine that many test runs share (a kernel ACK 28 ms late was
// seen on one). The failing fixtures fail by far more.
const testFloor = 100 * time.Millisecond

// wantRE is a fixture's expectation in its first line: "// want: fail
// at line N: text" or "// want: skip at line N: text".
var wantRE = regexp.MustCompile(`^// want: (fail|skip) at line (\d+): (.+)$`)

// TestRunScripts plays every script of testdata (each must pass),
// testdata/fail (each must fail where and as its first line says) and
// testdata/skip (each must be skipped so), and reads back each pass's
// pcapng: every frame commented with its script line.
func TestRunScripts(t *testing.T) {
	if !testenv.InNamespace(t, 3*time.Minute) {
		return
	}
	needTUN(t)
	files, _ := filepath.Glob("testdata/*.pkt")
	more, _ := filepath.Glob("testdata/*/*.pkt")
	for _, f := range append(files, more...) {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(f, "testdata/"), ".pkt"), func(t *testing.T) {
			want, line, text := Passed, 0, ""
			if m := wantRE.FindStringSubmatch(firstLine(t, f)); m != nil {
				want, text = Failed, m[3]
				if m[1] == "skip" {
					want = Skipped
				}
				line, _ = strconv.Atoi(m[2])
			}
			s, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pcap := filepath.Join(t.TempDir(), "capture.pcapng")
			out, err := os.Create(pcap)
			if err != nil {
				t.Fatal(err)
			}
			res := Run(context.Background(), s, Config{Pcap: out, Floor: testFloor})
			out.Close()
			for _, st := range res.Steps {
				t.Logf("line %3d  due %8v  at %8v  %-8s %s", st.Line, st.Scheduled, st.Actual.Round(time.Microsecond), st.Note, st.Event)
			}
			if res.Status != want || res.Line != line || !strings.Contains(res.Reason, text) {
				t.Fatalf("got %v at line %d: %s\nwant %v at line %d: %s", res.Status, res.Line, res.Reason, want, line, text)
			}
			if want == Passed {
				checkComments(t, pcap, s)
			}
		})
	}
}

func firstLine(t *testing.T, name string) string {
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	return sc.Text()
}

// stepRE finds the step, which is the script's line, in a frame's
// comment.
var stepRE = regexp.MustCompile(`^(scripted|expected): step (\d+): `)

// checkComments reads the pcapng back: every frame is a TCP segment
// whose comment names the line of a packet event that way, but for the
// sockets' teardown after the last event, which no line takes.
func checkComments(t *testing.T, name string, s *Script) {
	t.Helper()
	packets := map[int]Direction{}
	for _, e := range s.Events {
		if pk, ok := e.(*Packet); ok {
			packets[pk.Line] = pk.Dir
		}
	}
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
	n, teardown := 0, 0
	for {
		data, _, opts, err := r.ReadPacketDataWithOptions()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		var seg capture.Segment
		if !dec.Decode(data, &seg) {
			t.Errorf("frame %d is not a TCP segment", n)
		}
		c := strings.Join(opts.Comments, "; ")
		if c == "unexpected: taken by no expectation" {
			teardown++
			continue
		}
		m := stepRE.FindStringSubmatch(c)
		if m == nil || teardown > 0 {
			t.Errorf("frame %d: comment %q names no script line", n, c)
			continue
		}
		line, _ := strconv.Atoi(m[2])
		dir, ok := packets[line]
		if !ok || (dir == Inbound) != (m[1] == "scripted") {
			t.Errorf("frame %d: comment %q: line %d is not a packet that way", n, c, line)
		}
	}
	if n-teardown != len(packets) {
		t.Errorf("%d frames in the pcapng (%d of the teardown), want one for each of the %d packet lines", n, teardown, len(packets))
	}
}
