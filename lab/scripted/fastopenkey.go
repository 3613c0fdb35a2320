package scripted

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// FastOpenKey is a TCP Fast Open key as Linux holds it: the 16 bytes of
// its SipHash key (setsockopt TCP_FASTOPEN_KEY's bytes).
type FastOpenKey [16]byte

// FastOpenKeyWords is the key that the sysctl net.ipv4.tcp_fastopen_key
// sets from its text w0-w1-w2-w3 (hex words, each stored
// little-endian).
func FastOpenKeyWords(w0, w1, w2, w3 uint32) FastOpenKey {
	var k FastOpenKey
	for i, v := range []uint32{w0, w1, w2, w3} {
		binary.LittleEndian.PutUint32(k[4*i:], v)
	}
	return k
}

// Cookie is the Fast Open cookie a Linux server under key k gives a
// client at client that connects to server (the SYN's source and
// destination): SipHash-2-4 of the two addresses, the client's first (4
// bytes each for IPv4, an IPv4-mapped address as its IPv4 one, 16 for
// IPv6), its 64-bit result little-endian (the kernel's
// tcp_fastopen_cookie_gen).
func (k FastOpenKey) Cookie(client, server netip.Addr) []byte {
	msg := append(client.Unmap().AsSlice(), server.Unmap().AsSlice()...)
	k0 := binary.LittleEndian.Uint64(k[:8])
	k1 := binary.LittleEndian.Uint64(k[8:])
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
