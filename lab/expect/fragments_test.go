package expect

import (
	"testing"

	"github.com/tcplab/tcplab/capture"
)

// TestLateLastACK holds what ClientCloses and ServerCloses take after
// the last ACK (a FIN resent because that ACK came late, the answers, a
// RST from the closed side) and what they must still refuse.
func TestLateLastACK(t *testing.T) {
	const R = capture.RST
	re := capture.Retransmission
	// The client closes; the server's FIN rides on its ACK.
	clientFirst := []capture.Packet{seg(toServer, FA, 1, 1, 0), seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0)}
	serverFirst := []capture.Packet{seg(toClient, FA, 1, 1, 0), seg(toServer, FA, 1, 2, 0), seg(toClient, A, 2, 2, 0)}
	with := func(base []capture.Packet, more ...capture.Packet) []capture.Packet {
		return numbered(append(append([]capture.Packet(nil), base...), more...))
	}
	tests := []struct {
		name  string
		steps []Step
		seen  []capture.Packet
		pass  bool
	}{
		{"client closes", ClientCloses(), with(clientFirst), true},
		{"FIN resent, answered", ClientCloses(), with(clientFirst, seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0)), true},
		{"FIN resent, answered, RST", ClientCloses(), with(clientFirst, seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0), seg(toClient, R, 2, 0, 0)), true},
		{"FIN resent three times", ClientCloses(), with(clientFirst,
			seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0),
			seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0),
			seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0)), true},
		{"FIN resent four times", ClientCloses(), with(clientFirst,
			seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0),
			seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0),
			seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0),
			seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0)), false},
		{"a RST with no FIN resent", ClientCloses(), with(clientFirst, seg(toClient, R, 2, 0, 0)), false},
		{"a FIN again, not a retransmission", ClientCloses(), with(clientFirst, seg(toClient, FA, 1, 2, 0), seg(toServer, A, 2, 2, 0)), false},
		{"a resent FIN unanswered", ClientCloses(), with(clientFirst, seg(toClient, FA, 1, 2, 0, re)), false},
		{"the RST from the wrong side", ClientCloses(), with(clientFirst, seg(toClient, FA, 1, 2, 0, re), seg(toServer, A, 2, 2, 0), seg(toServer, R, 2, 0, 0)), false},
		{"data after the close", ClientCloses(), with(clientFirst, seg(toClient, FA, 1, 2, 0, re), seg(toServer, PA, 2, 2, 10)), false},
		{"server closes", ServerCloses(), with(serverFirst), true},
		{"server closes, FIN resent, RST", ServerCloses(), with(serverFirst, seg(toServer, FA, 1, 2, 0, re), seg(toClient, A, 2, 2, 0), seg(toServer, R, 2, 0, 0)), true},
		{"server closes, RST from the server", ServerCloses(), with(serverFirst, seg(toServer, FA, 1, 2, 0, re), seg(toClient, A, 2, 2, 0), seg(toClient, R, 2, 0, 0)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Match("close", tt.steps, tt.seen, Options{})
			if v.Pass != tt.pass {
				t.Fatalf("pass = %v, want %v: %v", v.Pass, tt.pass, v.Mismatches)
			}
		})
	}
}

// TestServerClosesLateDataACK holds ServerCloses' ACK of the server's last
// data sent after the server's FIN (the server wrote 10 bytes and closed
// before the client's stack ran), before the ACK of the FIN or the FIN
// that carries it, and refuses two of them or one with data.
func TestServerClosesLateDataACK(t *testing.T) {
	fin := seg(toClient, FA, 11, 1, 0)
	late := seg(toServer, A, 1, 11, 0)
	last := seg(toClient, A, 12, 2, 0)
	tests := []struct {
		name string
		seen []capture.Packet
		pass bool
	}{
		{"ACK of the FIN, then FIN", []capture.Packet{fin, late, seg(toServer, A, 1, 12, 0), seg(toServer, FA, 1, 12, 0), last}, true},
		{"FIN carrying the ACK", []capture.Packet{fin, late, seg(toServer, FA, 1, 12, 0), last}, true},
		{"no late ACK", []capture.Packet{fin, seg(toServer, A, 1, 12, 0), seg(toServer, FA, 1, 12, 0), last}, true},
		{"two late ACKs", []capture.Packet{fin, late, late, seg(toServer, A, 1, 12, 0), seg(toServer, FA, 1, 12, 0), last}, false},
		{"a late segment with data", []capture.Packet{fin, seg(toServer, PA, 1, 11, 5), seg(toServer, FA, 6, 12, 0), seg(toClient, A, 12, 7, 0)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Match("close", ServerCloses(), numbered(append([]capture.Packet(nil), tt.seen...)), Options{})
			if v.Pass != tt.pass {
				t.Fatalf("pass = %v, want %v: %v", v.Pass, tt.pass, v.Mismatches)
			}
		})
	}
}
