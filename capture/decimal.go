package capture

import "math/bits"

// Decimal numbers written straight into the line being formatted: the
// annotate command writes seven or eight numbers per segment, and
// strconv's copy through a buffer of its own, then padding a space at a
// time, cost more than the rest of the line.

// digitPairs holds "00" to "99", two bytes each.
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// spaces pads fields; wider pads go in steps of it.
const spaces = "                                "

// decimalLen returns how many decimal digits v takes.
func decimalLen(v uint64) int {
	n := 1
	for v >= 10000 {
		v /= 10000
		n += 4
	}
	if v >= 100 {
		v /= 100
		n += 2
	}
	if v >= 10 {
		n++
	}
	return n
}

// putDecimal writes v's digits into b, which is exactly decimalLen(v)
// (decimalLen32(v) for a uint32) long. Each width is its own instance:
// a uint32's divisions stay 32-bit.
func putDecimal[T uint32 | uint64](b []byte, v T) {
	i := len(b)
	for v >= 100 {
		q := v / 100
		r := (v - q*100) * 2
		i -= 2
		b[i], b[i+1] = digitPairs[r], digitPairs[r+1]
		v = q
	}
	if v >= 10 {
		b[i-2], b[i-1] = digitPairs[v*2], digitPairs[v*2+1]
		return
	}
	b[i-1] = byte('0' + v)
}

// extend returns dst grown by n bytes, and the n bytes.
func extend(dst []byte, n int) ([]byte, []byte) {
	l := len(dst)
	if cap(dst)-l < n {
		dst = append(dst[:cap(dst)], make([]byte, l+n-cap(dst))...)
	}
	dst = dst[:l+n]
	return dst, dst[l:]
}

// appendUint appends v in decimal, as strconv.AppendUint(dst, v, 10).
func appendUint(dst []byte, v uint64) []byte {
	if v <= 1<<32-1 {
		return appendPad32(dst, uint32(v), 0, true)
	}
	dst, b := extend(dst, decimalLen(v))
	putDecimal(b, v)
	return dst
}

// appendInt appends v in decimal, as strconv.AppendInt(dst, v, 10).
func appendInt(dst []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(dst, uint64(v))
	}
	u := -uint64(v)
	dst, b := extend(dst, 1+decimalLen(u))
	b[0] = '-'
	putDecimal(b[1:], u)
	return dst
}

// appendSpaces appends n spaces (none when n <= 0).
func appendSpaces(dst []byte, n int) []byte {
	for n > len(spaces) {
		dst = append(dst, spaces...)
		n -= len(spaces)
	}
	if n > 0 {
		dst = append(dst, spaces[:n]...)
	}
	return dst
}

// pow10 holds 10^i for every i a uint32 reaches.
var pow10 = [10]uint32{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// decimalLen32 returns how many decimal digits v takes.
func decimalLen32(v uint32) int {
	t := bits.Len32(v) * 1233 >> 12 // about log10(v), or one below
	if v >= pow10[t] {
		t++
	}
	return max(t, 1)
}

// eightSpaces is eight spaces as a little-endian word.
const eightSpaces = 0x2020202020202020

// appendPad32 appends v in at least width characters, at most 16, padded
// with spaces on the right when left is set (fmt's %-Nd), else on the
// left (%Nd): the common case of appendPadInt. The digits go right to
// left into the middle of 32 bytes of spaces, and the 16 from where the
// field starts are copied whole.
func appendPad32(dst []byte, v uint32, width int, left bool) []byte {
	var tmp [32]byte
	le.PutUint64(tmp[0:], eightSpaces)
	le.PutUint64(tmp[8:], eightSpaces)
	le.PutUint64(tmp[16:], eightSpaces)
	le.PutUint64(tmp[24:], eightSpaces)
	i := 16
	for v >= 100 {
		q := v / 100
		r := (v - q*100) * 2
		i -= 2
		tmp[i], tmp[i+1] = digitPairs[r], digitPairs[r+1]
		v = q
	}
	if v >= 10 {
		i -= 2
		tmp[i], tmp[i+1] = digitPairs[v*2], digitPairs[v*2+1]
	} else {
		i--
		tmp[i] = byte('0' + v)
	}
	w := max(16-i, width)
	from := i // left-aligned: the digits, then spaces
	if !left {
		from = 16 - w // right-aligned: spaces, then the digits
	}
	l := len(dst)
	if cap(dst)-l < 16 {
		dst = append(dst[:cap(dst)], make([]byte, l+16-cap(dst))...)
	}
	*(*[16]byte)(dst[l : l+16]) = *(*[16]byte)(tmp[from : from+16])
	return dst[:l+w]
}
