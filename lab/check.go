package lab

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/property"
	"github.com/tcplab/tcplab/lab/report"
)

// CheckFile matches the TCP segments of a capture file, made by any tool of
// any program, against a scenario's expected steps.
func CheckFile(path string, sc *Scenario, opt Options, mo expect.Options) (expect.Verdict, error) {
	pkts, _, err := readTCP(path)
	if err != nil {
		return expect.Verdict{}, err
	}
	return expect.Match(sc.Name, sc.Steps(opt), pkts, mo), nil
}

// readTCP reads a capture file's TCP packets, annotated, without their
// bytes, and counts its frames. It keeps every packet: it serves the
// scenario matcher, which is run on a lab's small captures.
func readTCP(path string) ([]capture.Packet, int, error) {
	f, err := capture.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var pkts []capture.Packet
	n, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		if p.TCP {
			q := *p
			q.Data = nil // the judges need the annotation, not the bytes
			pkts = append(pkts, q)
		}
		return nil
	})
	return pkts, n.Frames, err
}

// CheckRequest says what to check in a capture: a scenario's steps, or
// properties of its connections, or both, on every connection or on those
// selected.
type CheckRequest struct {
	Scenario   *Scenario // nil: no scenario
	Options    Options   // for the scenario's steps
	Strict     bool      // connections the scenario does not mention fail it
	Properties []property.Property
	Stream     int // only this stream; below zero: every stream
	Port       int // only connections with this port at either end; 0: every one
	// Command, when set, is the command whose whole run the capture holds
	// (check -- COMMAND): a capture with no filter that lost nothing at
	// its end, so an empty one says that the command made no connection.
	Command string
	// OnConn, when set, gets the verdict of each connection as soon as
	// it is known, in stream order, and FileVerdict.Conns stays empty:
	// memory then grows with the connections open at once (and those
	// that ended behind one still open), not with the capture.
	OnConn func(ConnVerdict)
}

// FileVerdict is what Check found in one capture file.
//
// Its fields are in the order check -json writes them as it goes: those
// known only at the end of the file come after its connections.
type FileVerdict struct {
	File  string        `json:"file"`
	Conns []ConnVerdict `json:"connections,omitempty"`
	// Scenarios holds the scenario's verdict: one per connection for a
	// scenario about one connection, else one for the whole capture.
	Scenarios []ScenarioVerdict `json:"scenario,omitempty"`
	Pass      bool              `json:"pass"`
	Error     string            `json:"error,omitempty"` // the file could not be judged, or not whole: unreadable, cut short, nothing to check
	Frames    int               `json:"frames"`
	judged    int               // connection verdicts, those handed to OnConn included
}

// ConnVerdict is the verdict of the properties on one connection.
type ConnVerdict struct {
	Name      string            `json:"name"`
	Stream    int               `json:"stream"`
	Client    string            `json:"client"`
	Server    string            `json:"server"`
	Segments  int               `json:"segments"`
	Truncated int               `json:"truncated,omitempty"` // segments whose header the snap length cut
	Results   []property.Result `json:"results"`
}

// ScenarioVerdict is the verdict of a scenario's steps on a capture, or
// on one connection of it.
type ScenarioVerdict struct {
	Name       string            `json:"name"`
	Connection string            `json:"connection,omitempty"` // the connection judged; "" for the whole capture
	Problem    string            `json:"problem,omitempty"`    // why it could not be matched, when it could not`
	Pass       bool              `json:"pass"`
	Steps      int               `json:"steps"`
	Mismatches []expect.Mismatch `json:"mismatches,omitempty"`
}

// Check judges one capture file as req asks. A file that cannot be read,
// or holds no connection to judge, gets an Error and fails.
//
// It reads the file once and judges each connection as its segments go
// by (property.Judge), so its time is linear in the capture and its memory
// bounded by the connections open at once: a connection's verdict is
// given once it has been closed for capture.Linger of capture time (the
// annotator then forgets it), or at the end of the file. The verdicts are
// kept in FileVerdict.Conns (about a kilobyte each), unless req.OnConn
// takes them. With a scenario, the packets of the selected connections
// are kept for the matcher: scenarios are matched on small captures.
func Check(path string, req CheckRequest) FileVerdict {
	f, err := capture.Open(path)
	if err != nil {
		return FileVerdict{File: path, Error: err.Error()}
	}
	defer f.Close()
	return checkSource(path, f, req)
}

// checkSource judges the capture src, named name, as Check does.
func checkSource(name string, src capture.Source, req CheckRequest) FileVerdict {
	ck := &checker{req: req, v: FileVerdict{File: name}, open: map[int]*connCheck{}, done: map[int]ConnVerdict{}}
	v := &ck.v
	a := capture.NewAnnotator()
	a.EvictClosed(func(s *capture.ConnSummary) { ck.finish(s.Stream) })
	n, err := capture.Walk(src, a, ck.add)
	v.Frames = n.Frames
	if err != nil && n.TCP == 0 {
		return FileVerdict{File: name, Frames: n.Frames, Error: err.Error()}
	}
	// A file cut short, or damaged after its first TCP segment, is judged
	// on what could be read of it, and fails saying why: the verdicts of
	// its connections may be out already (OnConn).
	cut := err
	if ck.streams == 0 {
		v.Error = noTCP(n.Frames, req.Command)
		return *v
	}
	if !ck.any {
		have := strings.Join(ck.have, "; ")
		if more := ck.streams - len(ck.have); more > 0 {
			have += fmt.Sprintf("; and %d more", more)
		}
		v.Error = fmt.Sprintf("no connection %s; the capture has: %s", selection(req), have)
		return *v
	}
	for _, s := range slices.Sorted(maps.Keys(ck.open)) {
		ck.finish(s)
	}
	v.Pass = !ck.failed
	if sc := req.Scenario; sc != nil {
		keep := ck.scen
		slices.SortFunc(keep, func(x, y property.Conn) int { return x.Stream - y.Stream })
		steps := sc.Steps(req.Options)
		if expect.Streams(steps) <= 1 {
			// A scenario of one connection judges each connection alone.
			for _, c := range keep {
				sv := matchScenario(sc.Name, steps, []property.Conn{c}, req.Strict)
				sv.Connection = c.Name()
				v.Scenarios = append(v.Scenarios, sv)
			}
		} else {
			v.Scenarios = append(v.Scenarios, matchScenario(sc.Name, steps, keep, req.Strict))
		}
		for _, sv := range v.Scenarios {
			v.Pass = v.Pass && sv.Pass
		}
	}
	if cut != nil {
		v.Pass, v.Error = false, cut.Error()
	}
	return *v
}

// maxNames bounds the connections named when none is selected.
const maxNames = 100

// checker follows the connections of one capture for Check.
type checker struct {
	req     CheckRequest
	v       FileVerdict
	start   time.Time // of the first TCP segment
	streams int       // streams seen, numbered 0, 1, ... as they appear
	any     bool      // a connection was selected
	failed  bool      // a property failed on one
	have    []string  // while none is: the connections' names, the first maxNames
	open    map[int]*connCheck
	// done holds the verdicts of connections that ended before one
	// opened earlier; next is the stream whose verdict is due.
	done map[int]ConnVerdict
	next int
	scen []property.Conn // with a scenario: the selected connections
}

// connCheck is what Check keeps of one selected connection while it is
// open.
type connCheck struct {
	cv    ConnVerdict
	judge *property.Judge
	conn  *property.Conn // with a scenario: its packets
}

// add takes the next packet of the capture.
func (ck *checker) add(p *capture.Packet) error {
	if !p.TCP {
		return nil
	}
	s := p.Annotation.Stream
	if ck.streams == 0 {
		ck.start = p.Info.Timestamp
	}
	if s == ck.streams {
		ck.streams++
		ck.begin(p)
	}
	c := ck.open[s]
	if c == nil {
		return nil
	}
	c.cv.Segments++
	if p.Segment.Problem == capture.HeaderCut {
		c.cv.Truncated++
	}
	if c.judge != nil {
		c.judge.Add(p)
	}
	if c.conn != nil {
		q := *p
		q.Data = nil // the matcher needs the annotation, not the bytes
		c.conn.Packets = append(c.conn.Packets, q)
	}
	return nil
}

// begin starts following the connection that p opens, when it is
// selected.
func (ck *checker) begin(p *capture.Packet) {
	c := property.Conn{Stream: p.Annotation.Stream, Client: p.Segment.Src, Server: p.Segment.Dst}
	if p.Annotation.Dir == capture.ServerToClient {
		c.Client, c.Server = c.Server, c.Client
	}
	req := &ck.req
	if (req.Stream >= 0 && c.Stream != req.Stream) || (req.Port != 0 && int(c.Client.Port()) != req.Port && int(c.Server.Port()) != req.Port) {
		if !ck.any && len(ck.have) < maxNames {
			ck.have = append(ck.have, c.Name())
		}
		ck.flush()
		return
	}
	ck.any, ck.have = true, nil
	cc := &connCheck{cv: ConnVerdict{Name: c.Name(), Stream: c.Stream, Client: c.Client.String(), Server: c.Server.String()}}
	if len(req.Properties) > 0 {
		cc.judge = property.NewJudge(req.Properties, ck.start)
	}
	if req.Scenario != nil {
		cc.conn = &c
	}
	ck.open[c.Stream] = cc
}

// finish judges the connection of stream s, if it is followed, now that
// it has ended.
func (ck *checker) finish(s int) {
	c := ck.open[s]
	if c == nil {
		return
	}
	delete(ck.open, s)
	if c.conn != nil {
		ck.scen = append(ck.scen, *c.conn)
	}
	if c.judge == nil {
		return
	}
	cv := c.cv
	cv.Results = c.judge.Results()
	for i := range cv.Results {
		r := &cv.Results[i]
		if cv.Truncated > 0 {
			// Fields past the cut are unknown: no verdict either way.
			*r = property.Result{Property: r.Property, Detail: cutText(cv.Truncated, cv.Segments)}
		}
		ck.failed = ck.failed || !r.Pass
	}
	ck.done[s] = cv
	ck.flush()
}

// flush hands out the verdicts due, in stream order: each one once the
// connections opened before it have theirs.
func (ck *checker) flush() {
	for ; ck.next < ck.streams; ck.next++ {
		if _, open := ck.open[ck.next]; open {
			return
		}
		cv, ok := ck.done[ck.next]
		if !ok {
			continue // not selected
		}
		delete(ck.done, ck.next)
		ck.v.judged++
		if ck.req.OnConn != nil {
			ck.req.OnConn(cv)
		} else {
			ck.v.Conns = append(ck.v.Conns, cv)
		}
	}
}

// noTCP says why a capture of frames frames without a TCP segment has
// nothing to check: a capture of command's run, or a file of any tool's.
func noTCP(frames int, command string) string {
	if command != "" {
		return fmt.Sprintf("no TCP segment in its %d frames: nothing to check (%s made no TCP connection on its loopback)", frames, command)
	}
	return fmt.Sprintf("no TCP segment in its %d frames: nothing to check (is the capture filter right? "+
		"or did the capturing tool stop before it wrote its buffer? tcpdump needs --immediate-mode and -U)", frames)
}

// matchScenario matches the steps against the connections conns, numbered
// again from 0 in order, as the scenario numbers them. A connection that
// the capture shows without its handshake gets a verdict that says so,
// rather than a failure at step 1.
func matchScenario(name string, steps []expect.Step, conns []property.Conn, strict bool) ScenarioVerdict {
	sv := ScenarioVerdict{Name: name, Steps: len(steps)}
	var sel []capture.Packet
	for _, c := range conns {
		if cut := truncated(c.Packets); cut > 0 {
			sv.Problem = cutText(cut, len(c.Packets))
			return sv
		}
	}
	for n, c := range conns {
		if f := c.Packets[0].Segment.Flags; f&(capture.SYN|capture.ACK) != capture.SYN {
			sv.Problem = fmt.Sprintf("%s begins in the middle of the connection (its first segment is %s %s, frame %d): "+
				"a scenario is matched from the handshake, so start the capture before the connection opens",
				c.Name(), c.Packets[0].Annotation.Dir, f, c.Packets[0].Segment.Frame)
			return sv
		}
		for _, p := range c.Packets {
			p.Annotation.Stream = n
			sel = append(sel, p)
		}
	}
	slices.SortStableFunc(sel, func(a, b capture.Packet) int { return a.Segment.Frame - b.Segment.Frame })
	mv := expect.Match(name, steps, sel, expect.Options{IgnoreOtherStreams: !strict})
	sv.Pass, sv.Mismatches = mv.Pass, mv.Mismatches
	return sv
}

// cutText says why a connection cut by the snap length is not judged.
func cutText(cut, all int) string {
	return fmt.Sprintf("%d of its %d segments were cut inside the TCP header by the capture's snap length, so it cannot be judged: capture with a larger snap length (tcpdump -s 0)", cut, all)
}

// truncated counts the packets whose TCP header the snap length cut.
func truncated(pkts []capture.Packet) int {
	n := 0
	for i := range pkts {
		if pkts[i].Segment.Problem == capture.HeaderCut {
			n++
		}
	}
	return n
}

// selection says which connections req selects.
func selection(req CheckRequest) string {
	var s []string
	if req.Stream >= 0 {
		s = append(s, fmt.Sprintf("stream %d", req.Stream))
	}
	if req.Port != 0 {
		s = append(s, fmt.Sprintf("on port %d", req.Port))
	}
	return strings.Join(s, " ")
}

// JUnit turns verdicts into a JUnit report: a suite per file, a case per
// connection and property, and one for the scenario.
func JUnit(verdicts []FileVerdict) *report.JUnit {
	j := &report.JUnit{Name: "tcplab check"}
	for i := range verdicts {
		v := &verdicts[i]
		s := report.JUnitSuite{Name: v.File}
		if c := errorCase(v); c != nil {
			s.Cases = append(s.Cases, *c)
		}
		for i := range v.Conns {
			s.Cases = append(s.Cases, connCases(v.File, &v.Conns[i])...)
		}
		s.Cases = append(s.Cases, scenarioCases(v)...)
		j.Suites = append(j.Suites, s)
	}
	return j
}

// RunJUnit turns the results of a run into a JUnit report: one suite, a
// case per scenario.
func RunJUnit(results []Result) *report.JUnit {
	s := report.JUnitSuite{Name: "tcplab run"}
	for _, r := range results {
		jc := report.JUnitCase{Name: r.Scenario, Classname: "tcplab.run", Time: r.Seconds, SystemOut: r.Dir}
		if f := strings.TrimRight(r.Failure(), "\n"); !r.Pass {
			msg := strings.SplitN(f, "\n", 2)[0]
			if r.Interrupted {
				msg = "interrupted: " + msg
			}
			jc.Failure = &report.JUnitProblem{Message: msg, Type: "scenario", Text: f}
		}
		s.Cases = append(s.Cases, jc)
	}
	return &report.JUnit{Name: "tcplab run", Suites: []report.JUnitSuite{s}}
}
