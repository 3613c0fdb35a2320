package lab_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/lab"
)

// TestCommandOfYourOwn: a program made with lab.Main has every command of
// tcplab, annotate and version included, under its own name.
func TestCommandOfYourOwn(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"annotate", "-summary", "../capture/testdata/keepalive.pcap"}, "history ShADadFf"},
		{[]string{"version"}, "mylab "},
		{[]string{"list"}, ""},
		{[]string{"help"}, "mylab annotate [flags] FILE..."},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := lab.Command("mylab", tt.args, &stdout, &stderr, nil)
		if code != lab.ExitPass || stderr.Len() > 0 {
			t.Errorf("mylab %q: exit %d, stderr %q; want 0", tt.args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), tt.want) {
			t.Errorf("mylab %q: %q lacks %q", tt.args, stdout.String(), tt.want)
		}
	}
}
