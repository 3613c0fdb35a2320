// Package safefile makes files in a folder without following a symlink that
// someone else planted there.
//
// A run of tcplab may be root's, writing into a folder another user can
// write to (-out /tmp/x). A file opened by its path there follows whatever
// link that user put in its place, so root would overwrite the link's
// target. Here the folder is opened once ([OpenDir]), walking its path one
// name at a time with O_NOFOLLOW: a symlink on the way is followed only
// when root or the user running owns it, since anyone else's link is not
// the user's choice. Every file is then made inside that open folder under
// a new random name with O_CREAT|O_EXCL (which never follows a link) and
// renamed in place when it is complete ([File.Commit]), so a reader sees a
// whole file or none, and a link planted under the final name is replaced,
// never followed. Removing ([Dir.Remove], [Dir.Clear]) unlinks names in
// the folder, which never touches a link's target.
package safefile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrForeignLink is the error of a path with a symlink that neither root
// nor the user running owns.
var ErrForeignLink = errors.New("symlink owned by another user")

// maxLinks bounds the symlinks one path may go through, as the kernel's
// own MAXSYMLINKS does.
const maxLinks = 40

// tempPrefix starts the name of every file Create has not committed yet;
// Clear removes such leftovers of an earlier run.
const tempPrefix = ".tcplab-"

// Dir is a folder opened once; every file it makes or removes is in it.
type Dir struct {
	f        *os.File
	path     string // as the caller named it
	resolved string // with every symlink on the way resolved
}

// OpenDir opens the folder at path, making it and its missing parents
// (0755) when create is set. A symlink on the way is followed when root or
// the user running owns it; one owned by anyone else is refused with an
// error wrapping ErrForeignLink.
func OpenDir(path string, create bool) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /: %w", err)
	}
	fd, resolved, err := walk(root, "/", abs, create)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), path: filepath.Clean(path), resolved: resolved}, nil
}

// FromFile makes a Dir of a folder already open, such as one a parent
// process passed down; path names it in messages.
func FromFile(f *os.File, path string) (*Dir, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("%s: not a folder", path)
	}
	return &Dir{f: f, path: path, resolved: path}, nil
}

// Sub opens the folder name (a path inside d) by the rules of OpenDir,
// making it when create is set.
func (d *Dir) Sub(name string, create bool) (*Dir, error) {
	if !filepath.IsLocal(name) {
		return nil, fmt.Errorf("%s: %q is not a name inside it", d.path, name)
	}
	start, err := unix.Openat(d.fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	path := filepath.Join(d.path, name)
	fd, resolved, err := walk(start, d.resolved, name, create)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), path: path, resolved: resolved}, nil
}

// walk opens path from the folder fd (whose own path is at), one name at a
// time, and returns the folder's descriptor and resolved path; it closes
// fd. A symlink is read and its target walked in its place, if root or the
// user running owns it.
func walk(fd int, at, path string, create bool) (int, string, error) {
	rest := split(path)
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(fd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, "", fmt.Errorf("make folder %s: %w", filepath.Join(at, name), err)
			}
			next, err = unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			target, lerr := readLink(fd, at, name)
			if lerr == nil {
				if links++; links > maxLinks {
					unix.Close(fd)
					return -1, "", fmt.Errorf("more than %d symlinks: %w", maxLinks, unix.ELOOP)
				}
				if filepath.IsAbs(target) {
					root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
					unix.Close(fd)
					if err != nil {
						return -1, "", fmt.Errorf("open /: %w", err)
					}
					fd, at = root, "/"
				}
				rest = append(split(target), rest...)
				continue
			}
			if !errors.Is(lerr, errNotLink) {
				unix.Close(fd)
				return -1, "", lerr
			}
		}
		unix.Close(fd)
		if err != nil {
			return -1, "", fmt.Errorf("open folder %s: %w", filepath.Join(at, name), err)
		}
		fd = next
		if name == ".." {
			at = filepath.Dir(at)
		} else {
			at = filepath.Join(at, name)
		}
	}
	return fd, at, nil
}

var errNotLink = errors.New("not a symlink")

// readLink returns the target of the symlink name in the folder fd, when
// root or the user running owns it.
func readLink(fd int, at, name string) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", errNotLink
	}
	path := filepath.Join(at, name)
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("%s is a %w (uid %d), not by you or root", path, ErrForeignLink, st.Uid)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, name, buf)
	if err != nil {
		return "", fmt.Errorf("read symlink %s: %w", path, err)
	}
	return string(buf[:n]), nil
}

// split returns the names of path, without empty ones and ".".
func split(path string) []string {
	var names []string
	for _, n := range strings.Split(path, "/") {
		if n != "" && n != "." {
			names = append(names, n)
		}
	}
	return names
}

func (d *Dir) fd() int { return int(d.f.Fd()) }

// Path returns the folder's path as it was named.
func (d *Dir) Path() string { return d.path }

// Resolved returns the folder's path with every symlink on the way
// resolved: where the files really go. A Dir from FromFile has its Path.
func (d *Dir) Resolved() string { return d.resolved }

// File returns the open folder, to pass to a child process
// (exec.Cmd.ExtraFiles); FromFile makes a Dir of it there.
func (d *Dir) File() *os.File { return d.f }

// Close closes the folder.
func (d *Dir) Close() error { return d.f.Close() }

// File is a file being made in a Dir under a temporary name: Commit gives
// it its name, Discard removes it.
type File struct {
	*os.File
	dir  *Dir
	tmp  string
	name string
	done bool
}

// Create makes a new, empty file (0644 before the umask) that will be
// called name, a name without a slash, once committed.
func (d *Dir) Create(name string) (*File, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("%s: %q is not a file name", d.path, name)
	}
	for range 10 {
		var b [8]byte
		rand.Read(b[:])
		tmp := tempPrefix + name + "-" + hex.EncodeToString(b[:]) + ".tmp"
		fd, err := unix.Openat(d.fd(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", filepath.Join(d.path, name), err)
		}
		return &File{File: os.NewFile(uintptr(fd), filepath.Join(d.path, name)), dir: d, tmp: tmp, name: name}, nil
	}
	return nil, fmt.Errorf("create %s: no free temporary name", filepath.Join(d.path, name))
}

// Commit closes the file and renames it to its name, replacing whatever
// had that name (a symlink included, which is not followed).
func (f *File) Commit() error {
	if f.done {
		return nil
	}
	f.done = true
	if err := f.File.Close(); err != nil {
		unix.Unlinkat(f.dir.fd(), f.tmp, 0)
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := unix.Renameat(f.dir.fd(), f.tmp, f.dir.fd(), f.name); err != nil {
		unix.Unlinkat(f.dir.fd(), f.tmp, 0)
		return fmt.Errorf("rename into %s: %w", f.Name(), err)
	}
	return nil
}

// Discard closes the file and removes it; after Commit it does nothing.
func (f *File) Discard() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	unix.Unlinkat(f.dir.fd(), f.tmp, 0)
}

// Scratch makes a file in d that has no name, open for reading and
// writing: a place for a run to spill what it cannot keep in memory. No
// other process can open it by a name, and it is gone once closed or once
// the run ends, however it ends. Where the filesystem cannot make a file
// without a name (O_TMPFILE), it is made as Create makes a file (mode
// 0600) and its name removed at once.
func (d *Dir) Scratch() (*os.File, error) {
	fd, err := unix.Openat(d.fd(), ".", unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(d.path, "(scratch file)")), nil
	}
	return d.scratchNamed()
}

// scratchNamed makes Scratch's file by a new random name, removed at once.
func (d *Dir) scratchNamed() (*os.File, error) {
	for range 10 {
		var b [8]byte
		rand.Read(b[:])
		tmp := tempPrefix + "scratch-" + hex.EncodeToString(b[:]) + ".tmp"
		fd, err := unix.Openat(d.fd(), tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create a scratch file in %s: %w", d.path, err)
		}
		if err := unix.Unlinkat(d.fd(), tmp, 0); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("create a scratch file in %s: remove its name: %w", d.path, err)
		}
		return os.NewFile(uintptr(fd), filepath.Join(d.path, "(scratch file)")), nil
	}
	return nil, fmt.Errorf("create a scratch file in %s: no free temporary name", d.path)
}

// WriteFile makes the file name in d holding data, whole or not at all.
func (d *Dir) WriteFile(name string, data []byte) error {
	f, err := d.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Discard()
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return f.Commit()
}

// ReadFile reads the file name in d; a symlink there is not followed.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(d.path, name), err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.path, name))
	defer f.Close()
	return io.ReadAll(f)
}

// Remove removes the file name from d, if it is there; a symlink is
// removed, not its target.
func (d *Dir) Remove(name string) error {
	err := unix.Unlinkat(d.fd(), name, 0)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", filepath.Join(d.path, name), err)
	}
	return nil
}

// Clear removes the files names from d, and every temporary file that
// Create left there uncommitted (a run that was killed); it touches no
// other file.
func (d *Dir) Clear(names ...string) error {
	var errs []error
	for _, n := range names {
		errs = append(errs, d.Remove(n))
	}
	fd, err := unix.Openat(d.fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list %s: %w", d.path, err))...)
	}
	list := os.NewFile(uintptr(fd), d.path)
	defer list.Close()
	all, err := list.Readdirnames(-1)
	if err != nil {
		errs = append(errs, fmt.Errorf("list %s: %w", d.path, err))
	}
	for _, n := range all {
		if strings.HasPrefix(n, tempPrefix) && strings.HasSuffix(n, ".tmp") {
			errs = append(errs, d.Remove(n))
		}
	}
	return errors.Join(errs...)
}

// WriteFile writes data to the file at path, whole or not at all, by
// Create and Commit in the folder of path opened by OpenDir (not made).
func WriteFile(path string, data []byte) error {
	d, err := OpenDir(filepath.Dir(path), false)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.WriteFile(filepath.Base(path), data)
}
