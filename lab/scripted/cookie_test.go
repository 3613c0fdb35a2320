package scripted

import (
	"bytes"
	"net/netip"
	"testing"
)

// TestFastOpenCookieOf: the cookie of a built segment's Fast Open option
// is read back, IPv4 and IPv6, in the option's two forms; a request, no
// option and a cut header give none.
func TestFastOpenCookieOf(t *testing.T) {
	cookie := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	v4 := [2]netip.AddrPort{netip.MustParseAddrPort("192.168.0.2:40000"), netip.MustParseAddrPort("192.168.0.1:8080")}
	v6 := [2]netip.AddrPort{netip.MustParseAddrPort("[fd3d::2]:40000"), netip.MustParseAddrPort("[fd3d::1]:8080")}
	tests := []struct {
		name  string
		addrs [2]netip.AddrPort
		w     wire
		cut   int // bytes cut off the end
		want  []byte
	}{
		{"ipv4 cookie", v4, wire{flags: SYN | ACK, mss: Uint16(1460), sackOK: true, fastOpen: cookie}, 0, cookie},
		{"ipv6 cookie", v6, wire{flags: SYN | ACK, ts: true, fastOpen: cookie}, 0, cookie},
		{"experimental form", v4, wire{flags: SYN | ACK, raw: []RawOption{{Kind: 254, Data: append([]byte{0xf9, 0x89}, cookie...)}}}, 0, cookie},
		{"other experiment", v4, wire{flags: SYN | ACK, raw: []RawOption{{Kind: 254, Data: append([]byte{0xf9, 0x88}, cookie...)}}}, 0, nil},
		{"request", v4, wire{flags: SYN, fastOpen: []byte{}}, 0, nil},
		{"no option", v4, wire{flags: SYN | ACK, mss: Uint16(1460)}, 0, nil},
		{"header cut", v4, wire{flags: SYN | ACK, fastOpen: cookie}, 8, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.w.src, tt.w.dst = tt.addrs[0], tt.addrs[1]
			b, err := tt.w.frame()
			if err != nil {
				t.Fatal(err)
			}
			if got := fastOpenCookie(b[:len(b)-tt.cut]); !bytes.Equal(got, tt.want) {
				t.Errorf("cookie %x, want %x", got, tt.want)
			}
		})
	}
}
