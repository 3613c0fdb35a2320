package lab_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeExampleIsTrue: every line of the README's Go code is a line of
// examples/teardown, but for the "// ..." lines that shorten it, so that
// the section a newcomer follows cannot drift from code that CI runs.
func TestReadmeExampleIsTrue(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../examples/teardown/*.go")
	more, _ := filepath.Glob("../examples/teardown/cmd/*/*.go")
	lines := map[string]bool{}
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			lines[strings.TrimSpace(l)] = true
		}
	}
	blocks := strings.Split(string(readme), "```go\n")
	if len(blocks) < 2 {
		t.Fatal("README has no Go code")
	}
	for _, b := range blocks[1:] {
		code, _, _ := strings.Cut(b, "```")
		for _, l := range strings.Split(code, "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "// ...") {
				continue
			}
			if !lines[l] {
				t.Errorf("README's Go code has a line that examples/teardown does not: %q", l)
			}
		}
	}
}
