package capture

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// The fragment fixtures, frag4.pcap and frag6.pcap: the conversation of
// the encapsulation fixtures (fixtureSteps) over Ethernet, IPv4 or IPv6,
// with some of its segments cut into IP fragments, as the kernel of the
// machines these are made on cannot be made to send out of order or
// overlapping. -encapfixtures writes them with the encapsulation fixtures.

// Cuts of a 120-byte TCP segment (20-byte header, 100 bytes of data) and of
// a bare 20-byte header.
var (
	fixA     = fragCut{off: 0, n: 48}
	fixB     = fragCut{off: 48, n: 48}
	fixC     = fragCut{off: 96, n: -1}
	fixAAck  = fragCut{off: 0, n: 48, flipFrom: 8, flipTo: 12} // ack number inverted
	fixBC    = fragCut{off: 48, n: -1}
	fixHdrA  = fragCut{off: 0, n: 16}                           // a bare header, up to the checksum
	fixHdrBW = fragCut{off: 8, n: -1, flipFrom: 14, flipTo: 16} // from the ack number on, window inverted
	fixHdrB  = fragCut{off: 8, n: -1}
)

// fragFixtureFrames returns the frames of a fragment fixture:
//
//   - step 3 (data): three fragments in order;
//   - steps 4 (data) and 5 (the server's ACK) interleaved: 4's last
//     fragment first, 5's first, 4's first and middle (completing 4), 5's
//     last (completing 5);
//   - step 8 (the fast retransmission): its first fragment, another first
//     fragment with the ack number inverted (Wireshark keeps the bytes of
//     the fragment that came first at an offset: the ack stays), an exact
//     duplicate of the first, then the rest;
//   - step 9 (the zero window): its second fragment, with the window
//     inverted, before the first one, which overlaps it (the lower offset
//     wins: the window stays zero);
//   - after step 10, a lone first fragment of a copy of step 10, whose
//     datagram never completes.
func fragFixtureFrames(v6 bool) func(t *testing.T) []capturedFrame {
	return func(t *testing.T) []capturedFrame {
		c := conv{link: linkRaw, steps: fixtureSteps()}
		c.client, c.server = endpoints(v6)
		steps := c.frames(t, 0)
		var out []capturedFrame
		emit := func(at time.Time, packets ...[]byte) {
			for i, p := range packets {
				out = append(out, captured(onEthernet(t, p), at.Add(time.Duration(i)*time.Microsecond), 0))
			}
		}
		frag := func(step int, cuts ...fragCut) [][]byte {
			return fragmentPacket(t, steps[step].data, uint32(0x100+step), cuts...)
		}
		for i, s := range steps {
			at := s.ci.Timestamp
			switch i {
			case 3:
				emit(at, frag(3, fixA, fixB, fixC)...)
			case 4:
				d, a := frag(4, fixC, fixA, fixB), frag(5, fixHdrA, fixHdrB)
				emit(at, d[0], a[0], d[1], d[2], a[1])
			case 5:
			case 8:
				f := frag(8, fixA, fixAAck, fixA, fixBC)
				emit(at, f...)
			case 9:
				emit(at, frag(9, fixHdrBW, fixHdrA)...)
			case 10:
				emit(at, s.data)
				lone := fragmentPacket(t, s.data, 0x999, fixHdrA)
				emit(at.Add(100*time.Microsecond), lone...)
			default:
				emit(at, s.data)
			}
		}
		return out
	}
}

// fragFixtures are the fragment fixtures.
func fragFixtures() []encapFixture {
	return []encapFixture{
		{"frag4.pcap", linkEthernet, fragFixtureFrames(false)},
		{"frag6.pcap", linkEthernet, fragFixtureFrames(true)},
	}
}

// TestFragmentFixtures checks that the fragment fixtures in testdata are
// the ones the builders make; -encapfixtures writes them.
func TestFragmentFixtures(t *testing.T) { checkBuilt(t, fragFixtures(), "TestFragmentFixtures") }

// TestFragmentFixturesSegments walks each fragment fixture: every step of
// the conversation is one segment, in the frame that completes it; the
// fragments that complete nothing are counted; the two segments rebuilt
// from disagreeing fragments are flagged, with the bytes Wireshark keeps;
// and the connection closes.
func TestFragmentFixturesSegments(t *testing.T) {
	for _, f := range fragFixtures() {
		t.Run(f.name, func(t *testing.T) {
			frames := f.frames(t)
			var segs []Segment
			a := NewAnnotator()
			var labels []Labels
			n, err := Walk(&frameSource{lt: layers.LinkTypeEthernet, frames: frames}, a, func(p *Packet) error {
				if p.TCP {
					segs = append(segs, p.Segment)
					labels = append(labels, p.Annotation.Labels)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// 2 + 3 + 3 + 1 fragments complete nothing, nor does the lone one.
			want := Counts{Frames: len(frames), TCP: len(fixtureSteps()), Skipped: 10, Fragments: 10}
			if n != want {
				t.Fatalf("counts %+v, want %+v", n, want)
			}
			for i, s := range segs {
				overlap := i == 8 || i == 9
				if (s.Problem == FragmentOverlap) != overlap {
					t.Errorf("segment %d (frame %d): problem %q", i, s.Frame, s.Problem)
				}
			}
			if segs[9].Window != 0 || !labels[9].Has(ZeroWindow) {
				t.Errorf("zero window segment: window %d, labels [%v]", segs[9].Window, labels[9])
			}
			if segs[8].Ack != segs[4].Ack {
				t.Errorf("retransmission: ack %d, want %d as before", segs[8].Ack, segs[4].Ack)
			}
			for _, c := range a.Conns() {
				if c.ClientState != TimeWait || c.ServerState != Closed {
					t.Errorf("%s: want TIME_WAIT/CLOSED", Summary(&c))
				}
			}
		})
	}
}
