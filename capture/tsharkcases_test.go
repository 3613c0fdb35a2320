package capture

import (
	"bufio"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcplab/tcplab/internal/testenv"
)

// viewCase is the frames of one test case, for tsharkViews.
type viewCase struct {
	lt     layers.LinkType
	frames []capturedFrame
}

// tsharkViews runs tshark once on the frames of all the cases and returns
// each case's view as tsharkView gives it of a file that holds that case
// alone: frames numbered from 1 within the case, streams from 0. tshark
// starts in a good fraction of a second, so a table of cases read in one
// run costs one start instead of one each. Where tshark is not installed
// every view is nil, and crossCheckViews skips the comparison (fails it in
// CI) in each case's own test, after the case's other checks.
func tsharkViews(t *testing.T, cases []viewCase) []map[int]wiresharkView {
	t.Helper()
	out := make([]map[int]wiresharkView, len(cases))
	if _, err := exec.LookPath("tshark"); err != nil {
		return out
	}
	rows := tsharkCaseRows(t, cases, "tcp", viewFields())
	for i := range cases {
		out[i] = viewsOf(t, rows[i])
	}
	return out
}

// tsharkCaseConns is tsharkConns of each case, all read in one run of
// tshark (see tsharkCaseRows).
func tsharkCaseConns(t *testing.T, cases []viewCase, dirs map[int]Dir) []map[int]*tsharkConn {
	t.Helper()
	rows := tsharkCaseRows(t, cases, "tcp && !icmp && !icmpv6", connFields)
	out := make([]map[int]*tsharkConn, len(cases))
	for i := range cases {
		out[i] = connsOf(t, rows[i], dirs)
	}
	return out
}

// tsharkCaseRows runs tshark once on the frames of all the cases and
// returns each case's rows as tsharkRows gives them of a file that holds
// that case alone. fields must begin with frame.number and tcp.stream: in
// a case's rows the frame number counts from 1 within the case, and the
// stream from 0 (a frame without one keeps it empty).
//
// The cases follow one another in one file: a pcap when they share a link
// type, else a pcapng with an interface for each link type. Each case
// begins an hour after the previous one ends (its times moved by whole
// seconds), so no timer of Wireshark's spans two cases. The cases must not
// share a connection: give each its own endpoints (caseEndpoints). A tshark
// stream that two cases share, or a case whose streams do not all come
// after the previous cases', fails the test.
func tsharkCaseRows(t *testing.T, cases []viewCase, filter string, fields []string) [][][]string {
	t.Helper()
	if len(fields) < 2 || fields[0] != "frame.number" || fields[1] != "tcp.stream" {
		t.Fatalf("tsharkCaseRows: fields %q do not begin with frame.number and tcp.stream", fields)
	}
	var (
		all   []capturedFrame
		lts   []layers.LinkType // each frame's
		start = make([]int, len(cases)+1)
		last  time.Time
	)
	for i, c := range cases {
		start[i] = len(all)
		var shift time.Duration
		if i > 0 && len(c.frames) > 0 {
			first := c.frames[0].ci.Timestamp
			for _, f := range c.frames {
				if f.ci.Timestamp.Before(first) {
					first = f.ci.Timestamp
				}
			}
			shift = (last.Sub(first) + time.Hour).Truncate(time.Second) + time.Second
		}
		for _, f := range c.frames {
			f.ci.Timestamp = f.ci.Timestamp.Add(shift)
			if f.ci.Timestamp.After(last) {
				last = f.ci.Timestamp
			}
			all = append(all, f)
			lts = append(lts, c.lt)
		}
	}
	start[len(cases)] = len(all)
	dir := t.TempDir()
	var path string
	if ifaces := linkIndexes(lts); len(ifaces) == 1 || len(lts) == 0 {
		path = filepath.Join(dir, "case.pcap")
		lt := layers.LinkTypeEthernet
		if len(lts) > 0 {
			lt = lts[0]
		}
		writePcap(t, path, lt, false, all)
	} else {
		path = filepath.Join(dir, "cases.pcapng")
		writePcapngLinks(t, path, lts, ifaces, all)
	}
	rows, err := tsharkRows(testenv.Tool(t, "tshark"), path, filter, fields)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][][]string, len(cases))
	k, lo, hi, prevMax := 0, -1, -1, -1
	// rebase ends case k: its streams count from 0.
	rebase := func() {
		if lo >= 0 && lo <= prevMax {
			t.Fatalf("tshark case %d: stream %d is also in an earlier case: give each case endpoints of its own", k, lo)
		}
		for _, row := range out[k] {
			if row[1] != "" {
				s, _ := strconv.Atoi(row[1])
				row[1] = strconv.Itoa(s - lo)
			}
		}
		prevMax = max(prevMax, hi)
		lo, hi = -1, -1
	}
	for _, row := range rows {
		frame, err := strconv.Atoi(row[0])
		if err != nil || frame < 1 || frame > len(all) {
			t.Fatalf("tshark %s: frame number %q", path, row[0])
		}
		for frame > start[k+1] {
			rebase()
			k++
		}
		row[0] = strconv.Itoa(frame - start[k])
		if row[1] != "" {
			s, err := strconv.Atoi(row[1])
			if err != nil {
				t.Fatalf("tshark %s: frame %d: stream %q", path, frame, row[1])
			}
			if lo < 0 || s < lo {
				lo = s
			}
			hi = max(hi, s)
		}
		out[k] = append(out[k], row)
	}
	rebase()
	return out
}

// linkIndexes numbers the link types of lts in the order they first come.
func linkIndexes(lts []layers.LinkType) map[layers.LinkType]int {
	idx := map[layers.LinkType]int{}
	for _, lt := range lts {
		if _, ok := idx[lt]; !ok {
			idx[lt] = len(idx)
		}
	}
	return idx
}

// writePcapngLinks writes frames into a new pcapng file at path, frame i
// on the interface of link type lts[i] (numbered by ifaces).
func writePcapngLinks(t *testing.T, path string, lts []layers.LinkType, ifaces map[layers.LinkType]int, frames []capturedFrame) {
	t.Helper()
	byIndex := make([]layers.LinkType, len(ifaces))
	for lt, i := range ifaces {
		byIndex[i] = lt
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w, err := pcapgo.NewNgWriterInterface(bw, pcapgo.NgInterface{LinkType: byIndex[0], SnapLength: 262144}, pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, lt := range byIndex[1:] {
		if _, err := w.AddInterface(pcapgo.NgInterface{LinkType: lt, SnapLength: 262144}); err != nil {
			t.Fatal(err)
		}
	}
	for i, fr := range frames {
		ci := fr.ci
		ci.InterfaceIndex = ifaces[lts[i]]
		if err := w.WritePacket(ci, fr.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// stepCase is the k-th case of a table tshark reads in one file: the
// conversation of steps at that case's own endpoints (caseEndpoints),
// and its frames.
func stepCase(tb testing.TB, steps []step, k int) (conv, viewCase) {
	tb.Helper()
	c := conv{steps: steps}
	c.client, c.server = caseEndpoints(tb, false, k)
	return c, viewCase{c.link.linkType(), c.frames(tb, 0)}
}

// caseEndpoints returns the endpoints of the k-th case of a table whose
// cases tshark reads in one file (tsharkViews): the server's are the
// default, the client's address is the k-th of its own range (10.128.0.0/16
// or 2001:db8::1:0/112), its port the default.
func caseEndpoints(tb testing.TB, v6 bool, k int) (client, server netip.AddrPort) {
	tb.Helper()
	if k < 0 || k > 0xffff {
		tb.Fatalf("caseEndpoints: case %d out of range", k)
	}
	client, server = endpoints(v6)
	if v6 {
		a := netip.MustParseAddr("2001:db8::1:0").As16()
		a[14], a[15] = byte(k>>8), byte(k)
		return netip.AddrPortFrom(netip.AddrFrom16(a), client.Port()), server
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 128, byte(k >> 8), byte(k)}), client.Port()), server
}
