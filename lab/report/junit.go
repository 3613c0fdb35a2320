package report

import (
	"bytes"
	"encoding/xml"
	"fmt"

	"github.com/tcplab/tcplab/internal/safefile"
)

// JUnit is a JUnit XML report, the format CI systems show test results
// in: one suite per capture file (or per run), one case per connection and
// property, or per scenario.
type JUnit struct {
	XMLName xml.Name     `xml:"testsuites"`
	Name    string       `xml:"name,attr,omitempty"`
	Tests   int          `xml:"tests,attr"`
	Fails   int          `xml:"failures,attr"`
	Errors  int          `xml:"errors,attr"`
	Suites  []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one testsuite element.
type JUnitSuite struct {
	Name   string      `xml:"name,attr"`
	Tests  int         `xml:"tests,attr"`
	Fails  int         `xml:"failures,attr"`
	Errors int         `xml:"errors,attr"`
	Skips  int         `xml:"skipped,attr,omitempty"`
	Time   float64     `xml:"time,attr"`
	Cases  []JUnitCase `xml:"testcase"`
}

// JUnitCase is one testcase: a failure, an error (the check could not be
// made: an unreadable file), or a pass.
type JUnitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *JUnitProblem `xml:"failure,omitempty"`
	Error     *JUnitProblem `xml:"error,omitempty"`
	// Skipped says why the case did not run (a packetdrill construct
	// tcplab pkt does not play).
	Skipped   *JUnitProblem `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

// JUnitProblem is a failure's or an error's one-line message and full
// text.
type JUnitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// Marshal counts the cases and encodes the report as XML. A suite whose
// time was not given takes the sum of its cases' times, as a viewer that
// shows the suite's time expects.
func (j *JUnit) Marshal() ([]byte, error) {
	j.Tests, j.Fails, j.Errors = 0, 0, 0
	for i := range j.Suites {
		s := &j.Suites[i]
		s.Tests, s.Fails, s.Errors, s.Skips = len(s.Cases), 0, 0, 0
		sum := 0.0
		for _, c := range s.Cases {
			sum += c.Time
			if c.Failure != nil {
				s.Fails++
			}
			if c.Error != nil {
				s.Errors++
			}
			if c.Skipped != nil {
				s.Skips++
			}
		}
		if s.Time == 0 {
			s.Time = sum
		}
		j.Tests += s.Tests
		j.Fails += s.Fails
		j.Errors += s.Errors
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(j); err != nil {
		return nil, fmt.Errorf("junit: %w", err)
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}

// WriteJUnit writes the report to path, whole or not at all, without
// following a symlink planted in path's folder (package safefile).
func WriteJUnit(path string, j *JUnit) error {
	b, err := j.Marshal()
	if err != nil {
		return err
	}
	return safefile.WriteFile(path, b)
}
