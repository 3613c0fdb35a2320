package annotatecmd

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
)

// prefetchFrames is how many frames a batch of a prefetch holds, and
// prefetchBytes how many bytes of them it holds at least before it is
// handed over.
const (
	prefetchFrames = 1024
	prefetchBytes  = 256 << 10
)

// prefetch is a capture.Source that reads another, a file, in a
// goroutine of its own: reading a file's records (and undoing its
// compression) is a stage of annotate's pipeline beside decoding and
// annotating, and formatting. Frames come in batches, their bytes copied
// into the batch, in the file's order; the error that ended the reading
// comes after the frames before it. Each frame's bytes stay valid until
// the second read after it.
type prefetch struct {
	link    layers.LinkType
	dec     *capture.Decoder // with decode: frames are decoded as read
	full    chan *frameBatch
	free    chan *frameBatch
	stop    chan struct{}
	done    chan struct{}
	cur     *frameBatch
	i       int
	spare   *frameBatch // the batch before cur, given back once cur is done with
	stopped bool
}

// frameBatch is frames read in a row; the error ends the reading after
// them.
type frameBatch struct {
	infos []gopacket.CaptureInfo
	ends  []int
	bytes []byte
	err   error
	// With decoding, each frame's: its segment when it holds TCP, and
	// what it is (decodedTCP, decodedFragment).
	segs  []capture.Segment
	kinds []uint8
}

// What a decoded frame is.
const (
	decodedTCP      = 1 << iota // its segment is in segs
	decodedFragment             // without TCP: it held an IP fragment
)

// newPrefetch starts reading src; close stops it. With decode, it also
// decodes each frame as capture.Walk would (capture.DecodedSource), when
// it knows the link type (else Walk says it does not): decoding is then
// part of the reading stage, not of the annotating one. Decode only a
// source whose every frame goes to the walk, in order.
func newPrefetch(src capture.Source, decode bool) *prefetch {
	p := &prefetch{link: src.LinkType(), full: make(chan *frameBatch, 2), free: make(chan *frameBatch, 4),
		stop: make(chan struct{}), done: make(chan struct{})}
	if decode {
		if dec, err := capture.NewDecoder(src.LinkType()); err == nil {
			p.dec = dec
		}
	}
	for range 4 {
		p.free <- &frameBatch{}
	}
	go p.read(src)
	return p
}

// read reads src into batches until it ends or the prefetch is closed.
func (p *prefetch) read(src capture.Source) {
	defer close(p.done)
	for {
		var b *frameBatch
		select {
		case b = <-p.free:
		case <-p.stop:
			return
		}
		b.infos, b.ends, b.bytes, b.err = b.infos[:0], b.ends[:0], b.bytes[:0], nil
		b.segs, b.kinds = b.segs[:0], b.kinds[:0]
		for len(b.infos) < prefetchFrames && len(b.bytes) < prefetchBytes {
			data, ci, err := src.ReadPacketData()
			if err != nil {
				b.err = err
				break
			}
			b.bytes = append(b.bytes, data...)
			b.infos = append(b.infos, ci)
			b.ends = append(b.ends, len(b.bytes))
			if p.dec != nil {
				b.segs = append(b.segs, capture.Segment{})
				tcp, fragment := p.dec.DecodeAhead(data, ci, &b.segs[len(b.segs)-1])
				var kind uint8
				if tcp {
					kind = decodedTCP
				} else if fragment {
					kind = decodedFragment
				}
				b.kinds = append(b.kinds, kind)
			}
		}
		select {
		case p.full <- b:
		case <-p.stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// LinkType returns the link type of the source's frames.
func (p *prefetch) LinkType() layers.LinkType { return p.link }

// ReadPacketData returns the next frame, or the error that ended the
// source after the frames before it.
func (p *prefetch) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	b, i, err := p.next()
	if err != nil {
		return nil, gopacket.CaptureInfo{}, err
	}
	return frameData(b, i), b.infos[i], nil
}

// source returns the prefetch as the walk reads it: a
// capture.DecodedSource when it decodes.
func (p *prefetch) source() capture.Source {
	if p.dec != nil {
		return decodingPrefetch{p}
	}
	return p
}

// decodingPrefetch is a prefetch that decodes, as a
// capture.DecodedSource.
type decodingPrefetch struct{ *prefetch }

// ReadDecoded is ReadPacketData with the frame's decoding (see
// capture.DecodedSource).
func (p decodingPrefetch) ReadDecoded(seg *capture.Segment) (data []byte, ci gopacket.CaptureInfo, tcp, fragment bool, err error) {
	b, i, err := p.next()
	if err != nil {
		return nil, ci, false, false, err
	}
	kind := b.kinds[i]
	if kind&decodedTCP != 0 {
		*seg = b.segs[i]
	}
	return frameData(b, i), b.infos[i], kind&decodedTCP != 0, kind&decodedFragment != 0, nil
}

// next returns the batch and index of the next frame.
func (p *prefetch) next() (*frameBatch, int, error) {
	for p.cur == nil || p.i == len(p.cur.infos) {
		if p.cur != nil {
			if p.cur.err != nil {
				return nil, 0, p.cur.err
			}
			// The frame last returned is in cur: keep cur until the
			// next batch's first frame is read, give back the one before.
			if p.spare != nil {
				p.free <- p.spare
			}
			p.spare = p.cur
		}
		p.cur, p.i = <-p.full, 0
	}
	p.i++
	return p.cur, p.i - 1, nil
}

// frameData returns the bytes of frame i of b.
func frameData(b *frameBatch, i int) []byte {
	from := 0
	if i > 0 {
		from = b.ends[i-1]
	}
	return b.bytes[from:b.ends[i]:b.ends[i]]
}

// close stops the reading and waits for it to end; the source may then
// be closed.
func (p *prefetch) close() {
	if !p.stopped {
		p.stopped = true
		close(p.stop)
		<-p.done
	}
}
