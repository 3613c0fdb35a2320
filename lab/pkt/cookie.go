package pkt

import "github.com/tcplab/tcplab/lab/scripted"

// namedCookies are the Fast Open cookies a script names instead of
// writing them in hex, with the key each is computed from. packetdrill's
// runners (its run_all.py, the kernel selftests' ksft_runner.sh) define
// them with -D for their addresses: TFO_COOKIE is the cookie of the key
// their defaults.sh sets (net.ipv4.tcp_fastopen_key=
// a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4), TFO_COOKIE_ZERO the one of the
// key 0-0-0-0. tcplab computes them for the run's addresses, so they
// are the same names whatever the addresses.
var namedCookies = map[string][4]uint32{
	"TFO_COOKIE":      {0xa1a1a1a1, 0xb2b2b2b2, 0xc3c3c3c3, 0xd4d4d4d4},
	"TFO_COOKIE_ZERO": {},
}

// namedKey is the key of a cookie name's words.
func namedKey(w [4]uint32) scripted.FastOpenKey {
	return scripted.FastOpenKeyWords(w[0], w[1], w[2], w[3])
}
