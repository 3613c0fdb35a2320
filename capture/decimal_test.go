package capture

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// decimalCases are the values where a digit count changes (each power of
// ten and the number before it), both ends of the integer types, and
// random values of every length.
func decimalCases() []uint64 {
	vs := []uint64{0, math.MaxUint64, math.MaxUint32, math.MaxInt64, math.MaxInt64 + 1}
	for p := uint64(1); p <= 1e19; p *= 10 {
		vs = append(vs, p-1, p, p+1)
		if p == 1e19 {
			break
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		vs = append(vs, r.Uint64()>>r.IntN(64))
	}
	return vs
}

// TestAppendDecimal holds appendUint and appendInt to strconv, onto a
// buffer with and without room.
func TestAppendDecimal(t *testing.T) {
	for _, v := range decimalCases() {
		for _, dst := range [][]byte{nil, []byte("x"), make([]byte, 3, 64)} {
			if got, want := string(appendUint(dst, v)), string(strconv.AppendUint(dst, v, 10)); got != want {
				t.Fatalf("appendUint(%q, %d) = %q, strconv %q", dst, v, got, want)
			}
			for _, s := range []int64{int64(v), -int64(v)} {
				if got, want := string(appendInt(dst, s)), string(strconv.AppendInt(dst, s, 10)); got != want {
					t.Fatalf("appendInt(%q, %d) = %q, strconv %q", dst, s, got, want)
				}
			}
		}
		if got, want := decimalLen(v), len(strconv.FormatUint(v, 10)); got != want {
			t.Fatalf("decimalLen(%d) = %d, want %d", v, got, want)
		}
	}
	if got := string(appendInt(nil, math.MinInt64)); got != "-9223372036854775808" {
		t.Errorf("appendInt(MinInt64) = %q", got)
	}
}

// TestAppendPadInt holds appendPadInt to fmt's %Nd and %-Nd, narrower and
// wider than the number, both signs.
func TestAppendPadInt(t *testing.T) {
	for _, v := range decimalCases()[:200] {
		for _, s := range []int64{int64(v), -int64(v)} {
			for _, width := range []int{0, 1, 3, 6, 10, 25, 70} {
				if got, want := string(appendPadInt([]byte("x"), s, width, false)), fmt.Sprintf("x%*d", width, s); got != want {
					t.Fatalf("appendPadInt(%d, %d, right) = %q, fmt %q", s, width, got, want)
				}
				if got, want := string(appendPadInt([]byte("x"), s, width, true)), fmt.Sprintf("x%-*d", width, s); got != want {
					t.Fatalf("appendPadInt(%d, %d, left) = %q, fmt %q", s, width, got, want)
				}
			}
		}
	}
}

// TestPad: pad fills up to the width, in steps wider than its spaces too,
// and adds nothing to a field already as wide.
func TestPad(t *testing.T) {
	for _, tc := range []struct {
		field string
		width int
		want  int
	}{{"", 0, 0}, {"", 7, 7}, {"abc", 11, 11}, {"abcdef", 3, 6}, {"a", 100, 100}, {"a", len(spaces) + 1, len(spaces) + 1}} {
		got := string(pad([]byte(">"+tc.field), 1, tc.width))
		if want := ">" + tc.field + strings.Repeat(" ", tc.want-len(tc.field)); got != want {
			t.Errorf("pad(%q, %d) = %q, want %q", tc.field, tc.width, got, want)
		}
	}
}

// TestAppendPad32 holds appendPad32 and decimalLen32 to fmt and strconv
// at every digit count's ends, onto buffers with and without room.
func TestAppendPad32(t *testing.T) {
	vs := []uint32{0, math.MaxUint32}
	for _, p := range pow10 {
		vs = append(vs, p-1, p, p+1)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		vs = append(vs, r.Uint32()>>r.IntN(32))
	}
	for _, v := range vs {
		if got, want := decimalLen32(v), len(strconv.FormatUint(uint64(v), 10)); got != want {
			t.Fatalf("decimalLen32(%d) = %d, want %d", v, got, want)
		}
		for _, dst := range [][]byte{nil, []byte("x"), make([]byte, 3, 18)} {
			for _, width := range []int{0, 1, 5, 10, 16} {
				if got, want := string(appendPad32(dst, v, width, false)), fmt.Sprintf("%s%*d", dst, width, v); got != want {
					t.Fatalf("appendPad32(%q, %d, %d, right) = %q, fmt %q", dst, v, width, got, want)
				}
				if got, want := string(appendPad32(dst, v, width, true)), fmt.Sprintf("%s%-*d", dst, width, v); got != want {
					t.Fatalf("appendPad32(%q, %d, %d, left) = %q, fmt %q", dst, v, width, got, want)
				}
			}
		}
	}
}
