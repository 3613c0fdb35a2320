package scripted

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestCompleteChecksum: a frame whose TCP checksum holds only its pseudo
// header's sum, as the kernel hands a device with checksum offload
// (CHECKSUM_PARTIAL), gets the checksum a full computation gives, for
// both families and an odd payload; a frame that is not TCP is left as
// it is.
func TestCompleteChecksum(t *testing.T) {
	tests := []struct {
		name     string
		src, dst string
		payload  int
	}{
		{"IPv4, no payload", "192.168.0.101:8080", "192.168.0.2:40000", 0},
		{"IPv4, odd payload", "192.168.0.101:8080", "192.168.0.2:40000", 1001},
		{"IPv4, large segment", "192.168.0.101:8080", "192.168.0.2:40000", 60000},
		{"IPv6", "[fd3d:fa7b:d17d::1]:8080", "[fd3d:fa7b:d17d::2]:40000", 777},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := wire{src: netip.MustParseAddrPort(tt.src), dst: netip.MustParseAddrPort(tt.dst), flags: ACK | PSH,
				seq: 1, ack: 1, window: 100, payload: make([]byte, tt.payload)}
			for i := range w.payload {
				w.payload[i] = byte(i * 7)
			}
			b, err := w.frame()
			if err != nil {
				t.Fatal(err)
			}
			if !checksumOK(b) {
				t.Fatal("the built frame's checksum is wrong")
			}
			tcp, pseudo, ok := tcpPseudo(b)
			if !ok {
				t.Fatal("not a TCP frame")
			}
			want := binary.BigEndian.Uint16(tcp[16:])
			// CHECKSUM_PARTIAL: the folded pseudo header sum, not
			// complemented.
			binary.BigEndian.PutUint16(tcp[16:], fold(pseudo))
			if checksumOK(b) {
				t.Fatal("a partial checksum passes as right")
			}
			if !completeChecksum(b) {
				t.Fatal("completeChecksum did not take a TCP frame")
			}
			if got := binary.BigEndian.Uint16(tcp[16:]); got != want || !checksumOK(b) {
				t.Errorf("completed checksum %#04x, want %#04x", got, want)
			}
		})
	}
	udp := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 168, 0, 1, 192, 168, 0, 2, 0, 1, 0, 2, 0, 8, 0xab, 0xcd}
	if completeChecksum(udp) || udp[26] != 0xab {
		t.Error("completeChecksum changed a UDP frame")
	}
}
