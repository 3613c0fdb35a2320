package annotatecmd

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
)

// runBytes is how many bytes of summary lines are held before they are
// sorted and spilled as a run: with a summary line of about 400 bytes,
// some 10,000 connections.
const runBytes = 4 << 20

// summaryLine is one connection's formatted summary, in the order of
// stream, then of arrival (a resumed connection's second summary comes
// after its first).
type summaryLine struct {
	stream, seq int
	line        []byte
}

func compareLines(x, y *summaryLine) int {
	if x.stream != y.stream {
		return x.stream - y.stream
	}
	return x.seq - y.seq
}

// summaryStore keeps the summary lines of the connections the annotator
// forgot until the end, when they are printed in stream order. Its memory
// is bounded: past runBytes, the lines held are sorted and spilled to a
// temporary file as a run, and the runs are merged at the end. Without a
// temporary file (none can be made) it holds every line.
type summaryStore struct {
	pending []summaryLine
	size    int
	seq     int
	file    *os.File // nil until the first spill
	w       *bufio.Writer
	runs    []run
	noSpill bool // the temporary file could not be made
	// arenas hold the lines formatted with room, one after the other;
	// arenas[cur] is being filled. A spill writes their lines out, and
	// they are filled again from the start: the pages of lines held are
	// reused rather than left to the collector.
	arenas [][]byte
	cur    int
}

// arenaSize is the size of one of summaryStore's arenas.
const arenaSize = 256 << 10

// room returns the free end of the store's arena, at least a long line's
// worth: a line appended to it and then added costs no allocation of its
// own.
func (s *summaryStore) room() []byte {
	if len(s.arenas) == 0 || cap(s.arenas[s.cur])-len(s.arenas[s.cur]) < 2048 {
		if len(s.arenas) > 0 && s.cur+1 < len(s.arenas) {
			s.cur++
		} else {
			s.arenas = append(s.arenas, make([]byte, 0, arenaSize))
			s.cur = len(s.arenas) - 1
		}
	}
	a := s.arenas[s.cur]
	return a[len(a):]
}

// run is a sorted run of lines in the temporary file.
type run struct{ off, n int64 }

// add keeps the summary line of stream: appended to room, or a slice of
// its own.
func (s *summaryStore) add(stream int, line []byte) error {
	if len(s.arenas) > 0 {
		a := &s.arenas[s.cur]
		if n := len(*a); len(line) > 0 && n < cap(*a) && &line[0] == &(*a)[:n+1][n] {
			*a = (*a)[:n+len(line)]
			line = line[:len(line):len(line)]
		}
	}
	s.pending = append(s.pending, summaryLine{stream: stream, seq: s.seq, line: line})
	s.seq++
	s.size += len(line) + 64
	if s.size >= runBytes && !s.noSpill {
		return s.spill()
	}
	return nil
}

// spill sorts the lines held and writes them to the temporary file as a
// run: each line as its stream, its seq and its length (uvarints), then
// its bytes.
func (s *summaryStore) spill() error {
	if s.file == nil {
		f, err := os.CreateTemp("", "tcplab-summaries-*")
		if err != nil {
			// Hold them all rather than fail: memory grows, the output
			// is the same.
			s.noSpill = true
			return nil
		}
		// Nothing else opens it: gone from the directory now, gone for
		// good when closed.
		os.Remove(f.Name())
		s.file, s.w = f, bufio.NewWriterSize(f, 1<<16)
	}
	slices.SortFunc(s.pending, func(x, y summaryLine) int { return compareLines(&x, &y) })
	var off int64
	if len(s.runs) > 0 {
		last := s.runs[len(s.runs)-1]
		off = last.off + last.n
	}
	var n int64
	var hdr [3 * binary.MaxVarintLen64]byte
	for i := range s.pending {
		l := &s.pending[i]
		h := binary.AppendUvarint(hdr[:0], uint64(l.stream))
		h = binary.AppendUvarint(h, uint64(l.seq))
		h = binary.AppendUvarint(h, uint64(len(l.line)))
		if _, err := s.w.Write(h); err != nil {
			return fmt.Errorf("spill summaries: %w", err)
		}
		if _, err := s.w.Write(l.line); err != nil {
			return fmt.Errorf("spill summaries: %w", err)
		}
		n += int64(len(h) + len(l.line))
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spill summaries: %w", err)
	}
	s.runs = append(s.runs, run{off: off, n: n})
	clear(s.pending)
	s.pending, s.size = s.pending[:0], 0
	for i := range s.arenas {
		s.arenas[i] = s.arenas[i][:0]
	}
	s.cur = 0
	return nil
}

// writeTo writes every line kept, in stream order, those held and those
// spilled, and frees the temporary file.
func (s *summaryStore) writeTo(w io.Writer) error {
	defer s.close()
	slices.SortFunc(s.pending, func(x, y summaryLine) int { return compareLines(&x, &y) })
	if len(s.runs) == 0 {
		for _, l := range s.pending {
			if _, err := w.Write(l.line); err != nil {
				return err
			}
		}
		return nil
	}
	h := &lineHeap{}
	// Reads of 64 KiB, fewer system calls, while the runs are few; the
	// buffers of many runs take no more than a run's bytes together.
	size := min(max(runBytes/len(s.runs), 4<<10), 64<<10)
	for _, r := range s.runs {
		rd := &runReader{r: bufio.NewReaderSize(io.NewSectionReader(s.file, r.off, r.n), size)}
		if err := rd.next(); err != nil {
			return err
		}
		if rd.ok {
			h.readers = append(h.readers, rd)
		}
	}
	held := &runReader{held: s.pending}
	if held.next() == nil && held.ok {
		h.readers = append(h.readers, held)
	}
	heap.Init(h)
	for h.Len() > 0 {
		rd := h.readers[0]
		if _, err := w.Write(rd.cur.line); err != nil {
			return err
		}
		if err := rd.next(); err != nil {
			return err
		}
		if rd.ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return nil
}

// close frees the temporary file.
func (s *summaryStore) close() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}

// runReader reads one sorted run, from the file or the lines held.
type runReader struct {
	r    *bufio.Reader
	held []summaryLine
	cur  summaryLine
	ok   bool
}

// next reads the run's next line into cur; ok is false at its end.
func (rd *runReader) next() error {
	if rd.r == nil {
		rd.ok = len(rd.held) > 0
		if rd.ok {
			rd.cur, rd.held = rd.held[0], rd.held[1:]
		}
		return nil
	}
	stream, err := binary.ReadUvarint(rd.r)
	if err == io.EOF {
		rd.ok = false
		return nil
	}
	if err != nil {
		return fmt.Errorf("read spilled summaries: %w", err)
	}
	seq, err1 := binary.ReadUvarint(rd.r)
	n, err2 := binary.ReadUvarint(rd.r)
	if err1 != nil || err2 != nil || n > 1<<20 {
		return fmt.Errorf("read spilled summaries: a record is damaged")
	}
	// The line before is written out by now: its bytes are reused.
	line := slices.Grow(rd.cur.line[:0], int(n))[:n]
	if _, err := io.ReadFull(rd.r, line); err != nil {
		return fmt.Errorf("read spilled summaries: %w", err)
	}
	rd.cur, rd.ok = summaryLine{stream: int(stream), seq: int(seq), line: line}, true
	return nil
}

// lineHeap orders the runs by their current line.
type lineHeap struct{ readers []*runReader }

func (h *lineHeap) Len() int { return len(h.readers) }
func (h *lineHeap) Less(i, j int) bool {
	return compareLines(&h.readers[i].cur, &h.readers[j].cur) < 0
}
func (h *lineHeap) Swap(i, j int) { h.readers[i], h.readers[j] = h.readers[j], h.readers[i] }
func (h *lineHeap) Push(x any)    { h.readers = append(h.readers, x.(*runReader)) }
func (h *lineHeap) Pop() any {
	x := h.readers[len(h.readers)-1]
	h.readers = h.readers[:len(h.readers)-1]
	return x
}

// streamSet is a set of stream numbers, a bit each: the streams a
// selection showed, in an eighth of a byte per connection seen.
type streamSet []uint64

func (s *streamSet) add(n int) {
	for n/64 >= len(*s) {
		*s = append(*s, 0)
	}
	(*s)[n/64] |= 1 << (n % 64)
}

func (s streamSet) has(n int) bool { return n/64 < len(s) && s[n/64]&(1<<(n%64)) != 0 }
