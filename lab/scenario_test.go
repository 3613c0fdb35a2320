package lab

import (
	"slices"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/lab/expect"
)

// TestSummaryWithYourClient: with -client the summary names the user's
// client instead of the scenario's own clients, in the run's language.
func TestSummaryWithYourClient(t *testing.T) {
	sc := &Scenario{
		Summary: "answers Go's net/http, then curl", SummaryZH: "回应Go的net/http, 然后curl",
		ClientSummary: "answers your client (%s)", ClientSummaryZH: "回应你的客户端 (%s)",
	}
	bare := &Scenario{Summary: "answers Go's net/http, then curl"}
	tests := []struct {
		sc            *Scenario
		opt           Options
		want, notWant string
	}{
		{sc, Options{}, "net/http, then curl", "your client"},
		{sc, Options{Lang: expect.Chinese}, "然后curl", "你的客户端"},
		{sc, Options{ClientCommand: "wget -q x"}, "answers your client (wget -q x)", "net/http"},
		{sc, Options{ClientCommand: "wget -q x", Lang: expect.Chinese}, "回应你的客户端 (wget -q x)", "net/http"},
		{bare, Options{ClientCommand: "wget -q x"}, "your client (wget -q x)", "net/http"},
	}
	for _, tt := range tests {
		got := tt.sc.summary(tt.opt)
		if !strings.Contains(got, tt.want) || strings.Contains(got, tt.notWant) {
			t.Errorf("summary with %+v = %q, want %q and no %q", tt.opt, got, tt.want, tt.notWant)
		}
	}
	if got := (Options{ServerCommand: "a", ClientCommand: "b"}).peerLogs(); !slices.Equal(got, []string{ServerLog, ClientLog}) {
		t.Errorf("logs of your server and client: %q", got)
	}
	if got := (Options{}).peerLogs(); got != nil {
		t.Errorf("logs of the scenario's own peers: %q, want none", got)
	}
}
