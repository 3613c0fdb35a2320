package lab

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/safefile"
)

// TestPeerLog: a peer's log holds the command, all it printed however
// much, and how it ended, while memory keeps only the end (tailSize) for
// messages; a log whose command printed nothing, or no final newline, is
// still one line per thing.
func TestPeerLog(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef\n"), 5<<20/17) // 5 MiB
	tests := []struct {
		name   string
		chunks [][]byte
		status error
		want   string // the file's content, when small
	}{
		{"nothing", nil, nil, "$ cmd\n[status 0]\n"},
		{"no newline", [][]byte{[]byte("half")}, errors.New("exit status 3"), "$ cmd\nhalf\n[exit status 3]\n"},
		{"small writes", [][]byte{big[:7], big[7 : 1<<20], big[1<<20:]}, nil, ""},
		{"one big write", [][]byte{big}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := safefile.OpenDir(t.TempDir(), false)
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			l := newPeerLog(dir, ServerLog, "cmd")
			var all []byte
			for _, c := range tt.chunks {
				for len(c) > 0 {
					n := min(len(c), 4096+len(all)%5000) // writes of varying sizes
					if len(tt.chunks) == 1 {
						n = len(c)
					}
					l.Write(c[:n])
					all, c = append(all, c[:n]...), c[n:]
					if cap(l.tail) > 4*tailSize {
						t.Fatalf("the log keeps %d bytes in memory after %d written", cap(l.tail), len(all))
					}
				}
			}
			if got, want := l.Tail(), string(all[max(0, len(all)-tailSize):]); got != want {
				t.Errorf("tail: %d bytes ending %q, want %d ending %q", len(got), got[max(0, len(got)-20):], len(want), want[max(0, len(want)-20):])
			}
			if err := l.Close(tt.status); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir.Path(), ServerLog))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = "$ cmd\n" + string(all) + "[status 0]\n"
			}
			if string(b) != want {
				t.Errorf("server.log: %d bytes starting %q, want %d", len(b), b[:min(len(b), 40)], len(want))
			}
			if lastLine(l.Tail()) == "" || strings.Count(lastLine(l.Tail()), " | ") > 2 {
				t.Errorf("lastLine of the tail: %q", lastLine(l.Tail()))
			}
		})
	}
}
