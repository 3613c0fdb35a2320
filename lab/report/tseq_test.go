package report

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/expect"
)

// The real captures the time-sequence graph is tested on.
const (
	fixtureRetrans     = "../../capture/testdata/retrans.pcap"                // two connections, retransmissions, SACK
	fixtureZeroWindow  = "../../capture/testdata/zero-window.pcap"            // zero windows and their probes
	fixtureKeepAlive   = "../../capture/testdata/http-keepalive.pcap"         // two requests and responses
	fixtureHandshake   = "../../capture/testdata/handshake.pcap"              // no data at all
	fixtureWalkthrough = "../../scenarios/testdata/readme-walkthrough.pcapng" // a run of the walkthrough scenario
)

// annotated returns the packets of a capture file as capture.Walk
// annotates them, without their bytes; stream, when not -1, keeps only
// that connection's segments.
func annotated(t *testing.T, path string, stream int) []capture.Packet {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	defer src.Close()
	var pkts []capture.Packet
	if _, err := capture.Walk(src, capture.NewAnnotator(), func(p *capture.Packet) error {
		if stream < 0 || (p.TCP && p.Annotation.Stream == stream) {
			q := *p
			q.Data = nil
			pkts = append(pkts, q)
		}
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pkts
}

// tseqPanel is what one plot of a parsed graph shows.
type tseqPanel struct {
	heading        string
	xTicks, yTicks []float64 // the labels' values, in document order
	yTickPos       []float64 // the y labels' positions
	xAxis, yAxis   string
	ack            [][2]float64 // the ACK line's points
}

// readTimeSequence parses a graph: its marks' segments summed by class,
// how many marks, and its panels.
func readTimeSequence(t *testing.T, doc []byte) (counts map[string]int, marks int, panels []*tseqPanel) {
	t.Helper()
	svg := parseSVG(t, doc)
	if root := svg[0]; root.name != "svg" || root.attr["viewBox"] != "0 0 "+root.attr["width"]+" "+root.attr["height"] {
		t.Errorf("root <%s> width=%q height=%q viewBox=%q: want an svg with a matching viewBox", root.name, root.attr["width"], root.attr["height"], root.attr["viewBox"])
	}
	counts = map[string]int{}
	var p *tseqPanel
	number := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Errorf("tick label %q is not a number", s)
		}
		return v
	}
	for _, e := range svg {
		class := e.attr["class"]
		switch {
		case e.name == "script" || e.name == "foreignObject" || e.attr["href"] != "":
			t.Errorf("the graph is not self-contained: <%s>", e.name)
		case e.name == "text" && class == "panel":
			p = &tseqPanel{heading: e.text}
			panels = append(panels, p)
		case p == nil:
		case class == "tick x":
			p.xTicks = append(p.xTicks, number(e.text))
		case class == "tick y":
			p.yTicks = append(p.yTicks, number(e.text))
			p.yTickPos = append(p.yTickPos, number(e.attr["y"]))
		case class == "axis x":
			p.xAxis = e.text
		case class == "axis y":
			p.yAxis = e.text
		case class == "ack":
			for _, pt := range strings.Fields(e.attr["points"]) {
				x, y, _ := strings.Cut(pt, ",")
				p.ack = append(p.ack, [2]float64{number(x), number(y)})
			}
		case e.attr["data-count"] != "" && e.name != "polyline":
			n, err := strconv.Atoi(e.attr["data-count"])
			if err != nil || n < 1 {
				t.Errorf("<%s class=%q> data-count=%q", e.name, class, e.attr["data-count"])
			}
			counts[class] += n
			marks++
		}
	}
	return counts, marks, panels
}

func TestTimeSequence(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		stream int
		// Segments by the class of their marks. The counts agree with
		// tcplab annotate -summary's labels: retrans.pcap's stream 0 has 15
		// retransmissions, one of them fast, and 6 out of order.
		want     map[string]int
		headings []string
		xUnit    string   // in the time axis's name
		yUnits   []string // in each panel's sequence axis's name
	}{{
		name: "retransmissions", file: fixtureRetrans, stream: 0,
		want:     map[string]int{"seg data": 738, "seg retransmission": 14, "seg fast-retransmission": 1, "seg out-of-order": 6, "sack": 18},
		headings: []string{"client to server 127.0.0.1:40000 → 127.0.0.1:8080"},
		xUnit:    "(s)", yUnits: []string{"(MiB)"},
	}, {
		name: "two connections", file: fixtureRetrans, stream: -1,
		want:     map[string]int{"seg data": 1464, "seg retransmission": 14, "seg fast-retransmission": 9, "seg out-of-order": 6, "sack": 18},
		headings: []string{"connection 0: client to server 127.0.0.1:40000 → 127.0.0.1:8080", "connection 1: client to server 127.0.0.1:40001 → 127.0.0.1:8080"},
		xUnit:    "(s)", yUnits: []string{"(MiB)", "(MiB)"},
	}, {
		name: "zero window", file: fixtureZeroWindow, stream: -1,
		want:     map[string]int{"seg data": 363, "zero-window": 3},
		headings: []string{"client to server 127.0.0.1:40000 → 127.0.0.1:8080"},
		xUnit:    "(s)", yUnits: []string{"(KiB)"},
	}, {
		name: "request and response", file: fixtureKeepAlive, stream: -1,
		want:     map[string]int{"seg data": 4},
		headings: []string{"client to server 127.0.0.1:40000 → 127.0.0.1:8080", "server to client 127.0.0.1:8080 → 127.0.0.1:40000"},
		xUnit:    "(s)", yUnits: []string{"(bytes)", "(bytes)"},
	}, {
		name: "walkthrough scenario", file: fixtureWalkthrough, stream: -1,
		want:     map[string]int{"seg data": 7, "zero-window": 1},
		headings: []string{"client to server 127.0.0.1:52956 → 127.0.0.1:8000", "server to client 127.0.0.1:8000 → 127.0.0.1:52956"},
		xUnit:    "(s)", yUnits: []string{"(KiB)", "(bytes)"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts := annotated(t, tt.file, tt.stream)
			doc, err := TimeSequence(filepath.Base(tt.file), pkts, expect.English)
			if err != nil {
				t.Fatal(err)
			}
			counts, marks, panels := readTimeSequence(t, doc)
			for class, n := range tt.want {
				if counts[class] != n {
					t.Errorf("%d segments drawn as %q, want %d", counts[class], class, n)
				}
			}
			for class := range counts {
				if _, ok := tt.want[class]; !ok {
					t.Errorf("%d marks of %q, want none", counts[class], class)
				}
			}
			// Every data segment has its bar, whatever its kind.
			data, drawn := 0, 0
			for i := range pkts {
				if pkts[i].TCP && pkts[i].Segment.Len > 0 {
					data++
				}
			}
			for class, n := range counts {
				if strings.HasPrefix(class, "seg ") {
					drawn += n
				}
			}
			if drawn != data {
				t.Errorf("%d segments drawn, the capture has %d data segments", drawn, data)
			}
			var headings []string
			for _, p := range panels {
				headings = append(headings, p.heading)
			}
			if !slices.Equal(headings, tt.headings) {
				t.Errorf("panels %q, want %q", headings, tt.headings)
			}
			for i, p := range panels {
				checkAxes(t, p, tt.xUnit, tt.yUnits[min(i, len(tt.yUnits)-1)])
				checkACKLine(t, p)
			}
			if data > 100 && marks >= data/2 {
				t.Errorf("%d marks for %d data segments: bars less than a pixel apart were not merged", marks, data)
			}
		})
	}
}

// checkAxes checks a panel's axes: named with their units, at least three
// ticks each, increasing from zero or more, the sequence axis upwards.
func checkAxes(t *testing.T, p *tseqPanel, xUnit, yUnit string) {
	t.Helper()
	if !strings.HasPrefix(p.xAxis, "time since the connection's first segment ") || !strings.HasSuffix(p.xAxis, xUnit) {
		t.Errorf("%s: time axis %q, want its unit %s", p.heading, p.xAxis, xUnit)
	}
	if !strings.HasPrefix(p.yAxis, "relative sequence number ") || !strings.HasSuffix(p.yAxis, yUnit) {
		t.Errorf("%s: sequence axis %q, want its unit %s", p.heading, p.yAxis, yUnit)
	}
	for _, a := range []struct {
		name  string
		ticks []float64
	}{{"time", p.xTicks}, {"sequence", p.yTicks}} {
		if len(a.ticks) < 3 || len(a.ticks) > 15 || a.ticks[0] < 0 || !slices.IsSorted(a.ticks) || slices.Compact(slices.Clone(a.ticks)) == nil ||
			len(slices.Compact(slices.Clone(a.ticks))) != len(a.ticks) {
			t.Errorf("%s: %s ticks %v: want 3 to 15 labels, increasing from zero or more", p.heading, a.name, a.ticks)
		}
	}
	for i := 1; i < len(p.yTickPos); i++ {
		if p.yTickPos[i] >= p.yTickPos[i-1] {
			t.Errorf("%s: the sequence axis's labels do not go up: %v", p.heading, p.yTickPos)
			break
		}
	}
}

// checkACKLine checks that the ACK line goes right and never down: a
// cumulative ACK does not go back.
func checkACKLine(t *testing.T, p *tseqPanel) {
	t.Helper()
	if len(p.ack) < 2 {
		t.Errorf("%s: ACK line of %d points", p.heading, len(p.ack))
		return
	}
	for i := 1; i < len(p.ack); i++ {
		// Up the page is down in pixels.
		if p.ack[i][0] < p.ack[i-1][0] || p.ack[i][1] > p.ack[i-1][1] {
			t.Errorf("%s: the ACK line goes back at point %d: %v then %v", p.heading, i, p.ack[i-1], p.ack[i])
			return
		}
	}
}

// TestTimeSequenceNoData: a capture whose segments carry no data has no
// graph, and says so with ErrNoData.
func TestTimeSequenceNoData(t *testing.T) {
	for _, pkts := range [][]capture.Packet{nil, annotated(t, fixtureHandshake, -1)} {
		if doc, err := TimeSequence("x", pkts, expect.English); !errors.Is(err, ErrNoData) || doc != nil {
			t.Errorf("%d packets without data: %d bytes, error %v; want ErrNoData", len(pkts), len(doc), err)
		}
	}
}

// TestTimeSequenceEscapes: the title cannot break the document.
func TestTimeSequenceEscapes(t *testing.T) {
	doc, err := TimeSequence(`<script>&"'`, annotated(t, fixtureKeepAlive, -1), expect.English)
	if err != nil {
		t.Fatal(err)
	}
	readTimeSequence(t, doc)
	if strings.Contains(string(doc), "<script>") {
		t.Error("the title made a <script> element")
	}
}

// TestWriteTimeSequence: report.Write leaves tseq.svg beside the ladder
// of a run whose capture carries data, and none otherwise; index.html
// links it where it is and does not call it missing where it is not.
func TestWriteTimeSequence(t *testing.T) {
	out := t.TempDir()
	var results []Result
	for _, c := range []struct {
		name, file string
		graph      bool
	}{{"http", fixtureKeepAlive, true}, {"handshake", fixtureHandshake, false}, {"walkthrough", fixtureWalkthrough, true}} {
		pkts := annotated(t, c.file, -1)
		src, err := capture.Open(c.file)
		if err != nil {
			t.Fatal(err)
		}
		link := src.LinkType()
		src.Close()
		r := Result{Scenario: c.name, Pass: true, Dir: filepath.Join(out, c.name)}
		if err := os.MkdirAll(r.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		v := &expect.Verdict{Pass: true, StepOf: make([]expect.StepNum, len(pkts)), Why: make([]*expect.Step, len(pkts))}
		if err := Write(openDir(t, r.Dir), &Run{Result: &r, Verdict: v, Packets: pkts, Link: link}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, err = os.Stat(filepath.Join(r.Dir, TimeSeqFile))
		if got := err == nil; got != c.graph {
			t.Errorf("%s: %s written: %v, want %v", c.name, TimeSeqFile, got, c.graph)
		}
		results = append(results, r)
	}
	if err := WriteIndex(out, results, expect.English); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	var links, missing []string
	page := string(b)
	for _, name := range []string{"http", "handshake", "walkthrough"} {
		if strings.Contains(page, `href="`+name+`/`+TimeSeqFile+`"`) {
			links = append(links, name)
		}
	}
	if strings.Contains(page, ">"+TimeSeqFile+"</span>") {
		missing = append(missing, TimeSeqFile)
	}
	if want := []string{"http", "walkthrough"}; !slices.Equal(links, want) || missing != nil {
		t.Errorf("index.html links %s of %q (want %q), shows it missing %d times (want 0)", TimeSeqFile, links, want, len(missing))
	}
	if i, j := strings.Index(page, `href="http/`+LadderFile+`"`), strings.Index(page, `href="http/`+TimeSeqFile+`"`); i < 0 || j < i {
		t.Errorf("index.html does not list %s right after %s", TimeSeqFile, LadderFile)
	}
}

// TestTimeSequenceInChromium renders the graphs of a run of the
// walkthrough scenario and of retrans.pcap in a real browser and checks
// that the plot was drawn: ink, and the colours of the data bars, the ACK
// line, the window edge and the retransmissions.
func TestTimeSequenceInChromium(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("skipping test; it starts a browser, and -short is set")
	}
	chromium := testenv.Tool(t, "chromium")
	for _, c := range []struct {
		file    string
		stream  int
		retrans bool
	}{{fixtureWalkthrough, -1, false}, {fixtureRetrans, 0, true}} {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			doc, err := TimeSequence(filepath.Base(c.file), annotated(t, c.file, c.stream), expect.Chinese)
			if err != nil {
				t.Fatal(err)
			}
			page := filepath.Join(t.TempDir(), TimeSeqFile)
			if err := os.WriteFile(page, doc, 0o644); err != nil {
				t.Fatal(err)
			}
			shot, img := screenshot(t, chromium, page, tseqWidth, 1000)
			data, ack, window, red := rgbOf(colourArrow), rgbOf(colourTseqACK), rgbOf(colourTseqWindow), rgbOf(colourBad)
			var ink, nData, nACK, nWindow, nRed, total int
			b := img.Bounds()
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					r32, g32, b32, _ := img.At(x, y).RGBA()
					px := rgb{int(r32 >> 8), int(g32 >> 8), int(b32 >> 8)}
					total++
					if px.r < 235 || px.g < 235 || px.b < 235 {
						ink++
					}
					switch {
					case px.near(data):
						nData++
					case px.near(ack):
						nACK++
					case px.near(window):
						nWindow++
					case px.near(red):
						nRed++
					}
				}
			}
			t.Logf("screenshot %s: %v: %d of %d pixels not white, %d data blue, %d ACK green, %d window yellow, %d red",
				shot, b.Size(), ink, total, nData, nACK, nWindow, nRed)
			if ink < total/50 {
				t.Errorf("the screenshot is nearly blank: %d of %d pixels are not white", ink, total)
			}
			// The legend alone has some 30 pixels of each colour; the
			// lines across a plot are hundreds.
			if nACK < 300 || nWindow < 300 {
				t.Errorf("%d pixels of the ACK line's green, %d of the window edge's yellow: the lines were not drawn", nACK, nWindow)
			}
			if nData < 60 {
				t.Errorf("%d pixels of the data bars' blue: the bars were not drawn", nData)
			}
			if c.retrans && nRed < 60 {
				t.Errorf("%d red pixels: the retransmissions were not drawn", nRed)
			}
		})
	}
}
