package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/readme"
)

var update = flag.Bool("update", false, "rewrite README.md's generated annotate example")

// TestReadmeAnnotateExample: the README's annotate example is what
// `tcplab annotate` prints today on the fixture it names.
func TestReadmeAnnotateExample(t *testing.T) {
	const file = "capture/testdata/keepalive.pcap"
	code, stdout, stderr := runTCPLab(t, "annotate", "../../"+file)
	if code != 0 {
		t.Fatalf("annotate: exit %d: %s", code, stderr)
	}
	today := "$ bin/tcplab annotate " + file + "\n" + strings.ReplaceAll(stdout, "../../"+file, file)
	const path = "../../README.md"
	if *update {
		if err := readme.Update(path, "annotate", today); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := readme.Block(path, "annotate")
	if err != nil {
		t.Fatal(err)
	}
	if got != today {
		t.Errorf("README's annotate example is not what annotate prints today; run go test ./cmd/tcplab -run TestReadme -update\nREADME:\n%s\ntoday:\n%s", got, today)
	}
}
