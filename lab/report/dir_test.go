package report

import (
	"testing"

	"github.com/tcplab/tcplab/internal/safefile"
)

// openDir opens (and makes) the folder path for the artifacts a test
// writes, closed when the test ends.
func openDir(t *testing.T, path string) *safefile.Dir {
	t.Helper()
	d, err := safefile.OpenDir(path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
