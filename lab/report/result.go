package report

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/tcplab/tcplab/internal/safefile"
	"github.com/tcplab/tcplab/lab/expect"
)

// The artifacts' file names: each scenario's directory holds CaptureFile,
// WalkthroughFile, WalkthroughHTMLFile, LadderFile and ResultFile; the
// run's directory holds IndexFile.
const (
	CaptureFile         = "capture.pcapng"
	WalkthroughFile     = "walkthrough.md"
	WalkthroughHTMLFile = "walkthrough.html"
	LadderFile          = "ladder.svg"
	ResultFile          = "result.json"
	// PointsFile holds what every capture point saw, one pcapng interface
	// each, when the lab captured at more than one (two hosts).
	PointsFile = "points.pcapng"
	IndexFile  = "index.html"
)

// Files lists a scenario's artifacts in the order index.html shows them.
var Files = [...]string{CaptureFile, WalkthroughHTMLFile, WalkthroughFile, LadderFile, ResultFile}

// Artifacts lists every file Write and WriteResult may leave in a
// scenario's directory: a new run of the scenario removes them first, so
// that none of an earlier run's is left beside the new result.
var Artifacts = [...]string{CaptureFile, WalkthroughHTMLFile, WalkthroughFile, LadderFile, ResultFile, TimeSeqFile, PointsFile}

// optionalFiles are artifacts only some runs have (index.html links them
// when they are there and does not miss them otherwise).
var optionalFiles = [...]string{TimeSeqFile, PointsFile}

// Sandbox says where a scenario ran.
type Sandbox string

// The places a scenario runs: a network namespace of its own, or the
// host's lo (tcplab run -no-sandbox).
const (
	SandboxNetns  Sandbox = "netns"
	SandboxHostLo Sandbox = "host lo"
)

// Result is the outcome of one scenario run, as result.json stores it.
type Result struct {
	Scenario    string            `json:"scenario"`
	Summary     string            `json:"summary"`
	Pass        bool              `json:"pass"`
	Interrupted bool              `json:"interrupted,omitempty"`
	Error       string            `json:"error,omitempty"` // a peer failed, the capture failed, a timeout
	Mismatches  []expect.Mismatch `json:"mismatches,omitempty"`
	Frames      int               `json:"frames"`
	Segments    int               `json:"segments"` // TCP segments
	Drops       int               `json:"drops"`    // kernel drops reported by libpcap
	Events      []string          `json:"events,omitempty"`
	// Metrics holds what the peers measured, such as a throughput.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Capture is what captured: "tcplab", "tcpdump" or "none".
	Capture string  `json:"capture"`
	Sandbox Sandbox `json:"sandbox"`
	// Network says where the peers met: "loopback", "lan" or "routed";
	// Path, Mechanism and Seed describe a routed path: its conditions,
	// what made them happen ("tun-line", "netem", "tbf") and the delay
	// line's seed.
	Network   string `json:"network,omitempty"`
	Path      string `json:"path,omitempty"`
	Mechanism string `json:"path_mechanism,omitempty"`
	Seed      uint64 `json:"seed,omitempty"`
	// Kernel is what the kernel said of the connection's sockets each
	// time the capture saw a segment (as ss -ti shows them: state, cwnd,
	// ssthresh, rtt, rto, queues), by frame.
	Kernel []KernelSample `json:"kernel,omitempty"`
	// KernelSource says where the kernel's account came from: its own
	// events (ktrace), or samples after segments (inet_diag) where the run
	// could not trace it.
	KernelSource KernelSource `json:"kernel_source,omitempty"`
	// KernelUntraced says why the run could not trace the kernel (no
	// root, no BTF), when it sampled instead.
	KernelUntraced string `json:"kernel_untraced,omitempty"`
	// KernelEvents are what the kernel did at both ends, on the capture's
	// clock, each with the frame it belongs to (0: a drop of a packet the
	// capture did not see), in frame order.
	KernelEvents []KernelEvent `json:"kernel_events,omitempty"`
	// KernelUntied are the kernel's state changes (but a listener's own),
	// retransmissions and resets that no frame of the capture matches: a retransmission the kernel attempted
	// and did not send (Reason is its error, such as EBUSY: the original
	// was still queued on the host), or a segment the capture lacks.
	KernelUntied []KernelEvent `json:"kernel_untied,omitempty"`
	// KernelLost counts the kernel's events lost on the way (its ring
	// buffer was full): the wire is not checked against an account with
	// holes.
	KernelLost uint64 `json:"kernel_lost,omitempty"`
	// KernelWarnings are where the wire's analysis and the kernel's
	// account disagree in a way that does not fail the run (see
	// lab's kernel checks).
	KernelWarnings []string `json:"kernel_warnings,omitempty"`
	// KernelPaths are the paths through the kernel of the segments the
	// run followed (lab's -trace-path; by default the SYN and the first
	// data segment each way), each step with its time and queue.
	KernelPaths []PathTimeline `json:"kernel_paths,omitempty"`
	// KernelPathUnavailable says why the run, which traced the kernel,
	// could not follow segments through it.
	KernelPathUnavailable string  `json:"kernel_path_unavailable,omitempty"`
	Seconds               float64 `json:"seconds"` // wall time of the scenario
	WaitSeconds           float64 `json:"wait_seconds"`
	Dir                   string  `json:"dir"` // where the artifacts are
}

// KernelSample is what the kernel said of a connection's sockets right
// after the capture saw frame Frame: a JSON array of sockets, with the
// names ss users know (state, cwnd, ssthresh, rtt_ms, rto_ms, send_q,
// recv_q, ...; package lab/sockstat).
type KernelSample struct {
	Frame   int             `json:"frame"`
	Sockets json.RawMessage `json:"sockets"`
}

// Fail marks the result failed and adds err to its error.
func (r *Result) Fail(err error) {
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

// WriteResult writes result.json in dir, whole or not at all.
func WriteResult(dir *safefile.Dir, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return dir.WriteFile(ResultFile, append(b, '\n'))
}

// ReadResult reads the result.json in dir.
func ReadResult(dir *safefile.Dir) (*Result, error) {
	b, err := dir.ReadFile(ResultFile)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir.Path(), ResultFile), err)
	}
	return &r, nil
}
