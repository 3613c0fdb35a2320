package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/internal/testenv"
)

// fixtureTshark is tshark's reading of each capture fixture, one run a
// fixture in a run of the tests: TestLabelsMatchWireshark and
// TestVerdictMatchesTshark both compare every fixture with tshark, and
// tshark takes longer to start than to read a fixture, so one run gives
// the fields of both (fixtureFields).
var fixtureTshark struct {
	mu   sync.Mutex
	runs map[string]*fixtureRun
}

// fixtureRun is tshark's run on one fixture.
type fixtureRun struct {
	once sync.Once
	rows [][]string
	err  error
}

// fixtureFields are the fields of tshark's run on a fixture: viewFields,
// then whether an ICMP or ICMPv6 error quotes the frame's TCP header
// (fixtureQuoted), then those of connFields not among them yet (tshark
// shows a field asked for twice in its last column only, the first one
// empty).
func fixtureFields() []string {
	fields := append(viewFields(), "icmp", "icmpv6")
	for _, f := range connFields {
		if !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	return fields
}

// fixtureRows returns tshark's rows of fixtureFields on every TCP frame of
// the fixture at path, from its one run on it (see fixtureTshark).
func fixtureRows(t *testing.T, path string) [][]string {
	t.Helper()
	tshark := testenv.Tool(t, "tshark")
	fixtureTshark.mu.Lock()
	if fixtureTshark.runs == nil {
		fixtureTshark.runs = map[string]*fixtureRun{}
	}
	r := fixtureTshark.runs[path]
	if r == nil {
		r = new(fixtureRun)
		fixtureTshark.runs[path] = r
	}
	fixtureTshark.mu.Unlock()
	r.once.Do(func() { r.rows, r.err = tsharkRows(tshark, path, "tcp", fixtureFields()) })
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.rows
}

// fixtureQuoted reports whether an ICMP or ICMPv6 error quotes the TCP
// header of the frame of a fixture row.
func fixtureQuoted(row []string) bool {
	n := len(viewFields())
	return row[n] != "" || row[n+1] != ""
}

// fixtureConns is tsharkConns of the fixture at path, read from its rows:
// those of TCP headers that no ICMP error quotes.
func fixtureConns(t *testing.T, path string, dirs map[int]Dir) map[int]*tsharkConn {
	t.Helper()
	fields := fixtureFields()
	cols := make([]int, len(connFields))
	for i, f := range connFields {
		cols[i] = slices.Index(fields, f)
	}
	var rows [][]string
	for _, row := range fixtureRows(t, path) {
		if fixtureQuoted(row) {
			continue
		}
		conn := make([]string, len(cols))
		for i, c := range cols {
			conn[i] = row[c]
		}
		rows = append(rows, conn)
	}
	return connsOf(t, rows, dirs)
}

// tsharkSegments returns tshark's view of the TCP segments of the fixture
// at path: every frame tshark shows a TCP header in, except those where
// the header is quoted in an ICMP error. tshark does not analyse those, and
// tcplab does not take them for segments; but tshark gives the connection
// of a quoted header a stream number, so the streams are numbered again
// here in the order they first appear in the frames kept, as tcplab
// numbers them.
func tsharkSegments(t *testing.T, path string) map[int]wiresharkView {
	t.Helper()
	var rows [][]string
	for _, row := range fixtureRows(t, path) {
		if !fixtureQuoted(row) {
			rows = append(rows, row)
		}
	}
	views := viewsOf(t, rows)
	frames := slices.Sorted(maps.Keys(views))
	renumber := map[int]int{}
	for _, f := range frames {
		v := views[f]
		n, ok := renumber[v.stream]
		if !ok {
			n = len(renumber)
			renumber[v.stream] = n
		}
		v.stream = n
		views[f] = v
	}
	return views
}

// tsharkFrames returns the numbers of the frames of path that match the
// display filter.
func tsharkFrames(t *testing.T, path, filter string) []int {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "tshark"), "-r", path, "-2", "-Y", filter, "-T", "fields", "-e", "frame.number")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v: %s", path, err, stderr.String())
	}
	var frames []int
	for _, f := range strings.Fields(string(out)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("tshark %s: frame number %q", path, f)
		}
		frames = append(frames, n)
	}
	return frames
}

// tcplabSegment is what tcplab says of one TCP frame of a capture.
type tcplabSegment struct {
	view      wiresharkView
	truncated bool
}

// tcplabSegments annotates path and returns each TCP frame's annotation.
func tcplabSegments(t *testing.T, path string) map[int]tcplabSegment {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make(map[int]tcplabSegment)
	_, err = Walk(f, NewAnnotator(), func(p *Packet) error {
		if p.TCP {
			a := &p.Annotation
			got[p.Segment.Frame] = tcplabSegment{
				view: wiresharkView{stream: a.Stream, seq: a.RelSeq, ack: a.RelAck, len: p.Segment.Len, win: a.Win,
					labels: a.Labels},
				truncated: p.Segment.Problem == HeaderCut,
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return got
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
		if errorFixtures[filepath.Base(f)] {
			continue
		}
		// Every other fixture must read to its end: one that does not
		// fails the test rather than drop out of the comparison.
		src, err := Open(f)
		if err != nil {
			t.Errorf("fixture %s: %v", f, err)
			continue
		}
		if _, err := Walk(src, NewAnnotator(), func(*Packet) error { return nil }); err != nil {
			t.Errorf("fixture %s: %v", f, err)
		} else {
			out = append(out, f)
		}
		src.Close()
	}
	if len(out) != len(files)-len(errorFixtures) {
		t.Fatalf("%d capture fixtures read of %d, want all but the %d error fixtures", len(out), len(files), len(errorFixtures))
	}
	return out
}

// errorFixtures are the files of testdata that are broken on purpose, for
// the tests of bad input.
var errorFixtures = map[string]bool{
	"empty.pcap": true, "notcapture.pcap": true, "truncated-header.pcap": true,
	"truncated-record.pcap": true, "unsupported-linktype.pcap": true,
}

// TestLabelsMatchWireshark checks every TCP frame of every fixture, the
// encapsulated ones included: tcplab finds a segment in every frame tshark
// analyses and in no other, with the same stream, relative seq and ack,
// payload length, scaled window, and labels equal to Wireshark's
// tcp.analysis flags, apart from the deliberate difference for Linux
// zero-window probes. A segment whose header the snap length cut is
// compared by stream and labels only.
func TestLabelsMatchWireshark(t *testing.T) {
	testenv.Tool(t, "tshark")
	for _, path := range captures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			ws := tsharkSegments(t, path)
			ours := tcplabSegments(t, path)
			if len(ws) != len(ours) {
				t.Errorf("tshark analysed %d TCP frames, tcplab %d", len(ws), len(ours))
			}
			for _, frame := range slices.Sorted(maps.Keys(ours)) {
				if _, ok := ws[frame]; !ok {
					t.Errorf("frame %d: tcplab found a segment, tshark analysed none", frame)
				}
			}
			for _, frame := range slices.Sorted(maps.Keys(ws)) {
				want := ws[frame]
				got, ok := ours[frame]
				if !ok {
					t.Errorf("frame %d: tcplab did not see a TCP segment", frame)
					continue
				}
				mine := got.view
				mine.labels = mine.labels.AsWireshark(mine.len)
				if mine.labels != want.labels {
					t.Errorf("frame %d: tcplab [%v] (as Wireshark: [%v]), tshark [%v]", frame, got.view.labels, mine.labels, want.labels)
				}
				if !got.truncated {
					mine.labels = want.labels
					if mine != want {
						t.Errorf("frame %d: tcplab and tshark disagree:\n  tcplab: %s\n  tshark: %s", frame, mine, want)
					}
				} else if mine.stream != want.stream {
					t.Errorf("frame %d (truncated): tcplab stream %d, tshark %d", frame, mine.stream, want.stream)
				}
			}
			t.Logf("%d TCP frames compared", len(ws))
		})
	}
}

// labelSteps is a conversation with several labels: a lost segment, two
// duplicate acks, a fast retransmission and a zero window; labelWant holds
// the labels of its steps.
func labelSteps() ([]step, []Labels) {
	steps := append(handshake(),
		step{cs, PSH | ACK, 1, 1, 100, 502, nil, 0},
		step{cs, PSH | ACK, 201, 1, 100, 502, nil, 0},
		step{sc, ACK, 1, 101, 0, 509, nil, 0},
		step{sc, ACK, 1, 101, 0, 509, nil, 0},
		step{sc, ACK, 1, 101, 0, 509, nil, 0},
		step{cs, PSH | ACK, 101, 1, 100, 502, nil, 0},
		step{sc, ACK, 1, 301, 0, 0, nil, 0},
	)
	want := []Labels{0, 0, 0, 0, labelsOf(LostSegment), 0, labelsOf(DupACK), labelsOf(DupACK),
		labelsOf(FastRetransmission, Retransmission), labelsOf(ZeroWindow)}
	return steps, want
}

// TestLabelsEncapsulated runs a conversation with several labels inside
// every tunnel stack, over IPv4 and IPv6, on Ethernet and on one other
// framing: tcplab must find every segment tshark analyses, with the same
// stream, relative numbers, length, window and labels.
func TestLabelsEncapsulated(t *testing.T) {
	testenv.Tool(t, "tshark")
	steps, want := labelSteps()
	var (
		convs []conv
		cases []viewCase
	)
	for i, e := range testEncaps() {
		for _, v6 := range []bool{false, true} {
			for _, l := range linksFor(t, e, v6, i) {
				c := conv{link: l, encap: e, steps: steps, ip: ipHeaders{v4Options: true, v6Ext: true}}
				c.client, c.server = caseEndpoints(t, v6, len(convs))
				convs = append(convs, c)
				cases = append(cases, viewCase{l.linkType(), c.frames(t, 0)})
			}
		}
	}
	ws := tsharkViews(t, cases)
	for k, c := range convs {
		t.Run(fmt.Sprintf("%v/%v/v6=%v", c.encap, c.link, c.client.Addr().Is6()), func(t *testing.T) {
			t.Parallel()
			got, _ := c.annotate(t)
			for i, g := range got {
				if g.ann.Labels != want[i] {
					t.Errorf("step %d: labels [%v], want [%v]", i, g.ann.Labels, want[i])
				}
			}
			crossCheckViews(t, ws[k], got, nil)
		})
	}
}

// TestSameTupleInTwoTunnels checks how segments with the same inner
// addresses and ports, carried in different VLANs or tunnels, are keyed.
// Wireshark 4.0 keys a TCP stream on the inner addresses and ports only
// (tcp.stream ignores VLAN IDs, VNIs and outer addresses), and so does
// tcplab:
//
//   - one connection seen twice, in VLAN 10 and again in GRE (a mirror
//     port that sees a packet before and after a router) is one stream,
//     whose second copies are retransmissions and duplicate acks;
//   - two different connections that happen to use the same inner 4-tuple
//     in two tunnels at the same time (overlapping address spaces) are not
//     told apart: the second SYN, with another ISN, starts a new stream,
//     and the segments of both connections go there.
//
// Every frame must get tshark's stream and labels. Two differences are
// known, in the second case only: tshark takes a SYN/ACK with another ISN
// in an open stream as the new base of the server's relative numbers,
// tcplab keeps the first one, so relative seq and ack differ from there on;
// and tshark labels that SYN/ACK a lost-segment and its ACK an
// ack-lost-segment, tcplab neither.
func TestSameTupleInTwoTunnels(t *testing.T) {
	testenv.Tool(t, "tshark")
	steps, _ := labelSteps()
	t.Run("one-connection-twice", func(t *testing.T) {
		a := conv{encap: encap{tunVLAN}, steps: steps}
		b := conv{encap: encap{tunGRE}, steps: steps, start: testEpoch.Add(time.Microsecond)}
		frames := merge(t, 0, a, b)
		got, an := walkFrames(t, layers.LinkTypeEthernet, frames)
		if n := len(an.Conns()); n != 1 {
			t.Errorf("%d streams, want 1", n)
		}
		crossCheck(t, layers.LinkTypeEthernet, frames, got)
	})
	t.Run("two-connections", func(t *testing.T) {
		a := conv{encap: encap{tunVXLAN}, steps: steps}
		b := conv{encap: encap{tunQinQ, tunVLAN}, steps: steps, cisn: 5_000_000, sisn: 7_000_000, start: testEpoch.Add(500 * time.Microsecond)}
		frames := merge(t, 0, a, b)
		got, an := walkFrames(t, layers.LinkTypeEthernet, frames)
		for _, g := range got {
			if g.seg.Src != client4 && g.seg.Src != server4 {
				t.Fatalf("frame %d from %v: want the inner addresses", g.seg.Frame, g.seg.Src)
			}
		}
		if n := len(an.Conns()); n != 2 {
			t.Errorf("%d streams, want 2", n)
		}
		// tshark also calls the second SYN/ACK a lost-segment and the ACK
		// of it an ack-lost-segment; for tcplab a SYN sets the initial
		// sequence number and follows nothing (DIFFERENCES.md).
		synLabels := 0
		rebased := func(mine, ws wiresharkView) bool {
			mine.seq, mine.ack, ws.seq, ws.ack = 0, 0, 0, 0
			// tshark labels those SYN/ACKs reused-ports as well.
			ws.labels = ws.labels.Without(ReusedPorts)
			if ws.labels != mine.labels && (ws.labels == mine.labels.With(LostSegment) || ws.labels == mine.labels.With(ACKLostSegment)) {
				synLabels++
				ws.labels = mine.labels
			}
			return mine == ws
		}
		n := crossCheckExcept(t, layers.LinkTypeEthernet, frames, got, rebased)
		if synLabels != 2 {
			t.Errorf("%d frames differ by tshark's lost-segment or ack-lost-segment, want 2 (the SYN/ACK and its ACK)", synLabels)
		}
		t.Logf("%d frames in %d streams, %d with other relative numbers than tshark's", len(got), len(an.Conns()), n)
	})
}
