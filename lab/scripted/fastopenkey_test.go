package scripted_test

import (
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/tcplab/tcplab/lab/scripted"
)

// TestFastOpenKeyCookie: the cookies the kernel gives packetdrill's
// runners' addresses under the key of packetdrill's defaults.sh and
// under the zero key, as their -D TFO_COOKIE=... define them (and as
// lab/pkt's test reads them off a kernel's SYN/ACK).
func TestFastOpenKeyCookie(t *testing.T) {
	defaults := scripted.FastOpenKeyWords(0xa1a1a1a1, 0xb2b2b2b2, 0xc3c3c3c3, 0xd4d4d4d4)
	tests := []struct {
		key                  scripted.FastOpenKey
		client, server, want string
	}{
		{defaults, "192.0.2.1", "192.168.0.1", "3021b9d889017eeb"},
		{scripted.FastOpenKey{}, "192.0.2.1", "192.168.0.1", "b7c12350a90dc8f5"},
		{defaults, "fd3d:fa7b:d17d::1", "fd3d:0a0b:17d6::1", "c1d1e9742a47a9bc"},
		{scripted.FastOpenKey{}, "fd3d:fa7b:d17d::1", "fd3d:0a0b:17d6::1", "82af1a8f9a205c34"},
		// packetdrill's run_all.py addresses.
		{defaults, "192.0.2.1", "192.168.0.2", "de4f234f0f433a55"},
		{defaults, "2001:db8::1", "fd3d:fa7b:d17d::", "6aa6ae70c288023b"},
		// A mapped address is its IPv4 address on the wire.
		{defaults, "::ffff:192.0.2.1", "::ffff:192.168.0.1", "3021b9d889017eeb"},
	}
	for _, tt := range tests {
		got := hex.EncodeToString(tt.key.Cookie(netip.MustParseAddr(tt.client), netip.MustParseAddr(tt.server)))
		if got != tt.want {
			t.Errorf("cookie for %s connecting to %s under %x = %s, want %s", tt.client, tt.server, tt.key, got, tt.want)
		}
	}
	// The words are stored little-endian.
	if k := scripted.FastOpenKeyWords(0x01020304, 0, 0, 0x0a0b0c0d); k[0] != 4 || k[3] != 1 || k[12] != 0x0d {
		t.Errorf("FastOpenKeyWords(0x01020304, 0, 0, 0x0a0b0c0d) = %x", k)
	}
}
