package report

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tcplab/tcplab/internal/safefile"
)

// JUnitStream writes a JUnit report whose cases come one at a time, in
// memory bounded by its suites, not by its cases: the report's header
// holds counts that are known only after the last case, so each case is
// encoded as it comes and spilled to a scratch file (safefile's Scratch)
// in the report's folder, and the report is written from it at the end
// (Commit), byte for byte as JUnit.Marshal writes the same cases.
type JUnitStream struct {
	name   string
	dir    *safefile.Dir
	path   string
	spool  *os.File
	w      *bufio.Writer
	at     int64 // bytes spilled so far
	suites []*streamSuite
	buf    bytes.Buffer
	err    error // the first failure to spill
}

// streamSuite is what a JUnitStream keeps of a suite: its counts and
// where its cases are in the spool, in order.
type streamSuite struct {
	head  JUnitSuite // Cases stay empty
	sum   float64    // of its cases' times
	spans []span
}

// span is a run of encoded cases in the spool.
type span struct{ start, end int64 }

// NewJUnitStream opens the folder of path (safefile.OpenDir: not made,
// no foreign symlink followed) and a scratch file there, for a report
// named name that Commit will write to path.
func NewJUnitStream(path, name string) (*JUnitStream, error) {
	dir, err := safefile.OpenDir(filepath.Dir(path), false)
	if err != nil {
		return nil, err
	}
	spool, err := dir.Scratch()
	if err != nil {
		dir.Close()
		return nil, err
	}
	return &JUnitStream{name: name, dir: dir, path: path, spool: spool, w: bufio.NewWriterSize(spool, 64<<10)}, nil
}

// Suite begins the next suite; the cases added after it are its own.
func (s *JUnitStream) Suite(name string) {
	s.suites = append(s.suites, &streamSuite{head: JUnitSuite{Name: name}})
}

// Add appends cases to the current suite.
func (s *JUnitStream) Add(cases ...JUnitCase) {
	s.spill(cases, false)
}

// Prepend puts cases before those the current suite holds so far, in
// the order given.
func (s *JUnitStream) Prepend(cases ...JUnitCase) {
	s.spill(cases, true)
}

// spill encodes cases to the spool and counts them in the current suite.
func (s *JUnitStream) spill(cases []JUnitCase, first bool) {
	if len(s.suites) == 0 {
		s.Suite("")
	}
	su := s.suites[len(s.suites)-1]
	start := s.at
	for i := range cases {
		c := &cases[i]
		su.head.Tests++
		su.sum += c.Time
		if c.Failure != nil {
			su.head.Fails++
		}
		if c.Error != nil {
			su.head.Errors++
		}
		if c.Skipped != nil {
			su.head.Skips++
		}
		if s.err != nil {
			continue
		}
		// A case lies two levels down: its lines take the indent that
		// Marshal gives them there, after a line break.
		s.buf.Reset()
		s.buf.WriteByte('\n')
		enc := xml.NewEncoder(&s.buf)
		enc.Indent("    ", "  ")
		if err := enc.EncodeElement(c, xml.StartElement{Name: xml.Name{Local: "testcase"}}); err != nil {
			s.err = fmt.Errorf("junit: %w", err)
			continue
		}
		n, err := s.w.Write(s.buf.Bytes())
		s.at += int64(n)
		if err != nil {
			s.err = fmt.Errorf("junit: spill to a scratch file in %s: %w", s.dir.Path(), err)
		}
	}
	if s.at == start {
		return
	}
	sp := span{start, s.at}
	if first {
		su.spans = append([]span{sp}, su.spans...)
	} else {
		su.spans = append(su.spans, sp)
	}
}

// Commit writes the report to path, whole or not at all, and closes the
// stream.
func (s *JUnitStream) Commit() (err error) {
	defer s.Close()
	if s.err != nil {
		return s.err
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("junit: spill to a scratch file in %s: %w", s.dir.Path(), err)
	}
	f, err := s.dir.Create(filepath.Base(s.path))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	if err := s.write(w); err != nil {
		f.Discard()
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := w.Flush(); err != nil {
		f.Discard()
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return f.Commit()
}

// write writes the report: its head with the counts, each suite's head
// and its cases copied from the spool, the closing tags.
func (s *JUnitStream) write(w *bufio.Writer) error {
	top := JUnit{Name: s.name}
	for _, su := range s.suites {
		top.Tests += su.head.Tests
		top.Fails += su.head.Fails
		top.Errors += su.head.Errors
	}
	w.WriteString(xml.Header)
	if err := openTag(w, &top, "", "testsuites"); err != nil {
		return err
	}
	for _, su := range s.suites {
		w.WriteString("\n")
		if su.head.Time == 0 {
			su.head.Time = su.sum
		}
		if err := openTag(w, &su.head, "  ", "testsuite"); err != nil {
			return err
		}
		for _, sp := range su.spans {
			if _, err := io.Copy(w, io.NewSectionReader(s.spool, sp.start, sp.end-sp.start)); err != nil {
				return fmt.Errorf("read back the scratch file: %w", err)
			}
		}
		if su.head.Tests > 0 {
			w.WriteString("\n  ")
		}
		w.WriteString("</testsuite>")
	}
	if len(s.suites) > 0 {
		w.WriteString("\n")
	}
	_, err := w.WriteString("</testsuites>\n")
	return err
}

// openTag writes the start tag of v, an element without children, as
// Marshal's encoder writes it at the indent prefix: v is encoded and its
// end tag cut.
func openTag(w io.Writer, v any, prefix, tag string) error {
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	enc.Indent(prefix, "  ")
	if err := enc.EncodeElement(v, xml.StartElement{Name: xml.Name{Local: tag}}); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	head, ok := strings.CutSuffix(b.String(), "</"+tag+">")
	if !ok {
		return fmt.Errorf("junit: the %s element is not empty: %q", tag, b.String())
	}
	_, err := io.WriteString(w, head)
	return err
}

// Close removes the scratch file and leaves path as it was, unless
// Commit wrote it.
func (s *JUnitStream) Close() error {
	if s.spool == nil {
		return nil
	}
	err := s.spool.Close()
	s.spool = nil
	s.dir.Close()
	return err
}
