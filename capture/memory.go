package capture

import (
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Frame is one raw frame as a capture recorded it.
type Frame struct {
	Info gopacket.CaptureInfo
	Data []byte
}

// Memory is a Source over frames held in memory: what a lab run recorded,
// or frames a test built. Walk reads it like a file.
type Memory struct {
	Link   layers.LinkType
	Frames []Frame
	next   int
}

// ReadPacketData returns the next frame, and io.EOF after the last.
func (m *Memory) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if m.next >= len(m.Frames) {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	f := &m.Frames[m.next]
	m.next++
	return f.Data, f.Info, nil
}

// LinkType returns the link type of the frames.
func (m *Memory) LinkType() layers.LinkType { return m.Link }
