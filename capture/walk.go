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

// DecodedSource is a Source that decodes its frames as it reads them, in
// order, with a Decoder of its own for its link type (DecodeAhead): a
// reader in a goroutine of its own, so that decoding is a stage apart
// from annotating. Walk takes each frame's decoding from it.
type DecodedSource interface {
	Source
	// ReadDecoded is ReadPacketData with what DecodeAhead said of the
	// frame: whether it holds a TCP segment (then put in seg) and, if
	// not, whether it held an IP fragment.
	ReadDecoded(seg *Segment) (data []byte, ci gopacket.CaptureInfo, tcp, fragment bool, err error)
}

// DecodeAhead decodes a frame as Walk does, for a DecodedSource: tcp
// says seg holds its TCP segment; without one, fragment says the frame
// held an IP fragment (one that completed no datagram, or could not be
// reassembled).
func (d *Decoder) DecodeAhead(data []byte, ci gopacket.CaptureInfo, seg *Segment) (tcp, fragment bool) {
	tcp = d.DecodeFrame(data, ci, seg)
	return tcp, !tcp && d.fragment
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
	ahead, decoded := src.(DecodedSource)
	for {
		var (
			data     []byte
			ci       gopacket.CaptureInfo
			err      error
			fragment bool
		)
		if decoded {
			data, ci, p.TCP, fragment, err = ahead.ReadDecoded(&p.Segment)
		} else {
			data, ci, err = src.ReadPacketData()
		}
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
		if !decoded {
			p.TCP, fragment = dec.DecodeAhead(data, ci, &p.Segment)
		}
		if p.TCP {
			n.TCP++
			p.Segment.Frame, p.Segment.Time = n.Frames, ci.Timestamp
			if p.Segment.Problem == HeaderCut {
				n.Truncated++
			}
			p.Annotation = a.Annotate(&p.Segment)
		} else {
			n.Skipped++
			if fragment {
				n.Fragments++
			}
		}
		if err := fn(&p); err != nil {
			return n, fmt.Errorf("frame %d: %w", n.Frames, err)
		}
	}
}
