package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

// TestAnnotateSummaryJSON: annotate -summary -json prints one JSON object
// per connection and nothing else, with the verdict's fields: Zeek's
// conn_state and history, tshark's completeness, bytes each way, how it
// ended; and the text -summary says the same conn_state.
func TestAnnotateSummaryJSON(t *testing.T) {
	tests := []struct {
		fixture string
		states  []string // each connection's conn_state
		closer  []string
	}{
		{"handshake.pcap", []string{"SF"}, []string{"client"}},
		{"rst.pcap", []string{"REJ", "RSTR"}, []string{"none", "none"}},
		{"half-close.pcap", []string{"SF"}, []string{"client"}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			path := fixturePath(t, tc.fixture)
			code, stdout, stderr := runTCPLab(t, "annotate", "-summary", "-json", path)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			sc := bufio.NewScanner(strings.NewReader(stdout))
			n := 0
			for sc.Scan() {
				var v struct {
					Stream       *int
					ConnState    string `json:"conn_state"`
					History      string
					Completeness *int
					Closer       string
					ClientBytes  *int64 `json:"client_bytes"`
					Ending       string
				}
				if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
					t.Fatalf("line %d: %v: %s", n+1, err, sc.Text())
				}
				if n >= len(tc.states) {
					t.Fatalf("more than %d connections: %s", len(tc.states), sc.Text())
				}
				if v.Stream == nil || *v.Stream != n || v.ConnState != tc.states[n] || v.Closer != tc.closer[n] ||
					v.History == "" || v.Completeness == nil || v.ClientBytes == nil || v.Ending == "" {
					t.Errorf("line %d: %s; want stream %d, conn_state %s, closer %s", n+1, sc.Text(), n, tc.states[n], tc.closer[n])
				}
				n++
			}
			if n != len(tc.states) {
				t.Errorf("%d connections, want %d", n, len(tc.states))
			}
			_, text, _ := runTCPLab(t, "annotate", "-summary", path)
			for i, s := range tc.states {
				if !strings.Contains(text, "conn_state "+s+",") {
					t.Errorf("text summary of stream %d does not say conn_state %s:\n%s", i, s, text)
				}
			}
		})
	}
}
