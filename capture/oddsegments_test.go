package capture

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/internal/testenv"
)

// optTFO is a TCP Fast Open option (kind 34) with a cookie of n bytes; 0
// is a cookie request.
func optTFO(n int) layers.TCPOption {
	return layers.TCPOption{OptionType: 34, OptionLength: uint8(2 + n), OptionData: make([]byte, n)}
}

// optTFOExp is the experimental Fast Open option: kind 254, magic 0xf989,
// then a cookie of n bytes.
func optTFOExp(n int) layers.TCPOption {
	return layers.TCPOption{OptionType: 254, OptionLength: uint8(4 + n), OptionData: append([]byte{0xf9, 0x89}, make([]byte, n)...)}
}

// TestOddSegments: TCP Fast Open and its labels, a Fast Open SYN answered
// by two SYN/ACKs with different ISNs, SYN+RST+FIN on one segment, and
// capture timestamps that jump backwards. tcplab's labels of the frames
// named must be those given, and tshark 4.0 must agree on every frame,
// but for the documented difference of a second SYN/ACK (DIFFERENCES.md
// 4).
func TestOddSegments(t *testing.T) {
	testenv.Tool(t, "tshark")
	ms := time.Millisecond
	tfoSYN := func(data int, opt layers.TCPOption) step {
		return step{cs, SYN, 0, 0, data, 64240, append(synOptions(), optNOP(), optNOP(), opt), 0}
	}
	synAck := func(ack uint32) step { return step{sc, SYN | ACK, 0, ack, 0, 65160, synOptions(), ms} }
	tests := []struct {
		name  string
		steps []step
		want  map[int]Labels // by step
		// secondSynAck accepts tshark's rebasing on a second SYN/ACK.
		secondSynAck bool
	}{
		{name: "tfo-accepted", steps: []step{tfoSYN(10, optTFO(8)), synAck(11), {cs, ACK, 11, 1, 0, 502, nil, 2 * ms}},
			want: map[int]Labels{0: labelsOf(TFOSyn), 1: labelsOf(TFOAck), 2: 0}},
		{name: "tfo-ignored", steps: []step{tfoSYN(10, optTFO(8)), synAck(1), {cs, PSH | ACK, 1, 1, 10, 502, nil, 2 * ms}},
			want: map[int]Labels{0: labelsOf(TFOSyn), 1: labelsOf(TFOIgnored), 2: labelsOf(Retransmission)}},
		{name: "tfo-cookie-request", steps: []step{tfoSYN(0, optTFO(0)),
			{sc, SYN | ACK, 0, 1, 0, 65160, append(synOptions(), optNOP(), optNOP(), optTFO(8)), ms}, {cs, ACK, 1, 1, 0, 502, nil, 2 * ms}},
			want: map[int]Labels{0: 0, 1: 0}},
		{name: "tfo-cookie-without-data", steps: []step{tfoSYN(0, optTFO(8)), synAck(1), {cs, ACK, 1, 1, 0, 502, nil, 2 * ms}},
			want: map[int]Labels{0: labelsOf(TFOSyn), 1: 0}},
		{name: "syn-data-without-cookie", steps: []step{{cs, SYN, 0, 0, 10, 64240, synOptions(), 0}, synAck(11), {cs, ACK, 11, 1, 0, 502, nil, 2 * ms}},
			want: map[int]Labels{0: 0, 1: labelsOf(TFOAck)}},
		{name: "tfo-experimental-option", steps: []step{tfoSYN(10, optTFOExp(8)), synAck(11), {cs, ACK, 11, 1, 0, 502, nil, 2 * ms}},
			want: map[int]Labels{0: labelsOf(TFOSyn), 1: labelsOf(TFOAck)}},
		{name: "tfo-syn-two-syn-acks", steps: []step{tfoSYN(10, optTFO(8)), synAck(11),
			{sc, SYN | ACK, 5000, 11, 0, 65160, synOptions(), 2 * ms},
			{cs, ACK, 11, 1, 0, 502, nil, 3 * ms}, {cs, PSH | ACK, 11, 1, 10, 502, nil, 4 * ms}, {sc, ACK, 1, 21, 0, 509, nil, 5 * ms}},
			want:         map[int]Labels{0: labelsOf(TFOSyn), 1: labelsOf(TFOAck), 2: labelsOf(TFOAck), 3: 0, 4: 0, 5: 0},
			secondSynAck: true},
		{name: "syn-rst-fin-in-a-connection", steps: append(handshake(), step{cs, SYN | RST | FIN, 1, 0, 0, 502, nil, 0}, step{sc, ACK, 1, 1, 0, 509, nil, 0}),
			want: map[int]Labels{3: labelsOf(ReusedPorts), 4: 0}},
		{name: "syn-rst-fin-first", steps: []step{{cs, SYN | RST | FIN, 0, 0, 0, 502, nil, 0}, {sc, RST | ACK, 0, 1, 0, 0, nil, ms}},
			want: map[int]Labels{0: 0, 1: 0}},
		{name: "timestamps-backwards", steps: append(handshake(),
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 10 * ms},
			step{cs, PSH | ACK, 101, 1, 100, 502, nil, 5 * ms},
			// Within the first RTT of the highest segment, had the clock
			// not gone back: a retransmission, not out-of-order.
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 4 * ms},
			step{sc, ACK, 1, 201, 0, 509, nil, 3 * ms}),
			want: map[int]Labels{5: labelsOf(Retransmission)}},
		{name: "timestamps-backwards-after-dup-acks", steps: append(handshake(),
			step{cs, PSH | ACK, 1, 1, 100, 502, nil, 10 * ms},
			step{cs, PSH | ACK, 201, 1, 100, 502, nil, 11 * ms},
			step{sc, ACK, 1, 101, 0, 509, nil, 12 * ms},
			step{sc, ACK, 1, 101, 0, 509, nil, 13 * ms},
			step{sc, ACK, 1, 101, 0, 509, nil, 14 * ms},
			// Two dup-acks, but sent before the last of them.
			step{cs, PSH | ACK, 101, 1, 100, 502, nil, 13500 * time.Microsecond}),
			want: map[int]Labels{8: labelsOf(Retransmission)}},
	}
	cases := make([]viewCase, len(tests))
	for k, tc := range tests {
		_, cases[k] = stepCase(t, tc.steps, k)
	}
	ws := tsharkViews(t, cases)
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cases[k]
			frames := c.frames
			got, _ := walkFrames(t, c.lt, frames)
			if len(got) != len(tc.steps) {
				t.Fatalf("%d steps gave %d segments", len(tc.steps), len(got))
			}
			for i, want := range tc.want {
				if g := got[i]; g.ann.Labels != want {
					t.Errorf("frame %d (%s): labels [%v], want [%v]", g.seg.Frame, g.seg.Flags, g.ann.Labels, want)
				}
			}
			var known func(mine, ws wiresharkView) bool
			if tc.secondSynAck {
				// tshark rebases the server's numbers on the second
				// SYN/ACK, labels both reused-ports and the second a
				// lost-segment.
				known = func(mine, ws wiresharkView) bool {
					mine.seq, mine.ack, ws.seq, ws.ack = 0, 0, 0, 0
					ws.labels = ws.labels.Without(ReusedPorts).Without(LostSegment)
					return mine == ws
				}
			}
			crossCheckViews(t, ws[k], got, known)
		})
	}
}
