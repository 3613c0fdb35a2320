package capture

import (
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// gopacketAccepts reports whether gopacket's TCP layer, which tcplab used
// to read TCP headers, decodes b without an error or a panic.
func gopacketAccepts(b []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	var t layers.TCP
	return t.DecodeFromBytes(b, gopacket.NilDecodeFeedback) == nil
}

// tcpBytes returns a 20-byte TCP header with data offset off (in words),
// then opts, then payload bytes of payload.
func tcpBytes(off byte, opts []byte, payload int) []byte {
	b := make([]byte, 20, 20+len(opts)+payload)
	b[12], b[13] = off<<4, byte(ACK)
	b = append(b, opts...)
	return append(b, make([]byte, payload)...)
}

// TestTCPHeaderAsGopacket holds tcpHeader to the headers gopacket's TCP
// layer accepts: whole ones, whatever their options (MPTCP ones included,
// which that layer parses into structures of its own), and no cut one.
func TestTCPHeaderAsGopacket(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
		hdr  int
	}{
		{"bare", tcpBytes(5, nil, 0), true, 20},
		{"bare with payload", tcpBytes(5, nil, 100), true, 20},
		{"timestamps", tcpBytes(8, []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, 10), true, 32},
		{"option longer than the header", tcpBytes(6, []byte{8, 10, 0, 0}, 0), true, 24},
		{"option length 0", tcpBytes(6, []byte{2, 0, 0, 0}, 0), true, 24},
		{"option cut after its kind", tcpBytes(6, []byte{1, 1, 1, 2}, 0), true, 24},
		{"MPTCP MP_CAPABLE", tcpBytes(8, []byte{30, 12, 0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8}, 0), true, 32},
		{"MPTCP bad length", tcpBytes(6, []byte{30, 2, 0, 0}, 0), true, 24},
		{"MPTCP DSS too short", tcpBytes(6, []byte{30, 4, 0x20, 0x05}, 0), true, 24},
		{"MPTCP ADD_ADDR odd length", tcpBytes(7, []byte{30, 9, 0x31, 1, 127, 0, 0, 1, 0, 0, 0, 0}, 0), true, 28},
		{"MPTCP REMOVE_ADDR", tcpBytes(6, []byte{30, 4, 0x40, 7}, 0), true, 24},
		{"data offset 4", tcpBytes(4, nil, 10), false, 16},
		{"data offset 0", tcpBytes(0, nil, 10), false, 0},
		{"options cut", tcpBytes(8, []byte{1, 1, 8, 10}, 0), false, 32},
		{"19 bytes", tcpBytes(5, nil, 0)[:19], false, 0},
		{"empty", nil, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr, ok := tcpHeader(tc.b)
			if ok != tc.want || hdr != tc.hdr {
				t.Errorf("tcpHeader = %d, %v; want %d, %v", hdr, ok, tc.hdr, tc.want)
			}
			if g := gopacketAccepts(tc.b); g != ok {
				t.Errorf("gopacket accepts: %v; tcpHeader: %v", g, ok)
			}
		})
	}
	// Random headers, mostly of MPTCP options, whose parsing is the
	// intricate part of gopacket's layer.
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200_000 {
		b := make([]byte, 20+r.IntN(48))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		for j := 20; j+1 < len(b); j += 2 + r.IntN(6) {
			if r.IntN(2) == 0 {
				b[j], b[j+1] = 30, byte(r.IntN(30))
			}
		}
		b[12] = byte(r.IntN(16))<<4 | b[12]&0x0f
		_, ok := tcpHeader(b)
		if g := gopacketAccepts(b); g != ok {
			t.Fatalf("header %d %x: gopacket accepts: %v; tcpHeader: %v", i, b, g, ok)
		}
	}
}
