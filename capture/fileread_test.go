package capture

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcplab/tcplab/internal/capgen"
)

// TestFileReadsAsGopacket reads pcap files of several MiB, in
// nanoseconds and in microseconds, with File and with gopacket's reader
// side by side: every record's bytes and capture info are the same, all
// the way through the buffer File reads records from, refilled several
// times. (The records it reads through the framer are the damaged ones
// of file_test.go.)
func TestFileReadsAsGopacket(t *testing.T) {
	dir := t.TempDir()
	nano := filepath.Join(dir, "nano.pcap")
	if err := capgen.WriteBulk(nano, capgen.Bulk{Packets: 60_000, Concurrent: 50}); err != nil {
		t.Fatal(err)
	}
	micro := filepath.Join(dir, "micro.pcap")
	toMicro(t, nano, micro)
	for _, path := range []string{nano, micro} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			raw, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			ref, err := pcapgo.NewReader(raw)
			if err != nil {
				t.Fatal(err)
			}
			for n := 1; ; n++ {
				want, wci, werr := ref.ReadPacketData()
				got, gci, gerr := f.ReadPacketData()
				if werr == io.EOF && gerr == io.EOF {
					if n < 60_000 {
						t.Fatalf("%d records", n-1)
					}
					return
				}
				if werr != nil || gerr != nil {
					t.Fatalf("record %d: File: %v, gopacket: %v", n, gerr, werr)
				}
				if !bytes.Equal(got, want) || !gci.Timestamp.Equal(wci.Timestamp) || gci.CaptureLength != wci.CaptureLength || gci.Length != wci.Length ||
					gci.Timestamp.Location() != wci.Timestamp.Location() {
					t.Fatalf("record %d: File reads %x at %v (%d/%d), gopacket %x at %v (%d/%d)", n,
						got, gci.Timestamp, gci.CaptureLength, gci.Length, want, wci.Timestamp, wci.CaptureLength, wci.Length)
				}
			}
		})
	}
}

// toMicro copies the pcap file in to out with microsecond timestamps.
func toMicro(t *testing.T, in, out string) {
	t.Helper()
	r, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	bw := bufio.NewWriter(o)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(pr.Snaplen(), pr.LinkType()); err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := pr.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}
