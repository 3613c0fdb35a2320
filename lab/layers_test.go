package lab_test

import (
	"os/exec"
	"strings"
	"testing"
)

// layers ranks tcplab's packages in the order data flows through them
// (lab/doc.go): a package may import only packages of a lower rank, so
// that nothing reaches back up the chain.
var layers = map[string]int{
	"capture":              0,
	"internal/cli":         0,
	"internal/readme":      0,
	"internal/safefile":    0,
	"internal/capgen":      0,
	"capture/live":         1,
	"lab/expect":           2,
	"lab/report":           3,
	"lab/property":         3,
	"lab/netns":            2,
	"lab/impair":           3,
	"lab/path":             3,
	"lab/sockstat":         3,
	"lab/ktrace":           3,
	"internal/testenv":     4,
	"internal/annotatecmd": 4,
	"lab/scripted":         3,
	"lab/pkt":              4,
	"lab":                  5,
	"lab/peer":             6,
	"lab/labtest":          6,
	"scenarios":            7,
	"cmd/tcplab":           8,
}

func TestLayers(t *testing.T) {
	const mod = "github.com/tcplab/tcplab/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		rank, ok := layers[pkg]
		if !ok {
			t.Errorf("package %s has no place in the layers; add it to layers and to lab/doc.go", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			dep, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			if layers[dep] >= rank {
				t.Errorf("%s imports %s, which is not below it", pkg, dep)
			}
		}
	}
}

// TestPureGo: the packages that read, annotate, judge and report packets
// build without cgo, so a program that only checks captures needs no
// libpcap.
func TestPureGo(t *testing.T) {
	cmd := exec.Command("go", "build", "./capture", "./lab/expect", "./lab/report")
	cmd.Dir = ".."
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
}
