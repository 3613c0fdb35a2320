package readme

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBlockAndUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	doc := "# x\n\n<!-- generated: ex -->\n    old line\n\n    more\n<!-- end: ex -->\n\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Block(path, "ex")
	if err != nil || got != "old line\n\nmore\n" {
		t.Fatalf("Block = %q, %v", got, err)
	}
	if err := Update(path, "ex", "new\n\n  indented\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# x\n\n<!-- generated: ex -->\n    new\n\n      indented\n<!-- end: ex -->\n\nafter\n"
	if string(b) != want {
		t.Errorf("after Update:\n%q\nwant\n%q", b, want)
	}
	if got, _ := Block(path, "ex"); got != "new\n\n  indented\n" {
		t.Errorf("Block after Update = %q", got)
	}
	if _, err := Block(path, "missing"); err == nil {
		t.Error("Block of a missing example: nil error")
	}
}

// TestSteps: a steps block is read like a generated one, and the two kinds
// are not confused.
func TestSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	doc := "<!-- steps: install -->\n    go install ./cmd/tcplab\n<!-- end: install -->\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Steps(path, "install"); err != nil || got != "go install ./cmd/tcplab\n" {
		t.Errorf("Steps = %q, %v", got, err)
	}
	if _, err := Block(path, "install"); err == nil {
		t.Error("Block read a steps block as a generated one")
	}
}
