package annotatecmd

import (
	"time"

	"github.com/tcplab/tcplab/capture"
)

// batchSize is how many frames a batch hands from the annotating stage to
// the writing one: enough that the hand-over costs nothing per frame, few
// enough that both stages stay busy, and that the batches going round
// (some 350 KiB each) stay in the processor's cache and cost few pages.
const batchSize = 1024

// batchSums is how many summaries of forgotten connections a batch
// holds at most: with -summary no segment is handed over, and the
// summaries alone fill batches.
const batchSums = 256

// batch is frames in capture order; with data, their bytes live in arena.
// sums are the summaries of the connections forgotten meanwhile, in the
// order they were.
type batch struct {
	pkts  []capture.Packet
	arena []byte
	ends  []int // end of each packet's bytes in arena
	sums  []capture.ConnSummary
}

// pipeline runs a walk over a capture in a goroutine of its own and hands
// its frames, in order, to the caller in batches. Three batches go round,
// so neither stage waits for the other while the other has work.
type pipeline struct {
	batches chan *batch // full batches, in capture order
	free    chan *batch // batches the caller is done with
	data    bool        // the frames' bytes go along (for -o)
	start   time.Time   // the first frame's time (see), set before the first batch is sent
	counts  capture.Counts
	err     error
	end     chan struct{}
	cur     *batch // the batch being filled, by the walk's goroutine
}

// newPipeline returns a pipeline ready to run; with data, each frame's
// bytes are handed over too.
func newPipeline(data bool) *pipeline {
	p := &pipeline{batches: make(chan *batch, 2), free: make(chan *batch, 3), data: data, end: make(chan struct{})}
	for i := 0; i < 3; i++ {
		p.free <- &batch{pkts: make([]capture.Packet, 0, batchSize)}
	}
	return p
}

// run starts walk, which calls see for every frame and emit for each frame
// to hand over. The caller then ranges over batches, calls done with
// each, and calls wait.
func (p *pipeline) run(walk func(emit func(*capture.Packet)) (capture.Counts, error)) {
	go func() {
		defer close(p.end)
		defer close(p.batches)
		p.cur = <-p.free
		p.counts, p.err = walk(func(pk *capture.Packet) {
			cur := p.cur
			q := *pk
			q.Data = nil
			if p.data {
				// Offsets now, slices once the arena stops growing.
				cur.arena = append(cur.arena, pk.Data...)
				cur.ends = append(cur.ends, len(cur.arena))
			}
			cur.pkts = append(cur.pkts, q)
			if len(cur.pkts) == batchSize {
				p.send(cur)
				p.cur = <-p.free
			}
		})
		if len(p.cur.pkts) > 0 || len(p.cur.sums) > 0 {
			p.send(p.cur)
		}
	}()
}

// summary hands over the summary of a connection forgotten, with the
// frames around it. Only the walk's goroutine calls it.
func (p *pipeline) summary(s *capture.ConnSummary) {
	p.cur.sums = append(p.cur.sums, *s)
	if len(p.cur.sums) == batchSums {
		p.send(p.cur)
		p.cur = <-p.free
	}
}

// flush hands over the frames emitted so far, a batch not yet full: a
// live capture's lines are shown as they come. Only the walk's goroutine
// calls it, between frames.
func (p *pipeline) flush() {
	if len(p.cur.pkts) > 0 || len(p.cur.sums) > 0 {
		p.send(p.cur)
		p.cur = <-p.free
	}
}

// send hands a full batch over, its frames' bytes sliced from the arena.
func (p *pipeline) send(b *batch) {
	if p.data {
		from := 0
		for i := range b.pkts {
			b.pkts[i].Data = b.arena[from:b.ends[i]:b.ends[i]]
			from = b.ends[i]
		}
	}
	p.batches <- b
}

// see records the time of a frame of the capture, before any is emitted:
// the first one's is the start that lines count time from.
func (p *pipeline) see(t time.Time) {
	if p.start.IsZero() {
		p.start = t
	}
}

// done gives a batch back for reuse.
func (p *pipeline) done(b *batch) {
	b.pkts, b.arena, b.ends, b.sums = b.pkts[:0], b.arena[:0], b.ends[:0], b.sums[:0]
	p.free <- b
}

// wait returns what the walk returned, once it has ended.
func (p *pipeline) wait() (capture.Counts, error) {
	<-p.end
	return p.counts, p.err
}
