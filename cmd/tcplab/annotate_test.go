package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
)

const testdata = "../../capture/testdata"

// runTCPLab runs the command line and returns its exit status and output.
func runTCPLab(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// tcpFrames returns how many frames of the capture carry TCP and how many
// connections they belong to, as the capture package counts them.
func tcpFrames(t *testing.T, path string) (frames, tcp, conns int) {
	t.Helper()
	f, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := capture.NewAnnotator()
	n, err := capture.Walk(f, a, func(*capture.Packet) error { return nil })
	if err != nil && !errors.Is(err, capture.ErrTruncated) {
		t.Fatal(err)
	}
	return n.Frames, n.TCP, len(a.Conns())
}

// annotateFixtures are the fixtures the output tests run on: several link
// types, IPv6, pcapng, a cut snap length.
var annotateFixtures = []string{"handshake.pcap", "handshake.pcapng", "http-keepalive.pcap", "ipv6.pcap",
	"sll.pcap", "sll2.pcap", "raw.pcap", "null.pcap", "snaplen-cut.pcap", "rst.pcap"}

func fixturePath(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(testdata, name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("fixture %s: %v; make it with go run ./capture/testdata/mkfixtures", name, err)
	}
	return path
}

// TestAnnotateText checks the readable output: one line per TCP segment,
// a blank line, the frame counts, then one summary line per connection.
func TestAnnotateText(t *testing.T) {
	for _, name := range annotateFixtures {
		t.Run(name, func(t *testing.T) {
			path := fixturePath(t, name)
			frames, tcp, conns := tcpFrames(t, path)
			code, stdout, stderr := runTCPLab(t, "annotate", path)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if len(lines) != tcp+2+conns {
				t.Fatalf("%d lines, want %d segments + blank + counts + %d summaries:\n%s", len(lines), tcp, conns, stdout)
			}
			for i, l := range lines[:tcp] {
				fields := strings.Fields(l)
				// Every fixture here is TCP only, so line i is frame i+1.
				if len(fields) < 9 || fields[0] != strconv.Itoa(i+1) {
					t.Errorf("segment line %d: %q", i+1, l)
					continue
				}
				if fields[3] != "C>S" && fields[3] != "S>C" {
					t.Errorf("segment line %d: direction %q", i+1, fields[3])
				}
				// "?" stands for flags the snap length cut, and only
				// on a line that says so.
				if _, ok := capture.ParseFlags(fields[4]); !ok && (fields[4] != "?" || !strings.Contains(l, "(header-cut)")) {
					t.Errorf("segment line %d: flags %q", i+1, fields[4])
				}
			}
			if lines[tcp] != "" {
				t.Errorf("line after the segments: %q, want a blank line", lines[tcp])
			}
			if want := strconv.Itoa(frames) + " frames: " + strconv.Itoa(tcp) + " TCP"; !strings.HasPrefix(lines[tcp+1], want) {
				t.Errorf("counts line %q, want it to start with %q", lines[tcp+1], want)
			}
			for i, l := range lines[tcp+2:] {
				if !strings.HasPrefix(l, "stream "+strconv.Itoa(i)+": ") || !strings.Contains(l, "history ") {
					t.Errorf("summary line %d: %q", i, l)
				}
			}
		})
	}
}

// TestAnnotateJSON checks every -json line: valid JSON with the required
// fields and types, labels an array even when empty (never null), no
// summary lines. A field is null only when the snap length cut it
// ("problem":"header-cut"), and then it is null, never a made-up zero.
func TestAnnotateJSON(t *testing.T) {
	required := []string{"frame", "stream", "dir", "src", "dst", "flags", "seq", "ack", "len", "win", "labels"}
	for _, name := range annotateFixtures {
		t.Run(name, func(t *testing.T) {
			path := fixturePath(t, name)
			_, tcp, _ := tcpFrames(t, path)
			code, stdout, stderr := runTCPLab(t, "annotate", "-json", path)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			sc := bufio.NewScanner(strings.NewReader(stdout))
			n, empty := 0, 0
			for sc.Scan() {
				n++
				var raw map[string]json.RawMessage
				if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
					t.Fatalf("line %d: %v: %s", n, err, sc.Text())
				}
				for _, k := range required {
					if _, ok := raw[k]; !ok {
						t.Errorf("line %d: no %q field: %s", n, k, sc.Text())
					}
				}
				var r struct {
					Frame, Stream *int
					Dir, Src, Dst string
					Flags         *string
					Seq, Ack      *uint32
					Len, Win      *int
					Problem       string
					Labels        []string
				}
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("line %d: field types: %v: %s", n, err, sc.Text())
				}
				if r.Frame == nil || r.Stream == nil {
					t.Errorf("line %d: a number field is null: %s", n, sc.Text())
				}
				cut := r.Problem == "header-cut"
				if !cut && (r.Flags == nil || r.Seq == nil || r.Ack == nil || r.Len == nil || r.Win == nil) {
					t.Errorf("line %d: a field is null in a whole header: %s", n, sc.Text())
				}
				if r.Problem != "" && r.Problem != "header-cut" && r.Problem != "options-cut" && r.Problem != "fragment-overlap" {
					t.Errorf("line %d: unknown problem %q", n, r.Problem)
				}
				if r.Dir != "C>S" && r.Dir != "S>C" {
					t.Errorf("line %d: dir %q", n, r.Dir)
				}
				for _, ap := range []string{r.Src, r.Dst} {
					a, err := netip.ParseAddrPort(ap)
					if err != nil || a.String() != ap {
						t.Errorf("line %d: address %q is not ip:port (%v)", n, ap, err)
					}
					if a.Addr().Is6() && !strings.HasPrefix(ap, "[") {
						t.Errorf("line %d: IPv6 address %q without brackets", n, ap)
					}
				}
				if r.Flags != nil {
					if _, ok := capture.ParseFlags(*r.Flags); !ok {
						t.Errorf("line %d: flags %q", n, *r.Flags)
					}
				}
				if l := bytes.TrimSpace(raw["labels"]); len(l) == 0 || l[0] != '[' {
					t.Errorf("line %d: labels is %s, want an array", n, l)
				}
				if string(bytes.TrimSpace(raw["labels"])) == "[]" {
					empty++
				}
				for _, l := range r.Labels {
					if _, ok := capture.ParseLabel(l); !ok {
						t.Errorf("line %d: unknown label %q", n, l)
					}
				}
			}
			if n != tcp {
				t.Errorf("%d JSON lines, want one per TCP frame (%d)", n, tcp)
			}
			if empty == 0 && name != "snaplen-cut.pcap" {
				t.Errorf("no line with empty labels: the [] case went untested")
			}
		})
	}
}

// TestAnnotateIPv6Addresses checks that IPv6 endpoints print in brackets.
func TestAnnotateIPv6Addresses(t *testing.T) {
	path := fixturePath(t, "ipv6.pcap")
	_, stdout, _ := runTCPLab(t, "annotate", "-json", path)
	if !strings.Contains(stdout, `"src":"[::1]:`) {
		t.Errorf("no bracketed IPv6 source in:\n%s", firstLines(stdout, 3))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// tsharkComments returns each frame's comment in a pcapng, by frame number
// ("" when it has none), and whether the frame is TCP.
func tsharkComments(t *testing.T, path string) (map[int]string, map[int]bool) {
	t.Helper()
	tshark := testenv.Tool(t, "tshark")
	cmd := exec.Command(tshark, "-r", path, "-T", "fields", "-e", "frame.number", "-e", "frame.comment", "-e", "tcp.srcport")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v: %s", path, err, stderr.String())
	}
	comments, isTCP := map[int]string{}, map[int]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		n, err := strconv.Atoi(cols[0])
		if err != nil || len(cols) < 3 {
			t.Fatalf("tshark line %q", line)
		}
		comments[n], isTCP[n] = cols[1], cols[2] != ""
	}
	return comments, isTCP
}

// TestAnnotateOutputFile checks -o: a pcapng with every frame of the input
// and a tcplab comment on every TCP frame, as tshark reads it.
func TestAnnotateOutputFile(t *testing.T) {
	for _, name := range []string{"handshake.pcap", "http-keepalive.pcap", "ipv6.pcap", "sll2.pcap", "handshake.pcapng"} {
		t.Run(name, func(t *testing.T) {
			path := fixturePath(t, name)
			frames, tcp, _ := tcpFrames(t, path)
			out := filepath.Join(t.TempDir(), "out.pcapng")
			code, _, stderr := runTCPLab(t, "annotate", "-o", out, path)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			comments, isTCP := tsharkComments(t, out)
			if len(comments) != frames {
				t.Errorf("tshark reads %d frames from the copy, want %d", len(comments), frames)
			}
			n := 0
			for frame, c := range comments {
				if isTCP[frame] {
					n++
					if !strings.HasPrefix(c, "tcplab: stream ") {
						t.Errorf("frame %d: comment %q, want a tcplab annotation", frame, c)
					}
				}
			}
			if n != tcp {
				t.Errorf("tshark sees %d TCP frames in the copy, want %d", n, tcp)
			}
		})
	}
}

// TestAnnotateTruncatedRecord: an error mid-file exits 1 with one line on
// stderr, after printing the frames before it; the -o copy holds those
// frames and tshark reads it.
func TestAnnotateTruncatedRecord(t *testing.T) {
	path := fixturePath(t, "truncated-record.pcap")
	out := filepath.Join(t.TempDir(), "out.pcapng")
	code, stdout, stderr := runTCPLab(t, "annotate", "-o", out, path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, path) || !strings.Contains(stderr, "truncated") {
		t.Errorf("stderr %q: want one line naming %s and saying it is truncated", stderr, path)
	}
	if !strings.Contains(stdout, "2 frames: 2 TCP") {
		t.Errorf("stdout does not report the 2 frames before the cut:\n%s", stdout)
	}
	comments, isTCP := tsharkComments(t, out)
	if len(comments) != 2 || !isTCP[1] || !isTCP[2] || comments[1] == "" || comments[2] == "" {
		t.Errorf("the -o copy: tshark reads %v, want frames 1 and 2 with comments", comments)
	}
}

// TestAnnotateErrors: a file that cannot be read gives exit status 1 and
// one line on stderr that names it; nothing on stdout, no panic.
func TestAnnotateErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pcap")
	for _, path := range []string{
		missing,
		filepath.Join(testdata, "empty.pcap"),
		filepath.Join(testdata, "notcapture.pcap"),
		filepath.Join(testdata, "truncated-header.pcap"),
		filepath.Join(testdata, "unsupported-linktype.pcap"),
		testdata, // a directory
	} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if _, err := os.Stat(path); err != nil && path != missing {
				t.Fatalf("fixture: %v", err)
			}
			for _, args := range [][]string{{"annotate", path}, {"annotate", "-json", path}} {
				code, stdout, stderr := runTCPLab(t, args...)
				if code != 1 {
					t.Errorf("%v: exit %d, want 1", args, code)
				}
				if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "tcplab: ") || !strings.Contains(stderr, path) {
					t.Errorf("%v: stderr %q, want one line naming the file", args, stderr)
				}
				if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
					t.Errorf("%v: panicked: %s", args, stderr)
				}
				if strings.Contains(path, "unsupported") {
					continue // the counts of zero frames are printed
				}
				if stdout != "" {
					t.Errorf("%v: stdout %q, want nothing", args, stdout)
				}
			}
		})
	}
}

// TestAnnotateUsage: command-line mistakes exit with status 2 and a line
// on stderr; -o naming the input (by any path) is refused and the input
// left as it was.
func TestAnnotateUsage(t *testing.T) {
	src := fixturePath(t, "handshake.pcap")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pcap")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pcap")
	if err := os.Symlink(in, link); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	rel, _ := filepath.Rel(wd, in)
	tests := [][]string{
		{"frobnicate"},
		{"annotate", "-nope", in},
		{"annotate"},
		{"annotate", in, "nosuchfile.pcap"},
		{"annotate", "-o", filepath.Join(dir, "o.pcapng"), in, in},
		{"annotate", "-json", in, in},
		{"annotate", "-filter", "tcp", in, "port", "80"},
		{"annotate", "-o"},
		{"annotate", "-o", in, in},
		{"annotate", "-o", link, in},
		{"annotate", "-o", filepath.Join(dir, ".", "in.pcap"), rel},
	}
	for _, args := range tests {
		code, stdout, stderr := runTCPLab(t, args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if !strings.HasPrefix(stderr, "tcplab: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: stderr %q, want one tcplab: line", args, stderr)
		}
		if stdout != "" {
			t.Errorf("%q: stdout %q, want nothing", args, stdout)
		}
	}
	after, err := os.ReadFile(in)
	if err != nil || !bytes.Equal(after, data) {
		t.Errorf("the input changed (err %v)", err)
	}
	if code, _, _ := runTCPLab(t); code != 2 {
		t.Errorf("no arguments: exit %d, want 2", code)
	}
	if code, stdout, _ := runTCPLab(t, "help"); code != 0 || !strings.Contains(stdout, "tcplab annotate") {
		t.Errorf("help: exit %d, stdout %q", code, stdout)
	}
}

// TestAnnotateSeveralFiles: annotate takes several capture files as check
// does, each under a line naming it with what it alone would print; a
// file that cannot be read is said in its place, the others are still
// annotated, and the exit status is 1.
func TestAnnotateSeveralFiles(t *testing.T) {
	a, b := fixturePath(t, "handshake.pcap"), fixturePath(t, "keepalive.pcap")
	bad := filepath.Join(t.TempDir(), "readme.txt")
	if err := os.WriteFile(bad, []byte("not a capture\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alone := map[string]string{}
	for _, f := range []string{a, b} {
		code, stdout, stderr := runTCPLab(t, "annotate", f, "tcp port 8080")
		if code != 0 {
			t.Fatalf("annotate %s: exit %d: %s", f, code, stderr)
		}
		alone[f] = stdout
	}
	code, stdout, stderr := runTCPLab(t, "annotate", a, b, "tcp port 8080")
	if code != 0 || stderr != "" {
		t.Fatalf("annotate two files: exit %d, stderr %q", code, stderr)
	}
	if want := "==> " + a + " <==\n" + alone[a] + "\n==> " + b + " <==\n" + alone[b]; stdout != want {
		t.Errorf("two files print\n%s\nwant each alone under its name:\n%s", stdout, want)
	}
	code, stdout, stderr = runTCPLab(t, "annotate", a, bad, b)
	if code != 1 || !strings.Contains(stderr, "1 of 3 files") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("with a bad file: exit %d, stderr %q; want 1 and one line counting it", code, stderr)
	}
	if !strings.Contains(stdout, "==> "+b+" <==") || strings.Count(stdout, bad) != 2 {
		t.Errorf("with a bad file: the file after it is not annotated, or the bad one not said once under its name:\n%s", stdout)
	}
}
