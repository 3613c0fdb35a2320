package capgen

import (
	"encoding/binary"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// ShortConns is a Source (capture.Source) of N short connections, made on
// the fly: each a handshake, the client's FIN, the server's FIN and the
// last ACK, from a client address and port of its own to one server.
// Connections run Concurrent at a time, interleaved, and the capture
// clock advances Gap per frame from Epoch.
type ShortConns struct {
	N, Concurrent int
	Gap           time.Duration
	frame         int // frames made so far
	at            time.Time
	buf           [54]byte
}

// ShortConnFrames is how many frames each connection of ShortConns has.
const ShortConnFrames = len(shortConnFrames)

// shortConnFrames are the frames of one short connection: direction
// (0 client to server), flags, seq and ack relative to the ISNs (1000 for
// the client, 5000 for the server).
var shortConnFrames = [...]struct {
	dir      int
	flags    byte
	seq, ack uint32
}{
	{0, syn, 0, 0}, {1, syn | ack, 0, 1}, {0, ack, 1, 1},
	{0, fin | ack, 1, 1}, {1, fin | ack, 1, 2}, {0, ack, 2, 2},
}

// At returns the capture time of the last frame made.
func (s *ShortConns) At() time.Time { return s.at }

// LinkType returns Ethernet.
func (s *ShortConns) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

// ReadPacketData returns the next frame, and io.EOF after the last
// connection's last frame.
func (s *ShortConns) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	per := len(shortConnFrames)
	if s.frame == s.N*per {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	// Frame f is step (f / concurrent) % per of connection
	// batch*concurrent + f%concurrent.
	batch, rest := s.frame/(s.Concurrent*per), s.frame%(s.Concurrent*per)
	step, conn := rest/s.Concurrent, batch*s.Concurrent+rest%s.Concurrent
	s.frame++
	if s.at.IsZero() {
		s.at = Epoch
	}
	s.at = s.at.Add(s.Gap)
	st := shortConnFrames[step]
	b := s.buf[:]
	clear(b)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 40)
	client := [4]byte{10, byte(conn >> 16), byte(conn >> 8), byte(conn)}
	server := [4]byte{192, 168, 0, 101}
	tcp := b[34:54]
	cport, sport := uint16(40000+conn%20000), uint16(8000)
	seq, ackn := 1000+st.seq, 5000+st.ack
	if st.dir == 0 {
		copy(ip[12:], client[:])
		copy(ip[16:], server[:])
		binary.BigEndian.PutUint16(tcp[0:], cport)
		binary.BigEndian.PutUint16(tcp[2:], sport)
	} else {
		copy(ip[12:], server[:])
		copy(ip[16:], client[:])
		binary.BigEndian.PutUint16(tcp[0:], sport)
		binary.BigEndian.PutUint16(tcp[2:], cport)
		seq, ackn = 5000+st.seq, 1000+st.ack
	}
	if st.flags&ack == 0 {
		ackn = 0
	}
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ackn)
	tcp[12], tcp[13] = 5<<4, st.flags
	binary.BigEndian.PutUint16(tcp[14:], 1000)
	return b, gopacket.CaptureInfo{Timestamp: s.at, CaptureLength: len(b), Length: len(b)}, nil
}
