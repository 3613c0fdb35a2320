package annotatecmd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
			p := newPrefetch(&numbered{n: tc.frames, end: tc.end})
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
	p := newPrefetch(&numbered{n: 10 * prefetchFrames, end: io.EOF})
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
