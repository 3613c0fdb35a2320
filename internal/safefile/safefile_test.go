package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
)

// nobody is the other user whose links are not followed.
const nobody = 65534

// layout makes base/real (a folder), base/target (a file holding
// "target"), and the symlinks links (name to target) in base, each owned
// by uid (-1: the user running).
func layout(t *testing.T, uid int, links map[string]string) string {
	t.Helper()
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "target"), []byte("target"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, target := range links {
		path := filepath.Join(base, name)
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Lchown(path, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return base
}

// TestOpenDir: a path through the user's own symlinks (absolute,
// relative, chained) opens the folder they lead to and says where; a
// missing folder is made with create and refused without; a file is not
// a folder.
func TestOpenDir(t *testing.T) {
	base := layout(t, -1, map[string]string{"rel": "real", "chain": "rel", "file": "target"})
	if err := os.Symlink(filepath.Join(base, "real"), filepath.Join(base, "abs")); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(base, "real")
	tests := []struct {
		path     string
		create   bool
		resolved string // "" when it must fail
	}{
		{"real", false, real},
		{"abs", false, real},
		{"rel", false, real},
		{"chain/new/deeper", true, filepath.Join(real, "new", "deeper")},
		{"real/missing", false, ""},
		{"target", false, ""},
		{"file", true, ""},
		{"real/../rel", false, real},
	}
	for _, tt := range tests {
		d, err := OpenDir(filepath.Join(base, tt.path), tt.create)
		if tt.resolved == "" {
			if err == nil {
				d.Close()
				t.Errorf("OpenDir(%s, %v) opened %s, want an error", tt.path, tt.create, d.Resolved())
			}
			continue
		}
		if err != nil {
			t.Errorf("OpenDir(%s, %v): %v", tt.path, tt.create, err)
			continue
		}
		if d.Resolved() != tt.resolved || d.Path() != filepath.Join(base, tt.path) {
			t.Errorf("OpenDir(%s): path %s resolved %s, want %s", tt.path, d.Path(), d.Resolved(), tt.resolved)
		}
		d.Close()
	}
}

// TestForeignLinks: a symlink another user owns is not followed, on the
// path of OpenDir or Sub; root's and the user's own are.
func TestForeignLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "needs root, to make a symlink another user owns", "run the tests as root")
	}
	for _, uid := range []int{nobody, 0} {
		base := layout(t, uid, map[string]string{"link": "real"})
		_, err := OpenDir(filepath.Join(base, "link", "sub"), true)
		if uid == nobody && (!errors.Is(err, ErrForeignLink) || !strings.Contains(err.Error(), "uid 65534")) {
			t.Errorf("OpenDir through nobody's link: %v, want ErrForeignLink", err)
		}
		if uid == 0 && err != nil {
			t.Errorf("OpenDir through root's link: %v", err)
		}
		d, err := OpenDir(base, false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Sub("link", false)
		if (uid == nobody) != errors.Is(err, ErrForeignLink) {
			t.Errorf("Sub through uid %d's link: %v", uid, err)
		}
		d.Close()
		if _, err := os.Stat(filepath.Join(base, "real", "sub")); (uid == nobody) != os.IsNotExist(err) {
			t.Errorf("uid %d's link: real/sub: %v", uid, err)
		}
	}
}

// TestCreate: a file appears under its name only once committed, in
// place of a symlink that had the name, whose target is untouched; a
// discarded one leaves nothing; names that are not one file name are
// refused.
func TestCreate(t *testing.T) {
	base := layout(t, -1, map[string]string{"real/out.txt": "../target", "real/in.txt": "../target"})
	d, err := OpenDir(filepath.Join(base, "real"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := d.Create("out.txt")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("mine")
	if got := names(t, d); len(got) != 3 || !strings.HasPrefix(got[0], tempPrefix+"out.txt-") {
		t.Errorf("before Commit the folder holds %q, want the temporary file and the links", got)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(base, "real", "out.txt")); err != nil || string(b) != "mine" {
		t.Errorf("out.txt: %q %v, want mine", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(base, "target")); string(b) != "target" {
		t.Errorf("the link's target now holds %q", b)
	}
	g, err := d.Create("gone.txt")
	if err != nil {
		t.Fatal(err)
	}
	g.Discard()
	if got := names(t, d); !slices.Equal(got, []string{"in.txt", "out.txt"}) {
		t.Errorf("after Discard the folder holds %q", got)
	}
	if _, err := d.ReadFile("in.txt"); err == nil {
		t.Error("ReadFile followed a symlink")
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x"} {
		if _, err := d.Create(bad); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
	}
	for _, bad := range []string{"..", "../x", "/etc"} {
		if _, err := d.Sub(bad, true); err == nil {
			t.Errorf("Sub(%q) succeeded", bad)
		}
	}
}

// TestClear: the names given and Create's leftovers go; other files, and
// symlinks' targets, stay.
func TestClear(t *testing.T) {
	base := layout(t, -1, map[string]string{"real/a.svg": "../target"})
	dir := filepath.Join(base, "real")
	for _, n := range []string{"b.json", "keep.txt", tempPrefix + "b.json-0123.tmp", tempPrefix + "x"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Clear("a.svg", "b.json", "missing"); err != nil {
		t.Fatal(err)
	}
	if got, want := names(t, d), []string{tempPrefix + "x", "keep.txt"}; !slices.Equal(got, want) {
		t.Errorf("after Clear the folder holds %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(base, "target")); err != nil {
		t.Errorf("the link's target: %v", err)
	}
}

func names(t *testing.T, d *Dir) []string {
	t.Helper()
	entries, err := os.ReadDir(d.Resolved())
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range entries {
		n = append(n, e.Name())
	}
	return n
}

// TestScratch: a scratch file, made without a name or with one removed at
// once, holds what is written to it and leaves nothing in its folder.
func TestScratch(t *testing.T) {
	for _, tt := range []struct {
		name string
		make func(*Dir) (*os.File, error)
	}{
		{"unnamed", (*Dir).Scratch},
		{"named and removed", (*Dir).scratchNamed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			d, err := OpenDir(base, false)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			f, err := tt.make(d)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("spilled"); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 7)
			if _, err := f.ReadAt(b, 0); err != nil || string(b) != "spilled" {
				t.Errorf("read back %q, %v", b, err)
			}
			if names, err := os.ReadDir(base); err != nil || len(names) != 0 {
				t.Errorf("folder holds %v (%v): want nothing", names, err)
			}
		})
	}
}
