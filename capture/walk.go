package capture

import (
	"errors"
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
)

// Packet is one frame of a capture and, when it carries TCP, its segment
// and annotation. Its Data is valid only during the callback that gets it.
type Packet struct {
	Info       gopacket.CaptureInfo
	Data       []byte
	TCP        bool // Segment and Annotation are set
	Segment    Segment
	Annotation Annotation
}

// Keep returns a copy of p whose Data is its own: a packet to keep after
// the callback that got it.
func (p *Packet) Keep() Packet {
	q := *p
	q.Data = append([]byte(nil), p.Data...)
	return q
}

// Counts tells how many frames a walk read and what they were.
type Counts struct {
	Frames    int // all frames
	TCP       int // frames with a TCP segment
	Skipped   int // frames without TCP (other protocols, fragments that complete no datagram)
	Truncated int // TCP segments whose header the snap length cut
	// Fragments counts the Skipped frames that hold an IP fragment: one
	// that did not complete its datagram, or one that could not be
	// reassembled (cut by the snap length, or dropped at a limit).
	Fragments int
}

// Walk reads every frame of src in order, decodes it, annotates its TCP
// segment with a, and calls fn with it. It returns at the end of src (a nil
// error), at the first read error, or when fn returns an error; on a live
// source it reads through timeouts until the source is closed. The counts
// cover every frame handed to fn.
func Walk(src Source, a *Annotator, fn func(*Packet) error) (Counts, error) {
	var n Counts
	dec, err := NewDecoder(src.LinkType())
	if err != nil {
		return n, err
	}
	var p Packet
	for {
		data, ci, err := src.ReadPacketData()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				return n, nil
			case errors.Is(err, ErrTimeout):
				continue
			}
			return n, err
		}
		n.Frames++
		p.Info, p.Data = ci, data
		p.TCP = dec.DecodeFrame(data, ci, &p.Segment)
		if p.TCP {
			n.TCP++
			p.Segment.Frame, p.Segment.Time = n.Frames, ci.Timestamp
			if p.Segment.Problem == HeaderCut {
				n.Truncated++
			}
			p.Annotation = a.Annotate(&p.Segment)
		} else {
			n.Skipped++
			if dec.fragment {
				n.Fragments++
			}
		}
		if err := fn(&p); err != nil {
			return n, fmt.Errorf("frame %d: %w", n.Frames, err)
		}
	}
}
