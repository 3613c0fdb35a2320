package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/report"
)

// nobody is the user the tests plant symlinks as: someone else, who can
// write to the output folder but not to root's files.
const nobody = 65534

// asRoot skips the test (fails it in CI) unless it runs as root, which
// planting a link as another user takes.
func asRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "needs root, to plant symlinks as another user (nobody) and run as root", "run the tests as root")
	}
}

// secrets is a folder of root-only files (0600) outside any output
// folder, the targets of the links another user plants.
type secrets struct {
	t   *testing.T
	dir string
}

func newSecrets(t *testing.T, base string) *secrets {
	s := &secrets{t, filepath.Join(base, "outside")}
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}

// file makes the root-only file name and returns its path.
func (s *secrets) file(name string) string {
	path := filepath.Join(s.dir, name)
	if err := os.WriteFile(path, []byte("root only: "+name+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// unchanged fails the test unless the folder holds exactly the files it
// made, each with its content and mode.
func (s *secrets) unchanged() {
	s.t.Helper()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join(s.dir, e.Name())
		info, err := os.Lstat(path)
		if err != nil {
			s.t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if !strings.HasPrefix(e.Name(), "secret-") {
			s.t.Errorf("the run made %s outside the output folder (%v, %q)", path, info.Mode(), b)
			continue
		}
		if want := "root only: " + e.Name() + "\n"; string(b) != want || info.Mode() != 0o600 {
			s.t.Errorf("the run changed %s outside the output folder: %v %q, want 0600 %q", path, info.Mode(), b, want)
		}
	}
}

// plant makes the symlink path to target as nobody would.
func plant(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, nobody, nobody); err != nil {
		t.Fatal(err)
	}
}

// folderOf makes the folder path, nobody's and writable by nobody only.
func folderOf(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, nobody, nobody); err != nil {
		t.Fatal(err)
	}
}

// TestRunIgnoresPlantedLinks: run as root with -out in a folder another
// user owns, where that user planted a symlink under every name the run
// writes or wrote (each artifact, log, index.html, the JUnit file, and the
// NAME.tmp temporaries earlier versions used), each pointing at a
// root-only file or a name outside the output folder. The run passes,
// replaces the links with its own files, and changes nothing outside.
func TestRunIgnoresPlantedLinks(t *testing.T) {
	asRoot(t)
	testenv.NetNS(t)
	base := t.TempDir()
	s := newSecrets(t, base)
	out := filepath.Join(base, "out")
	dir := filepath.Join(out, "handshake")
	folderOf(t, out)
	folderOf(t, dir)
	names := append(report.Artifacts[:], lab.ServerLog, lab.ClientLog, "tcpdump.pcap")
	for _, n := range names {
		// The temporary name points at a root-only file, the final name
		// at one that does not exist yet.
		plant(t, s.file("secret-"+n+".tmp"), filepath.Join(dir, n+".tmp"))
		plant(t, filepath.Join(s.dir, "new-"+n), filepath.Join(dir, n))
	}
	for _, n := range []string{report.IndexFile, "junit.xml"} {
		plant(t, s.file("secret-"+n+".tmp"), filepath.Join(out, n+".tmp"))
		plant(t, s.file("secret-"+n), filepath.Join(out, n))
	}

	code, stdout, stderr := runTCPLab(t, "run", "-out", out, "-junit", filepath.Join(out, "junit.xml"), "handshake")
	s.unchanged()
	if code != 0 {
		t.Fatalf("tcplab run: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, path := range []string{filepath.Join(dir, report.CaptureFile), filepath.Join(dir, report.ResultFile),
		filepath.Join(dir, report.LadderFile), filepath.Join(out, report.IndexFile), filepath.Join(out, "junit.xml")} {
		if info, err := os.Lstat(path); err != nil || !info.Mode().IsRegular() {
			t.Errorf("%s: %v, want the run's own file in place of the link", path, err)
		}
	}
	for _, n := range []string{lab.ServerLog, lab.ClientLog, report.PointsFile} {
		if _, err := os.Lstat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v): an earlier run's file, or a link, the run should have removed", n, err)
		}
	}
	var r lab.Result
	b, err := os.ReadFile(filepath.Join(dir, report.ResultFile))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil || !r.Pass {
		t.Errorf("result.json: %v, pass %v", err, r.Pass)
	}
}

// TestRunOutLinks: -out through a symlink another user owns is refused
// with the reason; through root's own it is followed and said; a
// scenario's folder that is someone else's symlink fails that scenario.
// None of them changes anything outside the output folder.
func TestRunOutLinks(t *testing.T) {
	asRoot(t)
	testenv.NetNS(t)
	base := t.TempDir()
	s := newSecrets(t, base)
	s.file("secret-keep")

	foreign := filepath.Join(base, "foreign")
	plant(t, s.dir, foreign)
	code, stdout, stderr := runTCPLab(t, "run", "-out", foreign, "handshake")
	if code == 0 || !strings.Contains(stderr, "symlink owned by another user (uid 65534)") || !strings.Contains(stderr, "-out DIR") {
		t.Errorf("-out through nobody's symlink: exit %d, stderr %q; want a refusal that says why and what to do\n%s", code, stderr, stdout)
	}

	parent := filepath.Join(base, "parent")
	folderOf(t, parent)
	plant(t, s.dir, filepath.Join(parent, "handshake"))
	code, stdout, stderr = runTCPLab(t, "run", "-out", parent, "handshake")
	if code != 1 || !strings.Contains(stdout, "handshake: "+filepath.Join(parent, "handshake")+": ") || !strings.Contains(stdout, "symlink owned by another user") {
		t.Errorf("a scenario folder that is nobody's symlink: exit %d, want 1 and the reason\n%s%s", code, stdout, stderr)
	}
	s.unchanged()

	real := filepath.Join(base, "real")
	own := filepath.Join(base, "own")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, own); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runTCPLab(t, "run", "-out", own, "handshake")
	if code != 0 || !strings.Contains(stderr, "-out "+own+" goes through a symlink: writing in "+real+"\n") {
		t.Errorf("-out through root's own symlink: exit %d, stderr %q; want a pass and where it writes\n%s", code, stderr, stdout)
	}
	if _, err := os.Stat(filepath.Join(real, "handshake", report.CaptureFile)); err != nil {
		t.Errorf("the artifacts are not where the line says: %v", err)
	}
}

// TestRunLeavesNoStaleArtifacts: after a passing run of a scenario, a
// failing one leaves in its folder only files of its own. reset with
// -no-sandbox fails before anything is captured: its folder holds its
// result.json alone. halfclose with a server that exits before it listens
// writes its (empty) artifacts anew, and server.log with what the server
// printed; none of the passing run's files (tseq.svg, say) is left.
func TestRunLeavesNoStaleArtifacts(t *testing.T) {
	testenv.NetNS(t)
	tests := []struct {
		scenario string
		args     []string
		want     []string
		log      string
	}{
		{"reset", []string{"-no-sandbox"}, []string{report.ResultFile}, ""},
		{"halfclose", []string{"-server", "echo no port for me; exit 7"},
			[]string{report.CaptureFile, report.LadderFile, report.ResultFile, lab.ServerLog, report.WalkthroughHTMLFile, report.WalkthroughFile},
			"$ echo no port for me; exit 7\nno port for me\n[exit status 7]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			out := t.TempDir()
			dir := filepath.Join(out, tt.scenario)
			if code, stdout, stderr := runTCPLab(t, "run", "-out", out, tt.scenario); code != 0 {
				t.Fatalf("tcplab run %s: exit %d\n%s%s", tt.scenario, code, stdout, stderr)
			}
			// A file's bytes tell the passing run's from the failing
			// run's (its verdict, its times); an inode number would not,
			// since the file system reuses a deleted file's.
			before := map[string]string{}
			for _, n := range listFolder(t, dir) {
				before[n] = readString(t, filepath.Join(dir, n))
			}
			for _, n := range []string{report.CaptureFile, report.WalkthroughFile, report.WalkthroughHTMLFile, report.LadderFile, report.TimeSeqFile} {
				if _, ok := before[n]; !ok {
					t.Fatalf("the passing run left no %s: %v", n, before)
				}
			}
			code, stdout, stderr := runTCPLab(t, append(append([]string{"run", "-out", out}, tt.args...), tt.scenario)...)
			if code != 1 {
				t.Fatalf("tcplab run %q %s: exit %d, want 1\n%s%s", tt.args, tt.scenario, code, stdout, stderr)
			}
			got := listFolder(t, dir)
			if !slices.Equal(got, tt.want) {
				t.Errorf("after the failed run the folder holds %q, want %q", got, tt.want)
			}
			for _, n := range got {
				if old, ok := before[n]; ok && old == readString(t, filepath.Join(dir, n)) {
					t.Errorf("%s is the passing run's", n)
				}
			}
			if tt.log != "" {
				b, err := os.ReadFile(filepath.Join(dir, lab.ServerLog))
				if err != nil || string(b) != tt.log {
					t.Errorf("server.log: %v %q, want %q", err, b, tt.log)
				}
			}
		})
	}
}

// readString returns the bytes of the file at path.
func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listFolder returns the names in dir, sorted.
func listFolder(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestRunPeerCommandsNoRace runs a scenario with the user's own client,
// the run that replaced the scenario's peers while the capture read it.
// Under go test -race (make test runs it so) the child's race detector
// would print a report, which reaches the progress lines; without -race
// it checks client.log alone.
func TestRunPeerCommandsNoRace(t *testing.T) {
	testenv.NetNS(t)
	out := t.TempDir()
	code, stdout, stderr := runTCPLab(t, "run", "-out", out, "-client", "echo from the client; exit 3", "http-real-client")
	if strings.Contains(stderr, "DATA RACE") {
		t.Errorf("the race detector reported a race:\n%s", stderr)
	}
	if code != 1 {
		t.Errorf("a client that connects nowhere: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "http-real-client", lab.ClientLog))
	if want := "$ echo from the client; exit 3\nfrom the client\n[exit status 3]\n"; err != nil || string(b) != want {
		t.Errorf("client.log: %v %q, want %q", err, b, want)
	}
	t.Logf("race detector on: %v", raceEnabled)
}
