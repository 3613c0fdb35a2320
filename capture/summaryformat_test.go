package capture

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var updateSummaries = flag.Bool("updatesummaries", false, "TestSummaryGolden rewrites testdata/summaries.golden")

// summaryCases are connection summaries with every way of ending that
// Ending.String words, and the fields a summary prints only sometimes
// (resumed, retransmitted bytes, a first RTT, labels, cut headers).
func summaryCases() []ConnSummary {
	c4 := netip.MustParseAddrPort("192.0.2.1:40000")
	s4 := netip.MustParseAddrPort("192.0.2.2:80")
	c6 := netip.MustParseAddrPort("[2001:db8::1]:40000")
	s6 := netip.MustParseAddrPort("[2001:db8::2]:443")
	base := func(e Ending) ConnSummary {
		s := ConnSummary{Stream: 7, Client: c4, Server: s4, Segments: 12, History: "ShADadFf", Ending: e,
			ClientState: TimeWait, ServerState: Closed, Completeness: 31,
			DirSegments: [2]int{7, 5}, Bytes: [2]int64{300, 1200}}
		s.zeek = [2]zeekState{zeekClosed, zeekClosed}
		return s
	}
	fin := func(frame, ackedBy int) FINSent { return FINSent{Frame: frame, AckedBy: ackedBy} }
	var out []ConnSummary
	for _, e := range []Ending{
		{FIN: [2]FINSent{fin(8, 9), fin(10, 11)}, First: ClientToServer},
		{FIN: [2]FINSent{fin(10, 11), fin(8, 9)}, First: ServerToClient},
		{FIN: [2]FINSent{fin(0, 0), fin(8, 0)}, First: ServerToClient},
		{FIN: [2]FINSent{fin(8, 0), fin(0, 0)}, First: ClientToServer},
		{FIN: [2]FINSent{fin(8, 9), fin(0, 0)}, First: ClientToServer},
		{FIN: [2]FINSent{fin(4, 6), fin(5, 7)}, First: ClientToServer, Crossed: true},
		{FIN: [2]FINSent{fin(8, 9), fin(12, 13)}, First: ClientToServer, HalfClose: [2]DataAfterFIN{{}, {Frame: 10, Len: 500}}},
		{FIN: [2]FINSent{fin(8, 9), fin(12, 13)}, First: ServerToClient, HalfClose: [2]DataAfterFIN{{Frame: 10, Len: 5}, {Frame: 11, Len: 6}}},
		{FIN: [2]FINSent{fin(0, 0), fin(8, 9)}, First: ServerToClient, Refused: [2]DataAfterFIN{{Frame: 10, Len: 5}, {}},
			Reset: ResetSent{Frame: 11, By: ServerToClient, State: Closed}},
		{Reset: ResetSent{Frame: 2, By: ServerToClient, State: Listen, Peer: SynSent}},
		{Reset: ResetSent{Frame: 9, By: ClientToServer, State: Established}},
		{Reset: ResetSent{Frame: 9, By: ClientToServer}},
		{},
	} {
		out = append(out, base(e))
	}
	// The optional fields, on the first ending.
	e := out[0].Ending
	more := []func(s *ConnSummary){
		func(s *ConnSummary) { s.Resumed = true },
		func(s *ConnSummary) { s.Client, s.Server = c6, s6 },
		func(s *ConnSummary) { s.Retransmitted = [2]int64{100, 0} },
		func(s *ConnSummary) { s.Retransmitted = [2]int64{0, 2896} },
		func(s *ConnSummary) { s.FirstRTT = 28 * time.Microsecond },
		func(s *ConnSummary) { s.FirstRTT = 999 * time.Nanosecond },
		func(s *ConnSummary) { s.FirstRTT = time.Nanosecond },
		func(s *ConnSummary) { s.FirstRTT = 1234567890 * time.Nanosecond },
		func(s *ConnSummary) { s.FirstRTT = 90 * time.Second },
		func(s *ConnSummary) { s.Counts[Retransmission], s.Counts[DupACK], s.Counts[ZeroWindow] = 2, 31, 1 },
		func(s *ConnSummary) {
			for l := range s.Counts {
				s.Counts[l] = int32(l + 1)
			}
		},
		func(s *ConnSummary) { s.Cut = 3 },
		func(s *ConnSummary) { s.Completeness, s.History = 0, "" },
		func(s *ConnSummary) { s.Completeness, s.History = 1|4|16, "^S<d>\"&" },
		func(s *ConnSummary) { s.Stream, s.Segments, s.Bytes = 123456789, 1<<40, [2]int64{1 << 50, 0} },
	}
	for _, m := range more {
		s := base(e)
		m(&s)
		out = append(out, s)
	}
	return out
}

// fixtureSummaries returns the summaries of every connection of the pcap
// fixtures in testdata, each file's in stream order.
func fixtureSummaries(t *testing.T) []ConnSummary {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.pcap*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []ConnSummary
	for _, path := range files {
		f, err := Open(path)
		if err != nil {
			continue // the fixtures of bad files
		}
		a := NewAnnotator()
		Walk(f, a, func(*Packet) error { return nil }) // the fixtures of cut files end in an error
		f.Close()
		out = append(out, a.Conns()...)
	}
	return out
}

// TestSummaryGolden holds Summary's line for the summary cases and every
// connection of the fixtures to testdata/summaries.golden (rewritten
// with -updatesummaries), so that its wording and numbers change only on
// purpose.
func TestSummaryGolden(t *testing.T) {
	var b bytes.Buffer
	for _, s := range append(summaryCases(), fixtureSummaries(t)...) {
		b.WriteString(Summary(&s))
		b.WriteByte('\n')
		if got, want := string(AppendSummary([]byte("x"), &s)), "x"+Summary(&s); got != want {
			t.Errorf("AppendSummary appends\n%q\nnot\n%q", got, want)
		}
	}
	golden := filepath.Join("testdata", "summaries.golden")
	if *updateSummaries {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./capture -run TestSummaryGolden -updatesummaries writes it)", err)
	}
	if got := b.Bytes(); !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if !bytes.Equal(gl[i], wl[i]) {
				t.Fatalf("line %d of %s differs:\ngot  %s\nwant %s", i+1, golden, gl[i], wl[i])
			}
		}
		t.Fatalf("%s has %d lines, Summary gives %d", golden, len(wl), len(gl))
	}
}

// summaryObject is the record AppendSummaryJSON writes, in the order
// and with the names of its fields: TestSummaryJSONIsEncodingJSON holds
// AppendSummaryJSON to what encoding/json writes of it.
type summaryObject struct {
	Stream                   int            `json:"stream"`
	Resumed                  bool           `json:"resumed,omitempty"`
	Client                   string         `json:"client"`
	Server                   string         `json:"server"`
	Segments                 int            `json:"segments"`
	ClientSegments           int            `json:"client_segments"`
	ServerSegments           int            `json:"server_segments"`
	ClientBytes              int64          `json:"client_bytes"`
	ServerBytes              int64          `json:"server_bytes"`
	ClientRetransmittedBytes int64          `json:"client_retransmitted_bytes"`
	ServerRetransmittedBytes int64          `json:"server_retransmitted_bytes"`
	FirstRTT                 *float64       `json:"first_rtt"`
	Completeness             int            `json:"completeness"`
	CompletenessNames        string         `json:"completeness_flags"`
	ConnState                string         `json:"conn_state"`
	History                  string         `json:"history"`
	Closer                   string         `json:"closer"`
	FINsCrossed              bool           `json:"fins_crossed"`
	HalfClose                []string       `json:"half_close"`
	DataAfterClose           []string       `json:"data_after_close"`
	ResetBy                  *string        `json:"reset_by"`
	ResetState               *string        `json:"reset_state"`
	Ending                   string         `json:"ending"`
	ClientState              string         `json:"client_state"`
	ServerState              string         `json:"server_state"`
	Labels                   map[string]int `json:"labels"`
	Cut                      int            `json:"header_cut"`
}

// encodeSummary is encoding/json's line of s's summaryObject.
func encodeSummary(t *testing.T, s *ConnSummary) []byte {
	e := &s.Ending
	v := summaryObject{
		Stream: s.Stream, Resumed: s.Resumed, Client: s.Client.String(), Server: s.Server.String(),
		Segments: s.Segments, ClientSegments: s.DirSegments[0], ServerSegments: s.DirSegments[1],
		ClientBytes: s.Bytes[0], ServerBytes: s.Bytes[1],
		ClientRetransmittedBytes: s.Retransmitted[0], ServerRetransmittedBytes: s.Retransmitted[1],
		Completeness: int(s.Completeness), CompletenessNames: s.Completeness.String(),
		ConnState: s.ConnState().String(), History: s.History,
		Closer: e.Closer().String(), FINsCrossed: e.Crossed,
		HalfClose: []string{}, DataAfterClose: []string{},
		Ending:      e.String(),
		ClientState: s.ClientState.String(), ServerState: s.ServerState.String(),
		Labels: map[string]int{}, Cut: s.Cut,
	}
	if s.FirstRTT > 0 {
		rtt := s.FirstRTT.Seconds()
		v.FirstRTT = &rtt
	}
	for _, d := range [2]Dir{ClientToServer, ServerToClient} {
		if e.HalfClose[d].Frame != 0 {
			v.HalfClose = append(v.HalfClose, Side(d))
		}
		if e.Refused[d].Frame != 0 {
			v.DataAfterClose = append(v.DataAfterClose, Side(d))
		}
	}
	if e.Reset.Frame != 0 {
		by, state := Side(e.Reset.By), e.Reset.State.String()
		v.ResetBy, v.ResetState = &by, &state
	}
	for l := Label(0); l < numLabels; l++ {
		if s.Counts[l] > 0 {
			v.Labels[l.String()] = int(s.Counts[l])
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestSummaryJSONIsEncodingJSON holds AppendSummaryJSON, which writes
// its line byte by byte, to encoding/json's encoding of the same record
// (summaryObject): the escaping of < > & and quotes, floats in e
// notation below a microsecond, labels sorted by name.
func TestSummaryJSONIsEncodingJSON(t *testing.T) {
	for _, s := range append(summaryCases(), fixtureSummaries(t)...) {
		got, want := AppendSummaryJSON([]byte("x"), &s), append([]byte("x"), encodeSummary(t, &s)...)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendSummaryJSON of stream %d writes\n%s\nencoding/json\n%s", s.Stream, got, want)
		}
	}
}
