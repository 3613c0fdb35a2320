package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Result is the outcome of one scenario run, as result.json stores it.
type Result struct {
	Scenario    string     `json:"scenario"`
	Summary     string     `json:"summary"`
	Pass        bool       `json:"pass"`
	Interrupted bool       `json:"interrupted,omitempty"`
	Error       string     `json:"error,omitempty"` // a peer failed, the capture failed, a timeout
	Mismatches  []Mismatch `json:"mismatches,omitempty"`
	Frames      int        `json:"frames"`
	Segments    int        `json:"segments"` // TCP segments
	Drops       int        `json:"drops"`    // kernel drops reported by libpcap
	Events      []string   `json:"events,omitempty"`
	// Metrics holds what the peers measured, such as a throughput.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Capture is what captured: "tcplab", "tcpdump" or "none".
	Capture     string  `json:"capture"`
	Sandbox     string  `json:"sandbox"` // "netns" or "host lo"
	Seconds     float64 `json:"seconds"` // wall time of the scenario
	WaitSeconds float64 `json:"wait_seconds"`
	Dir         string  `json:"dir"` // where the artifacts are
}

// fail marks the result failed and adds err to its error.
func (r *Result) fail(err error) {
	r.Pass = false
	if r.Error != "" {
		r.Error += "; "
	}
	r.Error += err.Error()
}

// Failure returns a readable account of why the scenario failed, or "".
func (r *Result) Failure() string {
	s := ""
	if r.Error != "" {
		s += r.Scenario + ": " + r.Error + "\n"
	}
	if r.Drops > 0 {
		s += fmt.Sprintf("%s: the kernel dropped %d packets during the capture\n", r.Scenario, r.Drops)
	}
	for i := range r.Mismatches {
		s += r.Mismatches[i].Error() + "\n"
	}
	return s
}

func writeResult(dir string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "result.json"), append(b, '\n'))
}

// readResult reads a result.json.
func readResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// writeFile writes a file through a temporary name, so a reader never sees
// half of it.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
