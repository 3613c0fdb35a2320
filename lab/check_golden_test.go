package lab

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/lab/property"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/check")

// allProperties is every property, for the golden files.
const allProperties = "handshake,no-rst,no-retransmission,no-zero-window,closer=client,half-close,teardown=FIN,ACK,FIN,ACK,keepalive,max-syn-retries=0"

// TestCheckGolden checks every capture fixture of package capture for
// every property and compares the text, JSON and JUnit verdicts with
// testdata/check/FIXTURE.golden (-update rewrites them): what check
// prints stays the same whatever the way it reads the file.
func TestCheckGolden(t *testing.T) {
	props, err := property.Parse(allProperties)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, pat := range []string{"*.pcap", "*.pcapng"} {
		m, err := filepath.Glob(filepath.Join("..", "capture", "testdata", pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("%d fixtures in ../capture/testdata", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			v := Check(file, CheckRequest{Properties: props, Stream: -1})
			var b bytes.Buffer
			printVerdict(&b, v)
			b.WriteString("\n")
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
			x, err := JUnit([]FileVerdict{v}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			b.Write(x)
			golden := filepath.Join("testdata", "check", strings.TrimPrefix(filepath.Base(file), ".")+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestCheckGolden -update writes it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from %s:\n%s", file, golden, b.Bytes())
			}
			// check -json and -junit write each connection as it is
			// judged: the same bytes as the verdict kept whole.
			junit := filepath.Join(t.TempDir(), "junit.xml")
			var stdout, stderr bytes.Buffer
			Command("tcplab", []string{"check", "-json", "-junit", junit, "-expect", allProperties, file}, &stdout, &stderr, nil)
			var whole bytes.Buffer
			enc = json.NewEncoder(&whole)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(struct {
				Files []FileVerdict `json:"files"`
				Pass  bool          `json:"pass"`
			}{[]FileVerdict{v}, v.Pass}); err != nil {
				t.Fatal(err)
			}
			if stdout.String() != whole.String() {
				t.Errorf("tcplab check -json %s prints:\n%s\nwant:\n%s", file, stdout.Bytes(), whole.Bytes())
			}
			if got, err := os.ReadFile(junit); err != nil || !bytes.Equal(got, x) {
				t.Errorf("tcplab check -junit %s writes (%v):\n%s\nwant:\n%s", file, err, got, x)
			}
			if v.Error != "" {
				return
			}
			// The command prints each connection as it is judged: the
			// same text.
			stdout.Reset()
			Command("tcplab", []string{"check", "-expect", allProperties, file}, &stdout, &stderr, nil)
			if text, _, _ := bytes.Cut(want, []byte("\n{")); stdout.String() != string(text) {
				t.Errorf("tcplab check %s prints:\n%s\nwant:\n%s", file, stdout.Bytes(), text)
			}
		})
	}
}
