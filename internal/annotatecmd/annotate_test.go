package annotatecmd

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestSplitFiles: the leading arguments that exist are the files; the
// filter's words follow them. (The command as a whole is tested through
// tcplab's own command line, in cmd/tcplab.)
func TestSplitFiles(t *testing.T) {
	dir := t.TempDir()
	a := "annotate.go" // any file that exists
	tests := []struct {
		args, files, rest []string
	}{
		{[]string{a}, []string{a}, []string{}},
		{[]string{a, a, "tcp", "port", "80"}, []string{a, a}, []string{"tcp", "port", "80"}},
		{[]string{"tcp port 80", a}, []string{}, []string{"tcp port 80", a}},
		{[]string{dir, filepath.Join(dir, "missing.pcap")}, []string{dir}, []string{filepath.Join(dir, "missing.pcap")}},
	}
	for _, tt := range tests {
		files, rest := splitFiles(tt.args)
		if !slices.Equal(files, tt.files) || !slices.Equal(rest, tt.rest) {
			t.Errorf("splitFiles(%q) = %q, %q; want %q, %q", tt.args, files, rest, tt.files, tt.rest)
		}
	}
}
