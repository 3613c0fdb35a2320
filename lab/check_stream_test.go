package lab

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/capgen"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/property"
)

// fixture returns the path of one of capture's test captures.
func fixture(name string) string { return filepath.Join("..", "capture", "testdata", name) }

// junitDoc is what the tests read of a JUnit report.
type junitDoc struct {
	Tests  int `xml:"tests,attr"`
	Fails  int `xml:"failures,attr"`
	Errors int `xml:"errors,attr"`
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// failed returns the names of the cases that failed or erred.
func (d *junitDoc) failed() []string {
	var names []string
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil || c.Error != nil {
				names = append(names, c.Name)
			}
		}
	}
	return names
}

// checkResult is what one `tcplab check` printed and wrote.
type checkResult struct {
	code           int
	stdout, stderr string
	junit          junitDoc
}

// runCheck runs `tcplab check args...` twice: as text (each connection
// printed as it is judged), and with -junit, whose report it parses. Both
// must exit alike.
func runCheck(t *testing.T, args ...string) checkResult {
	t.Helper()
	var out, errs bytes.Buffer
	code := Command("tcplab", append([]string{"check"}, args...), &out, &errs, nil)
	junit := filepath.Join(t.TempDir(), "junit.xml")
	var out2, errs2 bytes.Buffer
	code2 := Command("tcplab", append([]string{"check", "-junit", junit}, args...), &out2, &errs2, nil)
	if code2 != code {
		t.Fatalf("check %q exits %d as text, %d with -junit", args, code, code2)
	}
	r := checkResult{code: code, stdout: out.String(), stderr: errs.String()}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatalf("check %q wrote no JUnit report: %v", args, err)
	}
	if err := xml.Unmarshal(b, &r.junit); err != nil {
		t.Fatalf("junit: %v\n%s", err, b)
	}
	// -json: the same exit status, and the same failures as JUnit.
	var out3, errs3 bytes.Buffer
	code3 := Command("tcplab", append([]string{"check", "-json"}, args...), &out3, &errs3, nil)
	if code3 != code {
		t.Fatalf("check %q exits %d as text, %d with -json", args, code, code3)
	}
	var doc struct {
		Files []FileVerdict `json:"files"`
		Pass  bool          `json:"pass"`
	}
	if err := json.Unmarshal(out3.Bytes(), &doc); err != nil || doc.Pass != (code == ExitPass) {
		t.Fatalf("check -json %q: pass %v (%v), exit %d:\n%s", args, doc.Pass, err, code, out3.Bytes())
	}
	var failed []string
	for _, f := range doc.Files {
		if f.Error != "" {
			failed = append(failed, "read "+f.File)
		}
		for _, c := range f.Conns {
			for _, res := range c.Results {
				if !res.Pass {
					failed = append(failed, c.Name+": "+res.Property)
				}
			}
		}
	}
	if !slices.Equal(failed, r.junit.failed()) {
		t.Fatalf("check -json %q fails %q; -junit fails %q", args, failed, r.junit.failed())
	}
	return r
}

// midConnection writes the capture in fixture name without its first n
// frames: a capture started after the connection opened.
func midConnection(t *testing.T, name string, n int) string {
	t.Helper()
	src, err := capture.Open(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "late-"+name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := capture.NewWriter(f, src.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		data, ci, err := src.ReadPacketData()
		if err != nil {
			break
		}
		if i > n {
			if err := w.WritePacket(ci, data, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return path
}

// synRetry writes handshake.pcap with its first frame, the client's SYN,
// sent twice: a SYN retried.
func synRetry(t *testing.T) string {
	t.Helper()
	src, err := capture.Open(fixture("handshake.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "syn-retry.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := capture.NewWriter(f, src.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		data, ci, err := src.ReadPacketData()
		if err != nil {
			break
		}
		for range 1 + btoi(i == 1) {
			if err := w.WritePacket(ci, data, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return path
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestCheckEveryPosition puts each property, where it fails and where it
// passes, first, in the middle and last among properties that pass: the
// exit status, the text and the JUnit report say exactly that property
// failed, whatever its place, on every connection.
func TestCheckEveryPosition(t *testing.T) {
	late := midConnection(t, "handshake.pcap", 3)
	retry := synRetry(t)
	tests := []struct {
		file    string
		conns   int
		prop    string
		pass    bool
		fillers [3]string // properties that pass on every connection of file
	}{
		{late, 1, "handshake", false, [3]string{"no-rst", "closer=client", "no-zero-window"}},
		{fixture("handshake.pcap"), 1, "handshake", true, [3]string{"no-rst", "closer=client", "no-zero-window"}},
		{fixture("rst.pcap"), 2, "no-rst", false, [3]string{"no-retransmission", "no-zero-window", "max-syn-retries=0"}},
		{fixture("retrans.pcap"), 2, "no-rst", true, [3]string{"handshake", "closer=client", "no-zero-window"}},
		{fixture("retrans.pcap"), 2, "no-retransmission", false, [3]string{"handshake", "no-rst", "teardown=FIN,ACK,FIN,ACK"}},
		{fixture("zero-window.pcap"), 1, "no-retransmission", true, [3]string{"handshake", "no-rst", "closer=client"}},
		{fixture("zero-window.pcap"), 1, "no-zero-window", false, [3]string{"handshake", "closer=client", "no-retransmission"}},
		{fixture("keepalive.pcap"), 1, "no-zero-window", true, [3]string{"handshake", "closer=client", "no-retransmission"}},
		{fixture("handshake.pcap"), 1, "closer=server", false, [3]string{"no-rst", "closer=client", "max-syn-retries=0"}},
		{fixture("handshake.pcap"), 1, "closer=client", true, [3]string{"no-rst", "handshake", "max-syn-retries=0"}},
		{fixture("handshake.pcap"), 1, "half-close", false, [3]string{"no-rst", "closer=client", "max-syn-retries=0"}},
		{fixture("half-close.pcap"), 1, "half-close", true, [3]string{"no-rst", "closer=client", "max-syn-retries=0"}},
		{fixture("handshake.pcap"), 1, "teardown=S>C FIN,C>S ACK,C>S FIN,S>C ACK", false, [3]string{"no-rst", "closer=client", "max-syn-retries=0"}},
		{fixture("handshake.pcap"), 1, "teardown=C>S FIN,S>C ACK,S>C FIN,C>S ACK", true, [3]string{"no-rst", "handshake", "max-syn-retries=0"}},
		{fixture("handshake.pcap"), 1, "keepalive", false, [3]string{"no-rst", "closer=client", "max-syn-retries=0"}},
		{fixture("keepalive.pcap"), 1, "keepalive", true, [3]string{"no-rst", "closer=client", "max-syn-retries=0"}},
		{retry, 1, "max-syn-retries=0", false, [3]string{"handshake", "closer=client", "no-rst"}},
		{retry, 1, "max-syn-retries=1", true, [3]string{"handshake", "closer=client", "no-rst"}},
	}
	for _, tt := range tests {
		for pos := 0; pos <= len(tt.fillers); pos++ {
			list := append(append(append([]string(nil), tt.fillers[:pos]...), tt.prop), tt.fillers[pos:]...)
			expectList := strings.Join(list, ",")
			t.Run(filepath.Base(tt.file)+" "+expectList, func(t *testing.T) {
				r := runCheck(t, "-expect", expectList, tt.file)
				want, fails := ExitPass, 0
				if !tt.pass {
					want, fails = ExitFail, tt.conns
				}
				if r.code != want {
					t.Errorf("exit %d, want %d\n%s%s", r.code, want, r.stdout, r.stderr)
				}
				if n := strings.Count(r.stdout, "\n  FAIL  "); n != fails || (fails > 0 && !strings.Contains(r.stdout, "  FAIL  "+tt.prop)) {
					t.Errorf("%d FAIL lines, want %d, of %s:\n%s", n, fails, tt.prop, r.stdout)
				}
				j := r.junit
				if j.Tests != tt.conns*len(list) || j.Fails != fails || j.Errors != 0 {
					t.Errorf("junit: %d tests, %d failures, %d errors; want %d, %d, 0", j.Tests, j.Fails, j.Errors, tt.conns*len(list), fails)
				}
				for _, name := range j.failed() {
					if !strings.HasSuffix(name, ": "+tt.prop) {
						t.Errorf("junit: case %q failed; only %s should", name, tt.prop)
					}
				}
			})
		}
	}
}

// TestCheckBadFiles: a truncated file is judged on what it holds and
// fails, saying it is truncated; an unreadable one fails with one line;
// a snap length that cut the headers leaves every property without a
// verdict but that one; in JUnit, a file's problem is an error case.
func TestCheckBadFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pcap")
	udp := udpCapture(t)
	tests := []struct {
		name   string
		args   []string
		stdout []string // in stdout, in this order
		stderr []string
		junit  [3]int // tests, failures, errors
	}{
		{"truncated", []string{"-expect", "no-rst,no-zero-window", fixture("truncated-record.pcap")},
			[]string{"stream 0:", "pass  no-rst", "pass  no-zero-window", "truncated-record.pcap: file is truncated: record 3 claims 66 bytes; the file has 33 left"},
			[]string{"check failed"}, [3]int{3, 0, 1}},
		{"not a capture", []string{"-expect", "no-rst", fixture("notcapture.pcap")},
			nil, []string{"notcapture.pcap: not a pcap or pcapng file"}, [3]int{1, 0, 1}},
		{"missing", []string{"-expect", "no-rst", missing}, nil, []string{missing, "no such file"}, [3]int{1, 0, 1}},
		{"directory", []string{"-expect", "no-rst", dir}, nil, []string{dir}, [3]int{1, 0, 1}},
		{"one good, one unreadable", []string{"-expect", "no-rst", fixture("handshake.pcap"), missing},
			[]string{"handshake.pcap stream 0:", "pass  no-rst", "missing.pcap: open"}, []string{"check failed: 1 of 2 files"}, [3]int{2, 0, 1}},
		{"snap length", []string{"-expect", "no-rst,handshake", fixture("snaplen-cut.pcap")},
			[]string{"FAIL  no-rst: 11 of its 11 segments were cut inside the TCP header", "FAIL  handshake: 11 of its 11"},
			[]string{"check failed"}, [3]int{2, 2, 0}},
		{"header cut short", []string{"-expect", "no-rst", fixture("truncated-header.pcap")}, nil, []string{"pcap header cut short"}, [3]int{1, 0, 1}},
		{"empty", []string{"-expect", "no-rst", fixture("empty.pcap")}, nil, []string{"file is empty"}, [3]int{1, 0, 1}},
		{"no TCP", []string{"-expect", "no-rst", udp}, nil, []string{"no TCP segment in its 1 frames"}, [3]int{1, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCheck(t, tt.args...)
			if r.code != ExitFail {
				t.Errorf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
			}
			rest := r.stdout
			for _, s := range tt.stdout {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Errorf("stdout lacks %q after what came before:\n%s", s, r.stdout)
					break
				}
				rest = rest[i+len(s):]
			}
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q: %q", s, r.stderr)
				}
			}
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q: want one line", r.stderr)
			}
			if j := r.junit; [3]int{j.Tests, j.Fails, j.Errors} != tt.junit {
				t.Errorf("junit: %d tests, %d failures, %d errors; want %v", j.Tests, j.Fails, j.Errors, tt.junit)
			}
		})
	}
}

// TestCheckVerdictIsEveryProperty: a file passes only when every property
// passes on every connection; one failure anywhere fails it, first or
// last, on the first connection or the last.
func TestCheckVerdictIsEveryProperty(t *testing.T) {
	tests := []struct {
		file, props string
		pass        bool
	}{
		{"handshake.pcap", "no-rst,closer=client", true},
		{"handshake.pcap", "keepalive,no-rst", false},
		{"handshake.pcap", "no-rst,keepalive", false},
		{"rst.pcap", "handshake", false},        // stream 0 fails, stream 1 passes
		{"rst.pcap", "no-rst,handshake", false}, // the last property passes on the last connection
		{"retrans.pcap", "no-retransmission,closer=client", false},
	}
	for _, tt := range tests {
		props, err := property.Parse(tt.props)
		if err != nil {
			t.Fatal(err)
		}
		v := Check(fixture(tt.file), CheckRequest{Properties: props, Stream: -1})
		if v.Pass != tt.pass || v.Error != "" {
			t.Errorf("%s %s: pass %v (error %q), want %v", tt.file, tt.props, v.Pass, v.Error, tt.pass)
		}
	}
}

// TestCheckScenarioJUnit: a scenario's failure reaches JUnit whole: a
// problem (a capture begun mid-connection) as its message, mismatches as
// the first one's line and all of them in the text.
func TestCheckScenarioJUnit(t *testing.T) {
	opens := &Scenario{Name: "opens", Steps: func(Options) []expect.Step {
		return expect.Seq(expect.C2S(capture.SYN), expect.S2C(capture.SYN|capture.ACK), expect.C2S(capture.ACK))
	}}
	refused := &Scenario{Name: "refused", Steps: func(Options) []expect.Step {
		return expect.Seq(expect.C2S(capture.SYN), expect.S2C(capture.RST|capture.ACK))
	}}
	late := midConnection(t, "handshake.pcap", 3)
	tests := []struct {
		sc      *Scenario
		file    string
		message string // the failure's message; "" for a pass
		text    []string
	}{
		{opens, late, "stream 0: 127.0.0.1:40000 (client) <-> 127.0.0.1:8080 (server) begins in the middle of the connection", []string{"start the capture before the connection opens"}},
		{refused, fixture("handshake.pcap"), "refused step 2: ", []string{"refused step 2", "S>C SYN,ACK"}},
		{refused, fixture("rst.pcap"), "", nil},
	}
	for _, tt := range tests {
		v := Check(tt.file, CheckRequest{Scenario: tt.sc, Stream: 0})
		if v.Pass != (tt.message == "") {
			t.Errorf("%s on %s: pass %v", tt.sc.Name, tt.file, v.Pass)
		}
		b, err := JUnit([]FileVerdict{v}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var doc junitDoc
		if err := xml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 1 {
			t.Fatalf("%s: want one case:\n%s", tt.sc.Name, b)
		}
		c := doc.Suites[0].Cases[0]
		if tt.message == "" {
			if c.Failure != nil || doc.Fails != 0 {
				t.Errorf("%s: a pass failed:\n%s", tt.sc.Name, b)
			}
			continue
		}
		if c.Failure == nil || doc.Fails != 1 || !strings.HasPrefix(c.Failure.Message, tt.message) || strings.Contains(c.Failure.Message, "\n") {
			t.Errorf("%s: want a failure %q...:\n%s", tt.sc.Name, tt.message, b)
			continue
		}
		for _, s := range tt.text {
			if !strings.Contains(c.Failure.Text, s) {
				t.Errorf("%s: the failure's text lacks %q:\n%s", tt.sc.Name, s, b)
			}
		}
	}
}

// TestCheckListsFirstFrames: a property broken by thousands of segments
// lists the first property.MaxFrames of them and says so, and its context
// stays within its 20 lines.
func TestCheckListsFirstFrames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lossy.pcap")
	// Two connections: request/response, and a bulk transfer that loses
	// a segment every other step.
	if err := capgen.WriteBulk(path, capgen.Bulk{Packets: 20_000, Concurrent: 2, Steps: 1 << 30, LossEvery: 2}); err != nil {
		t.Fatal(err)
	}
	props, err := property.Parse("no-retransmission")
	if err != nil {
		t.Fatal(err)
	}
	v := Check(path, CheckRequest{Properties: props, Stream: -1})
	if v.Pass || len(v.Conns) != 2 || !v.Conns[0].Results[0].Pass {
		t.Fatalf("pass %v, %d connections, error %q; want the second to fail", v.Pass, len(v.Conns), v.Error)
	}
	r := v.Conns[1].Results[0]
	var n int
	if _, err := fmt.Sscanf(r.Detail, "%d retransmitted segment(s)", &n); err != nil || n < 1000 {
		t.Fatalf("detail %q: want more than 1000 retransmissions", r.Detail)
	}
	if len(r.Frames) != property.MaxFrames || !strings.HasSuffix(r.Detail, fmt.Sprintf("(the first %d listed)", property.MaxFrames)) {
		t.Errorf("%d frames listed, detail %q", len(r.Frames), r.Detail)
	}
	marked := 0
	for _, l := range r.Context {
		if strings.HasPrefix(l, "> ") {
			marked++
			if !strings.Contains(l, "retransmission") {
				t.Errorf("marked line %q is no retransmission", l)
			}
		}
	}
	if len(r.Context) != 20 || marked == 0 || !strings.Contains(r.Context[3], fmt.Sprintf("(frame %d,", r.Frames[0])) {
		t.Errorf("context of %d lines, %d marked:\n%s", len(r.Context), marked, strings.Join(r.Context, "\n"))
	}
}

// udpCapture writes a capture of one UDP datagram, raw IPv4.
func udpCapture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "udp.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := capture.NewWriter(f, layers.LinkTypeRaw)
	if err != nil {
		t.Fatal(err)
	}
	ip := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, 0, 53, 0, 53, 0, 8, 0, 0}
	if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(ip), Length: len(ip)}, ip, ""); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckEveryPositionBadFiles puts each property first, in the middle
// and last on a truncated file, an unreadable one, one whose headers the
// snap length cut and one begun mid-connection: the JUnit cases that fail
// are exactly those of the properties that fail alone, a file's problem
// is an error case, and the exit status is 1 when either is there.
func TestCheckEveryPositionBadFiles(t *testing.T) {
	props, err := property.Parse(allProperties)
	if err != nil {
		t.Fatal(err)
	}
	fillers := []string{"no-rst", "max-syn-retries=0"}
	for _, file := range []string{fixture("truncated-record.pcap"), fixture("notcapture.pcap"), fixture("snaplen-cut.pcap"), midConnection(t, "handshake.pcap", 3)} {
		for _, p := range props {
			alone := Check(file, CheckRequest{Properties: []property.Property{p}, Stream: -1})
			for pos := 0; pos <= len(fillers); pos++ {
				list := append(append(append([]string(nil), fillers[:pos]...), p.String()), fillers[pos:]...)
				t.Run(filepath.Base(file)+" "+strings.Join(list, ","), func(t *testing.T) {
					r := runCheck(t, "-expect", strings.Join(list, ","), file)
					want := map[string]bool{}
					for _, prop := range list {
						props, err := property.Parse(prop)
						if err != nil {
							t.Fatal(err)
						}
						v := alone
						if prop != p.String() {
							v = Check(file, CheckRequest{Properties: props, Stream: -1})
						}
						for _, c := range v.Conns {
							if !c.Results[0].Pass {
								want[c.Name+": "+prop] = true
							}
						}
					}
					if alone.Error != "" {
						want["read "+file] = true
					}
					got := map[string]bool{}
					for _, name := range r.junit.failed() {
						got[name] = true
					}
					if !maps.Equal(got, want) {
						t.Errorf("junit: failed %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
					}
					if code := btoi(len(want) > 0); r.code != code {
						t.Errorf("exit %d, want %d\n%s%s", r.code, code, r.stdout, r.stderr)
					}
				})
			}
		}
	}
}

// TestCheckJUnitPath: a -junit FILE that cannot be written is refused
// before anything is checked, with a usage error saying why; a report
// that can be is written whole, and the scratch file leaves nothing
// beside it.
func TestCheckJUnitPath(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		junit, says string
	}{
		{filepath.Join(dir, "missing", "junit.xml"), "no directory"},
		{dir, "is a directory"},
	} {
		var stdout, stderr bytes.Buffer
		code := Command("tcplab", []string{"check", "-junit", tt.junit, "-expect", "no-rst", fixture("handshake.pcap")}, &stdout, &stderr, nil)
		if code != ExitUsage || !strings.Contains(stderr.String(), tt.says) || stdout.Len() != 0 {
			t.Errorf("-junit %s: exit %d, stdout %q, stderr %q; want %d saying %q", tt.junit, code, stdout.String(), stderr.String(), ExitUsage, tt.says)
		}
	}
	junit := filepath.Join(dir, "junit.xml")
	var stdout, stderr bytes.Buffer
	if code := Command("tcplab", []string{"check", "-junit", junit, "-expect", "no-rst", fixture("handshake.pcap")}, &stdout, &stderr, nil); code != ExitPass {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	names, err := os.ReadDir(dir)
	if err != nil || len(names) != 1 || names[0].Name() != "junit.xml" {
		t.Errorf("the folder holds %v (%v): want junit.xml alone", names, err)
	}
}
