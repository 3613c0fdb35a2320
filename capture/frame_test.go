package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var le32 = binary.LittleEndian.AppendUint32

// pcapClaiming returns a little-endian pcap file of size bytes whose one
// record claims caplen bytes; its snap length lets gopacket's reader take
// any record.
func pcapClaiming(caplen uint32, size int) []byte {
	b := le32(nil, magicMicro)
	b = append(b, 2, 0, 4, 0)         // version 2.4
	b = append(b, make([]byte, 8)...) // zone, sigfigs
	b = le32(b, 0xffffffff)           // snap length
	b = le32(b, 1)                    // Ethernet
	b = append(b, make([]byte, 8)...) // timestamp
	b = le32(le32(b, caplen), caplen) // lengths
	return append(b, make([]byte, size-len(b))...)
}

// pcapngHead is a section header and one Ethernet interface without a
// snap length.
func pcapngHead() []byte {
	b := le32(le32(le32(nil, blockSHB), 28), byteOrderMagic)
	b = append(b, 1, 0, 0, 0)                                     // version 1.0
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff) // section length unknown
	b = le32(b, 28)
	b = le32(le32(le32(b, blockIDB), 20), 1) // Ethernet, reserved
	b = le32(le32(b, 0), 20)                 // snap length 0 (none)
	return b
}

// pcapngClaiming returns a pcapng file of size bytes whose third block, of
// type typ, has length length and claims claim bytes in its length field
// (a packet's capture length, a secret's length).
func pcapngClaiming(typ, length, claim uint32, size int) []byte {
	b := le32(le32(pcapngHead(), typ), length)
	switch typ {
	case blockEPB:
		b = le32(le32(le32(le32(le32(b, 0), 0), 0), claim), claim)
	case blockSPB:
		b = le32(b, claim)
	case blockDSB:
		b = le32(le32(b, 0x544c534b), claim) // TLS key log
	}
	return append(b, make([]byte, size-len(b))...)
}

// allocs returns the bytes the Go runtime allocated while fn ran.
func allocs(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// readAll opens the capture at path and reads it to its end or its first
// error, returning the packets read and the error (io.EOF at a clean end).
func readAll(path string) (int, error) {
	f, err := Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for {
		if _, _, err := f.ReadPacketData(); err != nil {
			return n, err
		}
		n++
	}
}

// TestHugeRecords reads files of a few KB whose record claims up to 2 GiB,
// also as sparse files that really are that long (their bytes a hole that
// reads as zeros): each fails at that record with an error naming it, and
// reading it allocates no more than reading a normal capture does (issue
// 18: such a file drove `check` to 8.4 GB).
func TestHugeRecords(t *testing.T) {
	normal := allocs(func() {
		if n, err := readAll("testdata/handshake.pcapng"); err != io.EOF || n == 0 {
			t.Fatalf("handshake.pcapng: %d packets, %v", n, err)
		}
	})
	if pcap := allocs(func() { readAll("testdata/handshake.pcap") }); pcap > normal {
		normal = pcap
	}
	const small = 4000
	tests := []struct {
		name   string
		data   []byte
		sparse int64 // the file's length, its end a hole; 0: len(data)
		is     error
		want   string
	}{
		{"pcap 2^31", pcapClaiming(1<<31, small), 0, ErrTruncated, "record 1 claims 2147483648 bytes; the file has 3960 left"},
		{"pcap 2^24", pcapClaiming(1<<24, small), 0, ErrTruncated, "record 1 claims 16777216 bytes; the file has 3960 left"},
		{"pcap 65537", pcapClaiming(65537, small), 0, ErrTruncated, "record 1 claims 65537 bytes; the file has 3960 left"},
		{"sparse pcap 2^31", pcapClaiming(1<<31, small), 1<<31 + small, ErrBadRecord, "record 1 claims 2147483648 bytes, more than any packet holds (262144)"},
		{"sparse pcap 2^24", pcapClaiming(1<<24, small), 1<<24 + small, ErrBadRecord, "record 1 claims 16777216 bytes, more than any packet holds"},
		{"sparse pcap 2^32-1", pcapClaiming(1<<32-1, small), 1<<32 + small, ErrBadRecord, "record 1 claims 4294967295 bytes"},
		{"pcapng EPB 2^31", pcapngClaiming(blockEPB, 1<<31+32, 1<<31, small), 0, ErrTruncated, "block 3 claims 2147483680 bytes; the file has 3952 left"},
		{"pcapng EPB 65537", pcapngClaiming(blockEPB, 65537+3+32, 65537, small), 0, ErrTruncated, "block 3 claims 65572 bytes"},
		{"pcapng EPB length 2^32-4", pcapngClaiming(blockEPB, 1<<32-4, 100, small), 0, ErrTruncated, "block 3 claims 4294967292 bytes"},
		{"pcapng EPB packet beyond its block", pcapngClaiming(blockEPB, 64, 1<<31, small), 0, ErrBadRecord, "block 3's contents claim 2147483648 bytes; the block holds 32"},
		{"pcapng SPB beyond its block", pcapngClaiming(blockSPB, 64, 1<<24, small), 0, ErrBadRecord, "block 3's contents claim 16777216 bytes; the block holds 48"},
		{"pcapng DSB beyond its block", pcapngClaiming(blockDSB, 64, 1<<31, small), 0, ErrBadRecord, "block 3's contents claim 2147483648 bytes; the block holds 44"},
		{"pcapng bad length", pcapngClaiming(blockEPB, 30, 0, small), 0, ErrBadRecord, "block 3 has length 30"},
		{"sparse pcapng EPB 2^31", pcapngClaiming(blockEPB, 1<<31+32, 1<<31, small), 1<<31 + small, ErrBadRecord, "block 3 claims 2147483680 bytes, more than tcplab reads in a block"},
		{"sparse pcapng EPB 2^24", pcapngClaiming(blockEPB, 1<<24-32, 1<<24-64, small), 1<<24 + small, ErrBadRecord, "block 3 claims a packet of 16777152 bytes, more than any packet holds (262144)"},
		{"sparse pcapng DSB 2^24", pcapngClaiming(blockDSB, 1<<24+32, 1<<24, small), 1 << 25, ErrBadRecord, "more than tcplab reads in a block"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.sparse > 0 {
				if err := os.Truncate(path, tt.sparse); err != nil {
					t.Fatal(err)
				}
			}
			var (
				n   int
				err error
			)
			got := allocs(func() { n, err = readAll(path) })
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v, want one wrapping %v that names the file and says %q", err, tt.is, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
			if n != 0 {
				t.Errorf("%d packets read", n)
			}
			// The slack is the error's text and the file's name.
			if got > normal+16<<10 {
				t.Errorf("reading it allocated %d bytes, more than reading a normal capture (%d)", got, normal)
			}
			t.Logf("allocated %d bytes (a normal capture: %d)", got, normal)
		})
	}
}

// TestHugeRecordAfterPackets: the packets before a record that claims too
// much are read, then the error comes, as with a file cut short.
func TestHugeRecordAfterPackets(t *testing.T) {
	good, err := os.ReadFile("testdata/handshake.pcap")
	if err != nil {
		t.Fatal(err)
	}
	want, err := readAll("testdata/handshake.pcap")
	if err != io.EOF {
		t.Fatal(err)
	}
	bad := pcapClaiming(1<<31, 100)[24:]
	path := filepath.Join(t.TempDir(), "tail.pcap")
	if err := os.WriteFile(path, append(good, bad...), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := readAll(path)
	if n != want || !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), fmt.Sprintf("record %d claims 2147483648 bytes", want+1)) {
		t.Fatalf("%d packets then %v; want %d then record %d's claim refused", n, err, want, want+1)
	}
}
