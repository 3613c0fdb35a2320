package capture

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestLyingLengths pins what reading does with length fields that lie: a
// pcap record claiming 0x7fffffff bytes (under a snap length that allows
// it, and one that does not) and a pcapng block claiming 0xfffffff0
// bytes. Each gets an error that says what is wrong, and none makes the
// reader allocate what the field claims.
func TestLyingLengths(t *testing.T) {
	pcap := func(snaplen uint32) []byte {
		b := make([]byte, 24+16+10)
		binary.LittleEndian.PutUint32(b[0:], 0xa1b2c3d4)
		binary.LittleEndian.PutUint16(b[4:], 2)
		binary.LittleEndian.PutUint16(b[6:], 4)
		binary.LittleEndian.PutUint32(b[16:], snaplen)
		binary.LittleEndian.PutUint32(b[20:], 1) // Ethernet
		binary.LittleEndian.PutUint32(b[24+8:], 0x7fffffff)
		binary.LittleEndian.PutUint32(b[24+12:], 0x7fffffff)
		return b
	}
	// A section header, then an interface description block whose length
	// field says 0xfffffff0.
	ng := make([]byte, 48)
	binary.LittleEndian.PutUint32(ng[0:], 0x0a0d0d0a)
	binary.LittleEndian.PutUint32(ng[4:], 28)
	binary.LittleEndian.PutUint32(ng[8:], 0x1a2b3c4d)
	binary.LittleEndian.PutUint16(ng[12:], 1)
	binary.LittleEndian.PutUint64(ng[16:], ^uint64(0))
	binary.LittleEndian.PutUint32(ng[24:], 28)
	binary.LittleEndian.PutUint32(ng[28:], 1)
	binary.LittleEndian.PutUint32(ng[32:], 0xfffffff0)
	tests := []struct {
		name string
		data []byte
	}{
		{"pcap record beyond the snap length", pcap(65535)},
		{"pcap record within a huge snap length", pcap(0x7fffffff)},
		{"pcapng block of 0xfffffff0 bytes", ng},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lie")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			f, err := Open(path)
			if err == nil {
				_, _, err = f.ReadPacketData()
				f.Close()
			}
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("a lying length read without error")
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
				t.Errorf("reading allocated %d bytes", got)
			}
			t.Logf("%v", err)
		})
	}
}
