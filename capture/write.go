package capture

import (
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Writer writes frames into a pcapng file, each with an optional comment
// that Wireshark shows and tshark prints as frame.comment. gopacket's
// pcapng writer (github.com/gopacket/gopacket v1.7+) writes per-packet
// comments; google/gopacket v1.1.19 cannot.
type Writer struct {
	ng *pcapgo.NgWriter
	// FlushEach flushes every packet to the underlying writer, so a killed
	// process leaves a file that ends on a whole packet.
	FlushEach bool
}

// NewWriter starts a pcapng stream on w for frames of the given link type.
func NewWriter(w io.Writer, link layers.LinkType) (*Writer, error) {
	ng, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
		Name:                "tcplab",
		LinkType:            link,
		SnapLength:          262144,
		TimestampResolution: 9,
	}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "tcplab"}})
	if err != nil {
		return nil, fmt.Errorf("start pcapng: %w", err)
	}
	wr := &Writer{ng: ng}
	return wr, wr.Flush()
}

// WritePacket writes one frame with its comment (none when empty).
func (w *Writer) WritePacket(ci gopacket.CaptureInfo, data []byte, comment string) error {
	ci.InterfaceIndex = 0
	var opts pcapgo.NgPacketOptions
	if comment != "" {
		opts.Comments = []string{comment}
	}
	if err := w.ng.WritePacketWithOptions(ci, data, opts); err != nil {
		return fmt.Errorf("write packet: %w", err)
	}
	if w.FlushEach {
		return w.Flush()
	}
	return nil
}

// Flush writes buffered packets to the underlying writer.
func (w *Writer) Flush() error {
	return w.ng.Flush()
}
