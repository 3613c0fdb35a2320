package cli

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args []string
		json bool
		out  string
		pos  []string
	}{
		{[]string{"-json", "f.pcap"}, true, "", []string{"f.pcap"}},
		{[]string{"f.pcap", "-json"}, true, "", []string{"f.pcap"}},
		{[]string{"f.pcap", "-o", "x.pcapng", "g.pcap"}, false, "x.pcapng", []string{"f.pcap", "g.pcap"}},
		{[]string{"-json", "--", "-weird-name.pcap"}, true, "", []string{"-weird-name.pcap"}},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("annotate", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "")
		out := fs.String("o", "", "")
		if err := Parse(fs, tt.args, Help{}, nil); err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if *asJSON != tt.json || *out != tt.out || !slices.Equal(fs.Args(), tt.pos) {
			t.Errorf("%q: json %v, o %q, args %q; want %v, %q, %q", tt.args, *asJSON, *out, fs.Args(), tt.json, tt.out, tt.pos)
		}
	}
}

func TestHelp(t *testing.T) {
	fs := flag.NewFlagSet("annotate", flag.ContinueOnError)
	fs.Bool("json", false, "print one JSON object per TCP segment")
	var out bytes.Buffer
	h := Help{Usage: "tcplab annotate [-json] FILE", About: "Annotate every TCP segment.", Examples: []string{"tcplab annotate x.pcap"}}
	err := Parse(fs, []string{"FILE", "-h"}, h, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"usage: tcplab annotate [-json] FILE", "Annotate every TCP segment.", "-json", "print one JSON object", "examples:\n  tcplab annotate x.pcap"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}
