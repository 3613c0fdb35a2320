package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// compressors make the compressed fixtures: each compresses as its
// command-line tool does by default, lz4 with 64 KiB blocks so that a
// small file holds several.
var compressors = []struct {
	c    compression
	ext  string
	pack func(tb testing.TB, b []byte) []byte
}{
	{gzipped, ".gz", func(tb testing.TB, b []byte) []byte {
		var out bytes.Buffer
		w := gzip.NewWriter(&out)
		if _, err := w.Write(b); err != nil || w.Close() != nil {
			tb.Fatalf("gzip: %v", err)
		}
		return out.Bytes()
	}},
	{zstandard, ".zst", func(tb testing.TB, b []byte) []byte {
		var out bytes.Buffer
		w, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write(b); err != nil || w.Close() != nil {
			tb.Fatalf("zstd: %v", err)
		}
		return out.Bytes()
	}},
	{lz4Frame, ".lz4", func(tb testing.TB, b []byte) []byte {
		var out bytes.Buffer
		w := lz4.NewWriter(&out)
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write(b); err != nil || w.Close() != nil {
			tb.Fatalf("lz4: %v", err)
		}
		return out.Bytes()
	}},
}

// errorKind is the sentinel err wraps, for comparing the errors of two
// files whose names differ.
func errorKind(err error) error {
	for _, k := range []error{ErrEmpty, ErrNotCapture, ErrTruncated, ErrBadRecord, ErrDamaged, ErrUnsupportedLinkType, io.EOF} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

// describe walks the capture at path and returns every frame as text:
// its capture info and bytes' length, and for TCP its line and comment.
func describe(path string) (string, int, error) {
	f, err := Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	var b strings.Builder
	var start time.Time
	n, err := Walk(f, NewAnnotator(), func(p *Packet) error {
		if start.IsZero() {
			start = p.Info.Timestamp
		}
		fmt.Fprintf(&b, "%v %d/%d if%d: ", p.Info.Timestamp.UnixNano(), p.Info.CaptureLength, p.Info.Length, p.Info.InterfaceIndex)
		if p.TCP {
			b.WriteString(Line(p, start))
			b.WriteString(" | ")
			b.WriteString(Comment(p))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String(), n.Frames, err
}

// TestCompressedFixtures compresses every capture fixture with gzip, zstd
// and lz4: each compressed file reads and annotates exactly as the file
// itself, and fails the same way where it fails (issue 19).
func TestCompressedFixtures(t *testing.T) {
	var files []string
	for _, pat := range []string{"testdata/*.pcap", "testdata/*.pcapng"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("only %d fixtures in testdata", len(files))
	}
	dir := t.TempDir()
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		want, wantN, wantErr := describe(name)
		for _, z := range compressors {
			t.Run(filepath.Base(name)+z.ext, func(t *testing.T) {
				path := filepath.Join(dir, filepath.Base(name)+z.ext)
				if err := os.WriteFile(path, z.pack(t, raw), 0o644); err != nil {
					t.Fatal(err)
				}
				got, n, err := describe(path)
				if errorKind(err) != errorKind(wantErr) {
					t.Fatalf("error %v; the file itself gives %v", err, wantErr)
				}
				if err != nil && !errors.Is(err, ErrUnsupportedLinkType) && !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file", err)
				}
				if n != wantN || got != want {
					t.Fatalf("%d frames differ from the file's %d:\n%s\nwant\n%s", n, wantN, got, want)
				}
			})
		}
	}
}

// TestCompressedTruncated cuts compressed captures, pcap and pcapng, short:
// the frames before the cut are read as in the whole file, then the error
// wraps ErrTruncated and says the stream ends early.
func TestCompressedTruncated(t *testing.T) {
	const fixture = "testdata/retrans.pcap"
	whole, wholeN, err := describe(fixture)
	if err != nil {
		t.Fatal(err)
	}
	pcap, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	ng := asPcapng(t, fixture)
	dir := t.TempDir()
	for _, z := range compressors {
		for _, src := range []struct {
			ext  string
			data []byte
		}{{".pcap", pcap}, {".pcapng", ng}} {
			packed := z.pack(t, src.data)
			for _, cut := range []int{len(packed) * 9 / 10, len(packed) - 1} {
				name := fmt.Sprintf("cut%d%s%s", cut, src.ext, z.ext)
				t.Run(name, func(t *testing.T) {
					path := filepath.Join(dir, name)
					if err := os.WriteFile(path, packed[:cut], 0o644); err != nil {
						t.Fatal(err)
					}
					got, n, err := describe(path)
					if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
						t.Fatalf("%d frames, then %v; want an error of one line wrapping ErrTruncated", n, err)
					}
					if n == 0 || n > wholeN || !strings.HasPrefix(whole, got) {
						t.Fatalf("%d frames of %d before the cut, or not the file's first ones", n, wholeN)
					}
					t.Logf("%d of %d frames, then: %v", n, wholeN, err)
				})
			}
		}
	}
}

// asPcapng returns the frames of the capture at path as a pcapng file.
func asPcapng(t *testing.T, path string) []byte {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	w, err := NewWriter(&b, f.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := f.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(ci, data, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCompressedBad: damaged streams, formats tshark does not read, a
// compressed stream that holds no capture, and a small compressed file
// whose record claims more than any packet holds, which decompresses no
// further and allocates no more than reading a normal capture.
func TestCompressedBad(t *testing.T) {
	raw, err := os.ReadFile("testdata/retrans.pcap")
	if err != nil {
		t.Fatal(err)
	}
	gz := compressors[0].pack
	badCRC := gz(t, raw)
	badCRC[len(badCRC)-6] ^= 0xff // the trailer's CRC-32
	corrupt := compressors[1].pack(t, raw)
	for i := len(corrupt) / 3; i < len(corrupt)/3+64; i++ {
		corrupt[i] ^= 0x55
	}
	// A few hundred bytes that ask the zstd decoder for a 128 MiB window.
	var wide bytes.Buffer
	zw, err := zstd.NewWriter(&wide, zstd.WithWindowSize(1<<27), zstd.WithSingleSegment(false), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(raw[:24])
	for i := range 64 {
		zw.Write(bytes.Repeat([]byte{byte(i)}, 1<<14))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	// 16 MiB of zeros after the record header compress to a few KB.
	bomb := gz(t, pcapClaiming(1<<24, 40+1<<24))
	tests := []struct {
		name  string
		data  []byte
		is    error
		want  string
		whole bool // a whole capture, damaged: not bounded by a small one
	}{
		{"crc.pcap.gz", badCRC, ErrDamaged, "compressed stream is damaged (gzip): gzip: invalid checksum, after 236256 bytes decompressed", true},
		{"corrupt.pcap.zst", corrupt, ErrDamaged, "compressed stream is damaged (zstd): ", true},
		{"text.gz", gz(t, []byte("GET /blog/ HTTP/1.1\r\n")), ErrNotCapture, "(first bytes 47455420 once gzip is undone)", false},
		{"empty.gz", gz(t, nil), ErrEmpty, "its gzip stream holds nothing", false},
		{"short.gz", gz(t, []byte{0xd4, 0xc3}), ErrTruncated, "its gzip stream holds 2 bytes", false},
		{"header.gz", gz(t, raw)[:5], ErrTruncated, "gzip header cut short", false},
		{"capture.pcap.xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 4}, ErrNotCapture, "compressed with xz, which neither tcplab nor tshark reads; decompress it first", false},
		{"capture.pcap.bz2", []byte("BZh91AY&SY"), ErrNotCapture, "compressed with bzip2", false},
		{"bomb.pcap.gz", bomb, ErrBadRecord, "record 1 claims 16777216 bytes, more than any packet holds (262144)", false},
		{"wide.pcap.zst", wide.Bytes(), ErrDamaged, "its window is larger than the 8 MiB tcplab reads (zstd --long or --ultra)", false},
	}
	// A normal capture, compressed as the streams are: undoing gzip
	// takes a window and a buffer of its own, which reading records
	// straight from the file's buffer does not hide.
	dir := t.TempDir()
	small, err := os.ReadFile("testdata/handshake.pcap")
	if err != nil {
		t.Fatal(err)
	}
	normalPath := filepath.Join(dir, "handshake.pcap.gz")
	if err := os.WriteFile(normalPath, gz(t, small), 0o644); err != nil {
		t.Fatal(err)
	}
	normal := allocs(func() { describe(normalPath) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			got := allocs(func() { _, _, err = describe(path) })
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v; want one line wrapping %v, naming the file and saying %q", err, tt.is, tt.want)
			}
			// No small stream makes the reader allocate more than a
			// small capture does; the damaged ones hold a large one.
			if !tt.whole && got > normal+64<<10 {
				t.Errorf("reading %d compressed bytes allocated %d bytes; a normal capture takes %d", len(tt.data), got, normal)
			}
			t.Logf("%d bytes allocated; a normal capture: %d", got, normal)
		})
	}
}
