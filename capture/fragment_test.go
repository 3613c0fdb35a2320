package capture

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fragIn is one fragment fed to the reassembler in a test: data at byte
// offset off of datagram id (IPv6 when v6), more fragments to follow
// unless last, at a time since testEpoch.
type fragIn struct {
	id   uint32
	off  int
	data string
	last bool
	at   time.Duration
	v6   bool
}

// fragOut is what the fragment that completes a datagram must give.
type fragOut struct {
	data     string
	conflict bool
}

// in returns the fragment as the Decoder hands it to the reassembler.
func (f fragIn) in() fragment {
	src, dst := client4.Addr(), server4.Addr()
	timeout := fragTimeout4
	if f.v6 {
		src, dst, timeout = client6.Addr(), server6.Addr(), fragTimeout6
	}
	return fragment{
		key: fragKey{src: src, dst: dst, id: f.id, proto: 6}, now: testEpoch.Add(f.at), timeout: timeout,
		off: f.off, data: []byte(f.data), more: !f.last, limit: maxDatagramLength - 20,
	}
}

// s8 returns eight bytes of c.
func s8(c byte) string { return strings.Repeat(string(c), 8) }

// manyFirst returns first fragments of datagrams ids from, from+1, ... n
// of them.
func manyFirst(from, n int) []fragIn {
	var out []fragIn
	for i := range n {
		out = append(out, fragIn{id: uint32(from + i), data: s8('a')})
	}
	return out
}

// repeated returns n copies of f.
func repeated(f fragIn, n int) []fragIn {
	out := make([]fragIn, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// cat joins fragment lists.
func cat(fs ...[]fragIn) []fragIn {
	var out []fragIn
	for _, f := range fs {
		out = append(out, f...)
	}
	return out
}

// TestReassembler feeds the reassembler fragments and checks which one
// completes each datagram, with what data, and that it never holds more
// than its bounds.
func TestReassembler(t *testing.T) {
	a, b, c := s8('a'), s8('b'), s8('c')
	big := strings.Repeat("z", 60000)
	for _, tc := range []struct {
		name  string
		frags []fragIn
		want  map[int]fragOut // by index of the completing fragment
	}{
		{"in-order", []fragIn{{off: 0, data: a}, {off: 8, data: b}, {off: 16, data: "cc", last: true}},
			map[int]fragOut{2: {a + b + "cc", false}}},
		{"reverse-order", []fragIn{{off: 16, data: "cc", last: true}, {off: 8, data: b}, {off: 0, data: a}},
			map[int]fragOut{2: {a + b + "cc", false}}},
		{"one-fragment-datagram-not-atomic", []fragIn{{off: 0, data: "abc", last: true}},
			map[int]fragOut{0: {"abc", false}}},
		{"empty-last-fragment", []fragIn{{off: 0, data: a}, {off: 8, last: true}},
			map[int]fragOut{1: {a, false}}},
		{"interleaved", []fragIn{{id: 1, data: a}, {id: 2, data: b}, {id: 2, off: 8, data: "2", last: true}, {id: 1, off: 8, data: "1", last: true}},
			map[int]fragOut{2: {b + "2", false}, 3: {a + "1", false}}},
		{"same-id-other-family", []fragIn{{id: 1, data: a}, {id: 1, off: 8, data: "6", last: true, v6: true}, {id: 1, off: 8, data: "4", last: true}},
			map[int]fragOut{2: {a + "4", false}}},
		{"duplicate", []fragIn{{data: a}, {data: a}, {off: 8, data: "bb", last: true}},
			map[int]fragOut{2: {a + "bb", false}}},
		{"duplicate-after-completion-starts-anew", []fragIn{{data: a}, {off: 8, data: "bb", last: true}, {off: 8, data: "bb", last: true}},
			map[int]fragOut{1: {a + "bb", false}}},
		{"overlap-same-bytes", []fragIn{{data: a + b}, {off: 8, data: b + c}, {off: 24, data: "d", last: true}},
			map[int]fragOut{2: {a + b + c + "d", false}}},
		{"overlap-same-offset-first-wins", []fragIn{{data: a}, {data: s8('x')}, {off: 8, data: "bb", last: true}},
			map[int]fragOut{2: {a + "bb", true}}},
		{"overlap-lower-offset-wins", []fragIn{{off: 8, data: s8('x')}, {data: a + b}, {off: 16, data: "cc", last: true}},
			map[int]fragOut{2: {a + b + "cc", true}}},
		{"overlap-inside", []fragIn{{data: a + b + c}, {off: 8, data: s8('x')}, {off: 24, data: "d", last: true}},
			map[int]fragOut{2: {a + b + c + "d", true}}},
		{"two-last-fragments", []fragIn{{off: 8, data: "bb", last: true}, {off: 8, data: "bbbb", last: true}, {data: a}},
			map[int]fragOut{2: {a + "bb", true}}},
		{"data-past-the-end", []fragIn{{off: 8, data: "bb", last: true}, {off: 8, data: b}, {data: a}},
			map[int]fragOut{2: {a + "bb", true}}},
		{"missing-piece", []fragIn{{data: a}, {off: 16, data: "cc", last: true}}, nil},
		{"timeout-ipv4", []fragIn{{data: a}, {off: 8, data: "bb", last: true, at: 31 * time.Second}, {data: a, at: 31 * time.Second}},
			map[int]fragOut{2: {a + "bb", false}}},
		{"within-timeout-ipv6", []fragIn{{data: a, v6: true}, {off: 8, data: "bb", last: true, at: 59 * time.Second, v6: true}},
			map[int]fragOut{1: {a + "bb", false}}},
		{"timeout-ipv6", []fragIn{{data: a, v6: true}, {off: 8, data: "bb", last: true, at: 61 * time.Second, v6: true}}, nil},
		{"time-going-back", []fragIn{{data: a, at: time.Minute}, {off: 8, data: "bb", last: true}},
			map[int]fragOut{1: {a + "bb", false}}},
		{"too-long", []fragIn{{data: a}, {off: 65512, data: a + b, last: true}, {off: 8, data: "bb", last: true}}, nil},
		{"at-the-longest", []fragIn{{data: a}, {off: 65504, data: a + "abc", last: true}, {off: 8, data: strings.Repeat("m", 65496)}},
			map[int]fragOut{2: {a + strings.Repeat("m", 65496) + a + "abc", false}}},
		{"evict-oldest-datagram", cat(manyFirst(1, maxDatagrams+1),
			[]fragIn{{id: 2, off: 8, data: "2", last: true}, {id: 1, off: 8, data: "1", last: true}}),
			map[int]fragOut{maxDatagrams + 1: {a + "2", false}}},
		{"too-many-pieces", cat(repeated(fragIn{data: a}, maxPieces+1), []fragIn{{off: 8, data: "bb", last: true}}), nil},
		// 40 datagrams of two 60000-byte copies exceed 4 MiB long before
		// 64 datagrams: the oldest go first.
		{"evict-at-the-byte-bound", cat(
			func() []fragIn {
				var fs []fragIn
				for id := range uint32(40) {
					fs = append(fs, fragIn{id: id + 1, data: big}, fragIn{id: id + 1, data: big})
				}
				return fs
			}(),
			[]fragIn{{id: 1, off: 60000, data: "1", last: true}, {id: 40, off: 60000, data: "x", last: true}}),
			map[int]fragOut{81: {big + "x", false}}},
		// The fragment that completes a datagram evicts the oldest one.
		{"complete-after-eviction", cat(
			func() []fragIn {
				var fs []fragIn
				for id := range uint32(34) {
					fs = append(fs, fragIn{id: id + 1, data: big}, fragIn{id: id + 1, data: big})
				}
				return fs
			}(),
			[]fragIn{{id: 35, data: big}, {id: 36, data: strings.Repeat("y", 47704)},
				{id: 35, off: 60000, data: strings.Repeat("e", 5515), last: true},
				{id: 36, off: 47704, data: "z", last: true}}),
			map[int]fragOut{70: {big + strings.Repeat("e", 5515), false}, 71: {strings.Repeat("y", 47704) + "z", false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r reassembler
			for i, f := range tc.frags {
				r.newFrame()
				data, conflict, ok := r.add(f.in())
				checkBounds(t, &r)
				want, done := tc.want[i]
				if ok != done {
					t.Fatalf("fragment %d (id %d, offset %d): complete = %v, want %v", i, f.id, f.off, ok, done)
				}
				if !ok {
					continue
				}
				if string(data) != want.data {
					t.Errorf("fragment %d: datagram %.40q (%d bytes), want %.40q (%d bytes)", i, data, len(data), want.data, len(want.data))
				}
				if conflict != want.conflict {
					t.Errorf("fragment %d: conflict %v, want %v", i, conflict, want.conflict)
				}
			}
		})
	}
}

// checkBounds checks the reassembler's limits and its byte count.
func checkBounds(t *testing.T, r *reassembler) {
	t.Helper()
	held := 0
	for _, dg := range r.dgs {
		held += dg.held
		if len(dg.pieces) > maxPieces {
			t.Fatalf("datagram %d holds %d fragments", dg.key.id, len(dg.pieces))
		}
	}
	if held != r.held || r.held > maxFragmentBytes || len(r.dgs) > maxDatagrams || len(r.free) > maxFree {
		t.Fatalf("holding %d bytes (counted %d) in %d datagrams, %d free", held, r.held, len(r.dgs), len(r.free))
	}
}

// TestReassemblerBuffersKept checks that two datagrams completed in one
// frame (an outer and an inner IP level) get separate buffers, and that a
// later frame reuses them.
func TestReassemblerBuffersKept(t *testing.T) {
	var r reassembler
	r.newFrame()
	r.add(fragIn{id: 1, data: s8('a')}.in())
	r.add(fragIn{id: 2, data: s8('b')}.in())
	outer, _, ok1 := r.add(fragIn{id: 1, off: 8, data: "1", last: true}.in())
	inner, _, ok2 := r.add(fragIn{id: 2, off: 8, data: "2", last: true}.in())
	if !ok1 || !ok2 || string(outer) != s8('a')+"1" || string(inner) != s8('b')+"2" {
		t.Fatalf("datagrams %q %v, %q %v", outer, ok1, inner, ok2)
	}
	r.newFrame()
	r.add(fragIn{id: 3, data: s8('c')}.in())
	again, _, _ := r.add(fragIn{id: 3, off: 8, data: "3", last: true}.in())
	if &again[0] != &outer[0] {
		t.Error("the next frame's datagram does not reuse the first buffer")
	}
}

// TestReassemblerAllocs checks that, once warm, reassembling datagram
// after datagram allocates nothing: the fragment and datagram buffers are
// reused.
func TestReassemblerAllocs(t *testing.T) {
	var r reassembler
	payload := bytes.Repeat([]byte("x"), 1480)
	id := uint32(0)
	one := func() {
		id++
		k := fragKey{src: netip.MustParseAddr("10.0.0.1"), dst: netip.MustParseAddr("10.0.0.2"), id: id, proto: 6}
		for i := range 3 {
			r.newFrame()
			_, _, ok := r.add(fragment{key: k, now: testEpoch, timeout: fragTimeout4, off: (2 - i) * 1480, data: payload,
				more: i != 0, limit: maxDatagramLength - 20})
			if ok != (i == 2) {
				t.Fatalf("fragment %d: complete = %v", i, ok)
			}
		}
	}
	one()
	if a := testing.AllocsPerRun(100, one); a != 0 {
		t.Errorf("a datagram of three fragments allocates %.1f times, want 0", a)
	}
}
