package pkt

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// A Fast Open key as the kernel holds it: the 16 bytes of its SipHash
// key (setsockopt TCP_FASTOPEN_KEY's bytes; the sysctl
// net.ipv4.tcp_fastopen_key's four words, each stored little-endian).
type fastOpenKey [16]byte

// keyFromWords is the key the sysctl net.ipv4.tcp_fastopen_key sets from
// its text w0-w1-w2-w3.
func keyFromWords(w [4]uint32) fastOpenKey {
	var k fastOpenKey
	for i, v := range w {
		binary.LittleEndian.PutUint32(k[4*i:], v)
	}
	return k
}

// namedCookies are the Fast Open cookies a script names instead of
// writing them in hex, with the key each is computed from. packetdrill's
// runners (its run_all.py, the kernel selftests' ksft_runner.sh) define
// them with -D for their addresses: TFO_COOKIE is the cookie of the key
// their defaults.sh sets (net.ipv4.tcp_fastopen_key=
// a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4), TFO_COOKIE_ZERO the one of the
// key 0-0-0-0. tcplab computes them for the run's addresses, so they
// are the same names whatever the addresses.
var namedCookies = map[string]fastOpenKey{
	"TFO_COOKIE":      keyFromWords([4]uint32{0xa1a1a1a1, 0xb2b2b2b2, 0xc3c3c3c3, 0xd4d4d4d4}),
	"TFO_COOKIE_ZERO": {},
}

// fastOpenCookie is the cookie the kernel's server gives a client at
// src that connects to dst (the SYN's source and destination) under key:
// SipHash-2-4 of the two addresses, source first (4 bytes each for IPv4,
// 16 for IPv6), its 64-bit result little-endian (the kernel's
// tcp_fastopen_cookie_gen).
func fastOpenCookie(key fastOpenKey, src, dst netip.Addr) []byte {
	msg := append(src.Unmap().AsSlice(), dst.Unmap().AsSlice()...)
	k0 := binary.LittleEndian.Uint64(key[:8])
	k1 := binary.LittleEndian.Uint64(key[8:])
	return binary.LittleEndian.AppendUint64(nil, sipHash24(k0, k1, msg))
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein, 2012) of msg under
// the key k0, k1: two rounds per 8-byte word, four at the end.
func sipHash24(k0, k1 uint64, msg []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13) ^ v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16) ^ v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21) ^ v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17) ^ v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	compress := func(m uint64) {
		v3 ^= m
		round()
		round()
		v0 ^= m
	}
	n := len(msg)
	for ; len(msg) >= 8; msg = msg[8:] {
		compress(binary.LittleEndian.Uint64(msg))
	}
	// The last word: the bytes left, and the length's low byte on top.
	var last [8]byte
	copy(last[:], msg)
	last[7] = byte(n)
	compress(binary.LittleEndian.Uint64(last[:]))
	v2 ^= 0xff
	for range 4 {
		round()
	}
	return v0 ^ v1 ^ v2 ^ v3
}
