package capture

import (
	"testing"
	"time"
)

// TestZeroWindowProbeLength pins, without tshark, the length rule of
// zero-window probes as Wireshark 4.0 has it: only a segment of exactly one
// byte at the next sequence number into a closed window is a probe; one
// byte at next-1 is a keep-alive, even into a closed window; a segment
// that starts one byte early with more data is no retransmission; and only
// a one-byte probe leaves the sender's bookkeeping alone (an empty one is
// kept track of as a keep-alive). Each case's labels were checked once
// against tshark 4.0.17; TestLabels compares such cases with tshark where
// it is installed.
//
// After the handshake the client's next seq is 1 and its window 502.
func TestZeroWindowProbeLength(t *testing.T) {
	ms := time.Millisecond
	seg := func(seq uint32, n int, at time.Duration) step { return step{cs, ACK, seq, 1, n, 502, nil, at} }
	data := func(seq uint32, n int) step { return step{cs, PSH | ACK, seq, 1, n, 502, nil, 0} }
	ack := func(a uint32, win uint16, at time.Duration) step { return step{sc, ACK, 1, a, 0, win, nil, at} }
	tests := []struct {
		name  string
		steps []step // after the handshake
		want  Labels // of the last step
	}{{
		name:  "one byte at next seq into a closed window is a probe",
		steps: []step{data(1, 100), ack(101, 0, 0), seg(101, 1, 200*ms)},
		want:  labelsOf(ZeroWindowProbe),
	}, {
		name:  "two bytes at next seq into a closed window are no probe",
		steps: []step{data(1, 100), ack(101, 0, 0), seg(101, 2, 200*ms)},
		want:  0,
	}, {
		name:  "an empty segment at next seq into a closed window is a dup-ack, no probe",
		steps: []step{data(1, 100), ack(101, 0, 0), seg(101, 0, 200*ms)},
		want:  labelsOf(DupACK),
	}, {
		// Its byte, 100, ends at the closed window's edge (101 + 0).
		name:  "one byte at next-1 into a closed window is a keep-alive",
		steps: []step{data(1, 100), ack(101, 0, 0), seg(100, 1, 200*ms)},
		want:  labelsOf(KeepAlive, WindowFull),
	}, {
		name:  "an empty segment at next-1 into a closed window is a probe",
		steps: []step{data(1, 100), ack(101, 0, 0), seg(100, 0, 200*ms)},
		want:  labelsOf(ZeroWindowProbe),
	}, {
		name:  "two bytes from next-1 are new data, no keep-alive nor retransmission",
		steps: []step{data(1, 100), ack(101, 509, 0), seg(100, 2, 300*ms)},
		want:  0,
	}, {
		name:  "a probe's byte does not advance the next seq: the second probe is a probe again",
		steps: []step{data(1, 100), ack(101, 0, 0), seg(101, 1, 200*ms), ack(101, 0, 201*ms), seg(101, 1, 600*ms)},
		want:  labelsOf(ZeroWindowProbe),
	}, {
		name: "after a probe's byte, data from it is no retransmission",
		steps: []step{data(1, 100), ack(101, 0, 0), seg(101, 1, 200*ms), ack(101, 509, 201*ms),
			data(101, 100)},
		want: 0,
	}, {
		// The segment from 90 ends at 101 without starting at the
		// highest seq to be acked (100), which stays; the empty probe
		// at 100 then moves it to 101, as a keep-alive does for
		// Wireshark, so the ack of 101 acks nothing unseen. Were the
		// empty probe kept apart like a one-byte one, that ack would
		// be an ack-lost-segment.
		name: "an empty probe is tracked like a keep-alive",
		steps: []step{data(1, 99), ack(100, 0, 0), seg(90, 11, 300*ms), seg(100, 0, 500*ms),
			ack(101, 0, 501*ms)},
		want: labelsOf(ZeroWindow),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := conv{steps: append(handshake(), tc.steps...)}
			got, _ := c.annotate(t)
			last := got[len(got)-1]
			if last.ann.Labels != tc.want {
				t.Errorf("last segment (%s %s seq=%d len=%d): labels [%v], want [%v]",
					last.ann.Dir, last.seg.Flags, last.ann.RelSeq, last.seg.Len, last.ann.Labels, tc.want)
			}
		})
	}
}
