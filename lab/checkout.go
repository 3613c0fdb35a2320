package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/report"
)

// checkOutput writes check's verdicts as they are known, each connection's
// as soon as Check hands it out (CheckRequest.OnConn): as text or JSON on
// stdout, and as a JUnit report. Nothing of a connection stays in memory
// once it is written, so check's memory is bounded by the connections
// open at once, whatever the form and the number of connections.
//
// JSON is one object written as it goes: {"command": ..., "files": [...],
// "pass": ...} (command only for check -- COMMAND), each file
// {"file", "connections", "scenario", "pass", "error", "frames"}: the
// fields known only at the end of a file, or of the run, come last, and
// the bytes are those json.Marshal gives the same FileVerdict. JUnit's
// counts come before its cases, so the cases are spilled to a scratch file
// in the report's folder (report.JUnitStream).
type checkOutput struct {
	stdout  io.Writer
	text    bool                // print each connection as text
	json    bool                // print JSON
	junit   *report.JUnitStream // nil without -junit
	files   int                 // files begun
	conns   int                 // connections written of the current file
	failed  int                 // files that failed
	err     error               // the first failure to write stdout
	started bool                // JSON's opening is written
}

// newCheckOutput makes the output of check: JSON on stdout when asJSON
// is set, else text; a JUnit report to junit unless it is "".
func newCheckOutput(stdout io.Writer, asJSON bool, junit string) (*checkOutput, error) {
	o := &checkOutput{stdout: stdout, text: !asJSON, json: asJSON}
	if junit != "" {
		js, err := report.NewJUnitStream(junit, "tcplab check")
		if err != nil {
			return nil, fmt.Errorf("-junit: %w", err)
		}
		o.junit = js
	}
	return o, nil
}

// command writes what the command of check -- COMMAND did, before the
// capture's verdict.
func (o *checkOutput) command(cv *CommandVerdict) {
	if o.json {
		o.write(`{"command":`)
		o.value(cv)
		o.write(`,"files":[`)
		o.started = true
	}
}

// check judges the capture file path as req asks, writing its verdict as
// it goes, and returns it (without its connections).
func (o *checkOutput) check(path string, req CheckRequest) FileVerdict {
	req.OnConn = o.begin(path)
	v := Check(path, req)
	o.end(&v)
	return v
}

// checkSource is check of a capture that is not a file.
func (o *checkOutput) checkSource(name string, src capture.Source, req CheckRequest) FileVerdict {
	req.OnConn = o.begin(name)
	v := checkSource(name, src, req)
	o.end(&v)
	return v
}

// begin starts the verdict of the file name and returns what takes the
// verdicts of its connections.
func (o *checkOutput) begin(name string) func(ConnVerdict) {
	o.conns = 0
	if o.json {
		if !o.started {
			o.write(`{"files":[`)
			o.started = true
		}
		if o.files > 0 {
			o.write(",")
		}
		o.write(`{"file":`)
		o.value(name)
	}
	o.files++
	if o.junit != nil {
		o.junit.Suite(name)
	}
	return func(c ConnVerdict) {
		if o.text {
			printConn(o.stdout, name, &c)
		}
		if o.json {
			if o.conns == 0 {
				o.write(`,"connections":[`)
			} else {
				o.write(",")
			}
			o.value(&c)
		}
		o.conns++
		if o.junit != nil {
			o.junit.Add(connCases(name, &c)...)
		}
	}
}

// fileTail is what a FileVerdict holds after its connections, the fields
// known at the end of the file, in FileVerdict's order with its names.
type fileTail struct {
	Scenarios []ScenarioVerdict `json:"scenario,omitempty"`
	Pass      bool              `json:"pass"`
	Error     string            `json:"error,omitempty"`
	Frames    int               `json:"frames"`
}

// end writes the rest of v, the verdict of the file begun last.
func (o *checkOutput) end(v *FileVerdict) {
	if !v.Pass {
		o.failed++
	}
	if o.json {
		if o.conns > 0 {
			o.write("]")
		}
		// The tail goes on inside the file's object, after its name and
		// connections: its opening brace becomes a comma.
		if raw := o.marshal(fileTail{v.Scenarios, v.Pass, v.Error, v.Frames}); raw != nil {
			o.write("," + string(raw[1:]))
		}
	}
	if o.junit != nil {
		o.junit.Add(scenarioCases(v)...)
		if c := errorCase(v); c != nil {
			o.junit.Prepend(*c)
		}
	}
}

// close ends the output: JSON's closing, with pass set unless a file
// failed or fail is set (the command of check -- COMMAND failed), and the
// JUnit report, whose first cases, in the last suite, are first (check --
// COMMAND's). It returns the first failure to write.
func (o *checkOutput) close(fail bool, first ...report.JUnitCase) error {
	if o.json {
		if !o.started {
			o.write(`{"files":[`)
		}
		o.write(fmt.Sprintf(`],"pass":%t}`+"\n", o.failed == 0 && !fail))
	}
	if o.junit != nil {
		o.junit.Prepend(first...)
		if err := o.junit.Commit(); err != nil {
			return fmt.Errorf("-junit: %w", err)
		}
	}
	return o.err
}

// value writes v as JSON.
func (o *checkOutput) value(v any) {
	if raw := o.marshal(v); raw != nil {
		o.write(string(raw))
	}
}

// marshal returns v as JSON, as json.Encoder writes it without escaping
// HTML, without the line break; nil when it cannot.
func (o *checkOutput) marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		o.fail(err)
		return nil
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// write writes s to stdout, unless a write failed before.
func (o *checkOutput) write(s string) {
	if o.err != nil {
		return
	}
	if _, err := io.WriteString(o.stdout, s); err != nil {
		o.fail(err)
	}
}

// fail keeps the first failure to write.
func (o *checkOutput) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// errorCase is the JUnit case of a file that could not be read whole,
// or nil.
func errorCase(v *FileVerdict) *report.JUnitCase {
	if v.Error == "" {
		return nil
	}
	return &report.JUnitCase{Name: "read " + v.File, Classname: v.File,
		Error: &report.JUnitProblem{Message: v.Error, Type: "capture"}}
}

// connCases are the JUnit cases of one connection of file: one per
// property.
func connCases(file string, c *ConnVerdict) []report.JUnitCase {
	cases := make([]report.JUnitCase, 0, len(c.Results))
	for _, r := range c.Results {
		jc := report.JUnitCase{Name: c.Name + ": " + r.Property, Classname: file}
		if r.Pass {
			jc.SystemOut = r.Detail
		} else {
			jc.Failure = &report.JUnitProblem{Message: r.Detail, Type: "property",
				Text: strings.Join(r.Context, "\n")}
		}
		cases = append(cases, jc)
	}
	return cases
}

// scenarioCases are the JUnit cases of the scenario's verdicts on v.
func scenarioCases(v *FileVerdict) []report.JUnitCase {
	var cases []report.JUnitCase
	for _, sv := range v.Scenarios {
		name := "scenario " + sv.Name
		if sv.Connection != "" {
			name = sv.Connection + ": " + name
		}
		jc := report.JUnitCase{Name: name, Classname: v.File}
		if !sv.Pass {
			text := []string{sv.Problem}
			if sv.Problem == "" {
				text = nil
				for i := range sv.Mismatches {
					text = append(text, sv.Mismatches[i].Error())
				}
			}
			first := strings.SplitN(text[0], "\n", 2)[0]
			jc.Failure = &report.JUnitProblem{Message: first, Type: "scenario", Text: strings.Join(text, "\n\n")}
		}
		cases = append(cases, jc)
	}
	return cases
}
