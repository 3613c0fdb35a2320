package annotatecmd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
)

// numbered is a source of n frames, each of its own size and bytes, then
// the error end.
type numbered struct {
	n, i int
	end  error
	buf  []byte
}

func (s *numbered) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

func (s *numbered) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if s.i == s.n {
		return nil, gopacket.CaptureInfo{}, s.end
	}
	s.i++
	// The source reuses its buffer, as a file's zero-copy read does.
	s.buf = append(s.buf[:0], bytes.Repeat([]byte{byte(s.i)}, s.i%300)...)
	return s.buf, gopacket.CaptureInfo{Timestamp: time.Unix(int64(s.i), 0), CaptureLength: len(s.buf), Length: len(s.buf)}, nil
}

// TestPrefetch reads sources through a prefetch: every frame comes, in
// order, with its own bytes and info, still whole one read later; then
// the source's error, however many batches the frames filled.
func TestPrefetch(t *testing.T) {
	damaged := fmt.Errorf("x.pcap: %w", capture.ErrTruncated)
	for _, tc := range []struct {
		frames int
		end    error
	}{
		{0, io.EOF},
		{1, io.EOF},
		{prefetchFrames, io.EOF},
		{prefetchFrames + 1, damaged},
		{5*prefetchFrames + 17, damaged},
		{3, damaged},
	} {
		t.Run(fmt.Sprintf("%d-%v", tc.frames, tc.end), func(t *testing.T) {
			p := newPrefetch(&numbered{n: tc.frames, end: tc.end}, false)
			defer p.close()
			var last []byte
			for i := 1; i <= tc.frames; i++ {
				data, ci, err := p.ReadPacketData()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if want := bytes.Repeat([]byte{byte(i)}, i%300); !bytes.Equal(data, want) || ci.Timestamp.Unix() != int64(i) || ci.CaptureLength != len(want) {
					t.Fatalf("frame %d: %d bytes %x..., time %d; want %d bytes of %x", i, len(data), data[:min(len(data), 4)], ci.Timestamp.Unix(), len(want), byte(i))
				}
				if i > 1 && !bytes.Equal(last, bytes.Repeat([]byte{byte(i - 1)}, (i-1)%300)) {
					t.Fatalf("frame %d's bytes changed when frame %d was read", i-1, i)
				}
				last = data
			}
			if _, _, err := p.ReadPacketData(); !errors.Is(err, tc.end) {
				t.Fatalf("after %d frames: %v, want %v", tc.frames, err, tc.end)
			}
		})
	}
}

// TestPrefetchClosedEarly: a walk that stops early (a usage error midway)
// closes its prefetch, whose reading goroutine then ends.
func TestPrefetchClosedEarly(t *testing.T) {
	p := newPrefetch(&numbered{n: 10 * prefetchFrames, end: io.EOF}, true)
	if _, _, err := p.ReadPacketData(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("close did not end the reading")
	}
}

// walkAll walks src and returns its counts and every packet, its bytes
// its own, or the error that ended it.
func walkAll(src capture.Source) (capture.Counts, []capture.Packet, error) {
	var pkts []capture.Packet
	n, err := capture.Walk(src, capture.NewAnnotator(), func(p *capture.Packet) error {
		q := p.Keep()
		if !q.TCP {
			// What a frame without TCP leaves in Segment is the
			// decoder's business: nothing reads it.
			q.Segment = capture.Segment{}
		}
		pkts = append(pkts, q)
		return nil
	})
	return n, pkts, err
}

// TestPrefetchDecodes: a walk over a prefetch that decodes (a
// capture.DecodedSource) gets from every fixture the packets, counts
// (fragments included) and error that a walk over the file decoding
// itself gets: tunnels, fragments, cut headers, link types, a file
// damaged midway; and a prefetch asked not to decode is no
// DecodedSource.
func TestPrefetchDecodes(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "capture", "testdata", "*.pcap*"))
	if err != nil || len(files) < 40 {
		t.Fatalf("%d fixtures: %v", len(files), err)
	}
	fragments := 0
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := capture.Open(path)
			if err != nil {
				return // not a capture (empty.pcap, notcapture.pcap): nothing to walk
			}
			wantN, want, wantErr := walkAll(f)
			f.Close()
			if f, err = capture.Open(path); err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pf := newPrefetch(f, true)
			defer pf.close()
			src := pf.source()
			if _, ok := src.(capture.DecodedSource); !ok {
				if _, err := capture.NewDecoder(f.LinkType()); err == nil {
					t.Fatalf("the prefetch of a %v capture does not decode", f.LinkType())
				}
			}
			n, got, err := walkAll(src)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || n != wantN {
				t.Fatalf("walk over the prefetch: %+v, %v; want %+v, %v", n, err, wantN, wantErr)
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("frame %d: %+v\nwant %+v", i+1, got[i], want[i])
				}
			}
			fragments += n.Fragments
		})
	}
	if fragments == 0 {
		t.Error("no fixture held a fragment that completed no datagram: the fragment count went untested")
	}
	plain := newPrefetch(&numbered{end: io.EOF}, false)
	defer plain.close()
	if _, ok := plain.source().(capture.DecodedSource); ok {
		t.Error("a prefetch asked not to decode is a DecodedSource")
	}
}
