package report

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestJUnitStreamIsMarshal: a report streamed case by case, prepended
// cases included, is byte for byte the report Marshal writes of the same
// suites, for suites with failures, errors, skips, times, text that XML
// must escape, an empty suite and none at all; the scratch file leaves
// nothing in the folder.
func TestJUnitStreamIsMarshal(t *testing.T) {
	pass := JUnitCase{Name: `stream 0: a <-> b: no-rst`, Classname: "x.pcap", SystemOut: "3 segments"}
	fail := JUnitCase{Name: "stream 1: c: handshake", Classname: "x.pcap", Time: 0.25,
		Failure: &JUnitProblem{Message: `S>C RST "early" & <soon>`, Type: "property", Text: "line 1\n  > line 2\ttab"}}
	read := JUnitCase{Name: "read x.pcap", Classname: "x.pcap", Error: &JUnitProblem{Message: "file is truncated", Type: "capture"}}
	skip := JUnitCase{Name: "p.pkt", Classname: "pkt", Skipped: &JUnitProblem{Message: "p.pkt:4: not played"}}
	type suite struct {
		name        string
		first, rest []JUnitCase // first: prepended after the rest was added
	}
	tests := []struct {
		name   string
		suites []suite
	}{
		{"none", nil},
		{"empty suite", []suite{{"x.pcap", nil, nil}}},
		{"one", []suite{{"x.pcap", nil, []JUnitCase{pass, fail, pass}}}},
		{"prepended", []suite{{"x.pcap", []JUnitCase{read, pass}, []JUnitCase{fail, fail}}, {"y.pcap", []JUnitCase{read}, nil}}},
		{"three", []suite{{"a", nil, []JUnitCase{skip}}, {"b & <c>", nil, nil}, {"d", []JUnitCase{fail}, []JUnitCase{pass, skip, read}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "junit.xml")
			js, err := NewJUnitStream(path, "tcplab check")
			if err != nil {
				t.Fatal(err)
			}
			j := &JUnit{Name: "tcplab check"}
			for _, s := range tt.suites {
				js.Suite(s.name)
				for _, c := range s.rest {
					js.Add(c)
				}
				js.Prepend(s.first...)
				j.Suites = append(j.Suites, JUnitSuite{Name: s.name, Cases: append(append([]JUnitCase(nil), s.first...), s.rest...)})
			}
			if err := js.Commit(); err != nil {
				t.Fatal(err)
			}
			want, err := j.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("streamed:\n%s\nwant (Marshal):\n%s", got, want)
			}
			if names, _ := os.ReadDir(dir); len(names) != 1 {
				t.Errorf("the folder holds %v: want the report alone", names)
			}
		})
	}
}

// TestJUnitStreamClose: a stream closed without Commit writes nothing
// and leaves no file.
func TestJUnitStreamClose(t *testing.T) {
	dir := t.TempDir()
	js, err := NewJUnitStream(filepath.Join(dir, "junit.xml"), "x")
	if err != nil {
		t.Fatal(err)
	}
	js.Suite("s")
	js.Add(JUnitCase{Name: "c"})
	if err := js.Close(); err != nil {
		t.Fatal(err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("the folder holds %v: want nothing", names)
	}
	if _, err := NewJUnitStream(filepath.Join(dir, "missing", "junit.xml"), "x"); err == nil {
		t.Error("a report in a missing folder: want an error")
	}
}
