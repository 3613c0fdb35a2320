package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/cli"
	"github.com/tcplab/tcplab/internal/safefile"
	"github.com/tcplab/tcplab/lab/path"
	"github.com/tcplab/tcplab/lab/report"
)

// The oracle runs scenarios across seeded path conditions and compares,
// label by label, what the wire's analysis says of each segment (tcplab's
// labels, which are tshark's) with what the kernels of both ends did:
// their own account, traced with eBPF. A run the runner failed for a
// contradiction between the two is counted like any other: its
// artifacts are what the oracle reads.

// oracleConditions are the path conditions the oracle runs by default:
// a clean delay, then loss, reordering, duplication and all at once.
var oracleConditions = []string{
	"delay=10ms",
	"delay=10ms,loss=3%",
	"delay=10ms,reorder=10%",
	"delay=10ms,duplicate=5%",
	"delay=10ms,jitter=3ms,loss=2%,reorder=5%,duplicate=2%",
}

// oracleRow is one label of the table: which segments it is judged on,
// what the wire says and what the kernel's account says of each.
type oracleRow struct {
	name  string
	scope func(f *oracleFrame) bool
	wire  func(f *oracleFrame) bool
	kern  func(f *oracleFrame) bool
	// known says why the two disagree on f where that is understood
	// (by Wireshark's design, or the path's doing); "" where not.
	known func(f *oracleFrame, wire bool) string
}

// oracleFrame is one TCP segment of a run with what its ends' kernels
// did with it.
type oracleFrame struct {
	run    string // "scenario, condition, seed"
	pkt    *capture.Packet
	events []report.KernelEvent
	sender report.Side
	// late: it carries bytes below the highest already seen in its
	// direction; gap: it starts past them.
	late, gap bool
	// gapResent: a later segment of its direction, sent again by its
	// sender's kernel, fills (part of) the gap before it.
	gapResent bool
	// duplicated: an earlier segment of its direction carried the same
	// bytes.
	duplicated bool
}

func (f *oracleFrame) data() bool { return f.pkt.Segment.Len > 0 }

// resent reports whether its sender's kernel sent it again; with causes,
// for one of them.
func (f *oracleFrame) resent(causes ...report.RetransCause) bool {
	for _, e := range f.events {
		if (e.Kind == report.KernelRetransmit || e.Kind == report.KernelRetransmitSYNACK) && e.Side == f.sender {
			if len(causes) == 0 {
				return true
			}
			for _, c := range causes {
				if e.Cause == c {
					return true
				}
			}
		}
	}
	return false
}

// droppedAs reports whether its receiver's kernel dropped it for reason.
func (f *oracleFrame) droppedAs(reason string) bool {
	for _, e := range f.events {
		if e.Kind == report.KernelDrop && e.Side != f.sender && e.Reason == reason {
			return true
		}
	}
	return false
}

// bare: a segment with no data and no SYN, FIN or RST.
func (f *oracleFrame) bare() bool {
	return !f.data() && f.pkt.Segment.Flags&(capture.SYN|capture.FIN|capture.RST) == 0
}

func (f *oracleFrame) has(l capture.Label) bool { return f.pkt.Annotation.Labels.Has(l) }

// oracleRows are the labels the oracle judges, each against the kernel's
// fact that says the same thing.
var oracleRows = []oracleRow{
	{
		name:  "retransmission", // any of the three retransmission labels
		scope: func(f *oracleFrame) bool { return f.data() || f.pkt.Segment.Flags&(capture.SYN|capture.FIN) != 0 },
		wire:  func(f *oracleFrame) bool { return f.pkt.Annotation.Labels&retransmitted != 0 },
		kern:  func(f *oracleFrame) bool { return f.resent() },
		known: func(f *oracleFrame, wire bool) string {
			switch {
			case !wire && f.has(capture.OutOfOrder):
				return "a resend that fills a hole within 3 ms of the hole's last segment: Wireshark labels it out-of-order (its rule)"
			case wire && f.duplicated:
				return "sent once by its kernel: the earlier segment with these bytes was the path's copy, or the original the path held back"
			}
			return ""
		},
	},
	{
		name:  "fast-retransmission",
		scope: (*oracleFrame).data,
		wire:  func(f *oracleFrame) bool { return f.has(capture.FastRetransmission) },
		kern:  func(f *oracleFrame) bool { return f.resent(report.CauseFastRetransmit) },
		known: func(f *oracleFrame, wire bool) string {
			switch {
			case !wire && f.has(capture.OutOfOrder):
				return "a fast retransmit within 3 ms: Wireshark labels it out-of-order"
			case !wire && f.has(capture.Retransmission):
				return "a fast retransmit after fewer than two duplicate ACKs, or more than 20 ms after them: Wireshark labels it a plain retransmission (RACK needs neither)"
			case wire && f.resent():
				return "sent again by another timer or rule than duplicate ACKs (a tail loss probe, an RTO) that Wireshark cannot see"
			}
			return ""
		},
	},
	{
		name:  "spurious-retransmission",
		scope: (*oracleFrame).data,
		wire:  func(f *oracleFrame) bool { return f.has(capture.SpuriousRetransmission) },
		kern:  func(f *oracleFrame) bool { return f.droppedAs("TCP_OLD_DATA") },
		known: func(f *oracleFrame, wire bool) string {
			if wire {
				return "Wireshark calls a retransmission spurious when an ACK of its bytes was captured before it, though the receiver may not have had them when it was sent"
			}
			return "the receiver already had these bytes, but no ACK of them was captured before the resend"
		},
	},
	{
		name:  "out-of-order",
		scope: func(f *oracleFrame) bool { return f.data() && f.late },
		wire:  func(f *oracleFrame) bool { return f.has(capture.OutOfOrder) },
		kern:  func(f *oracleFrame) bool { return !f.resent() },
		known: func(f *oracleFrame, wire bool) string {
			if wire {
				return "a resend that fills a hole within 3 ms: Wireshark labels it out-of-order (its rule)"
			}
			if f.duplicated {
				return "the path's copy of a segment: Wireshark labels it a retransmission"
			}
			return ""
		},
	},
	{
		name:  "lost-segment",
		scope: func(f *oracleFrame) bool { return f.data() || f.pkt.Segment.Flags.Has(capture.FIN) },
		wire:  func(f *oracleFrame) bool { return f.has(capture.LostSegment) },
		kern:  func(f *oracleFrame) bool { return f.gap && f.gapResent },
		known: func(f *oracleFrame, wire bool) string {
			if wire && !f.gapResent {
				return "the bytes before it came later, held back by the path: reordered, not lost"
			}
			return ""
		},
	},
	{
		name:  "zero-window-probe",
		scope: func(f *oracleFrame) bool { return f.bare() && !f.has(capture.KeepAlive) },
		wire:  func(f *oracleFrame) bool { return f.has(capture.ZeroWindowProbe) },
		kern:  func(f *oracleFrame) bool { return f.droppedAs("TCP_OLD_SEQUENCE") },
		known: oracleProbe,
	},
	{
		name:  "keep-alive",
		scope: func(f *oracleFrame) bool { return f.bare() && !f.has(capture.ZeroWindowProbe) },
		wire:  func(f *oracleFrame) bool { return f.has(capture.KeepAlive) },
		kern:  func(f *oracleFrame) bool { return f.droppedAs("TCP_OLD_SEQUENCE") },
		known: oracleProbe,
	},
}

// oracleProbe explains a disagreement over a probe: the receiver drops
// a probe one byte below its window as an old sequence number and
// answers it, but an ACK that is old for another reason (one the path
// reordered or duplicated) is dropped the same way.
func oracleProbe(f *oracleFrame, wire bool) string {
	if !wire {
		return "an ACK the path reordered or copied, below what its receiver had seen: dropped as an old sequence like a probe"
	}
	return ""
}

// oracleCell counts the segments of one cell of a row's table, and keeps
// the first few for the report.
type oracleCell struct {
	n      int
	frames []string
}

// oracleMaxFrames is how many segments of a disagreement the report
// lists.
const oracleMaxFrames = 6

// oracleTable is the tally of every row: [wire][kernel] for each.
type oracleTable struct {
	cells   [][2][2]oracleCell
	runs    int
	skipped []string
}

func newOracleTable() *oracleTable {
	return &oracleTable{cells: make([][2][2]oracleCell, len(oracleRows))}
}

// add tallies the TCP segments of one run, whose kernel events are
// events, into t.
func (t *oracleTable) add(run string, pkts []capture.Packet, events []report.KernelEvent) {
	t.runs++
	frames := oracleFrames(run, pkts, events)
	for r, row := range oracleRows {
		for i := range frames {
			f := &frames[i]
			if !row.scope(f) {
				continue
			}
			w, k := row.wire(f), row.kern(f)
			c := &t.cells[r][b2i(w)][b2i(k)]
			c.n++
			if w != k && len(c.frames) < oracleMaxFrames {
				line := fmt.Sprintf("%s frame %d: %s", f.run, f.pkt.Segment.Frame, strings.TrimSpace(capture.Comment(f.pkt)))
				if why := row.known(f, w); why != "" {
					line += " -- " + why
				}
				c.frames = append(c.frames, line)
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// oracleFrames pairs each TCP segment of pkts with the kernel events tied
// to it, and works out what the rows need of its place in its direction.
func oracleFrames(run string, pkts []capture.Packet, events []report.KernelEvent) []oracleFrame {
	byFrame := map[int][]report.KernelEvent{}
	for _, e := range events {
		if e.Frame != 0 {
			byFrame[e.Frame] = append(byFrame[e.Frame], e)
		}
	}
	type dir struct {
		stream int
		dir    capture.Dir
	}
	type span struct{ from, to uint32 }
	high := map[dir]uint32{}
	seen := map[dir]map[span]bool{}
	last := map[dir]int{}   // the index of out of each direction's last data segment
	gaps := map[dir][]int{} // frames (indexes of out) with a gap before them, waiting for a resend
	gapFrom := map[int]uint32{}
	var out []oracleFrame
	for i := range pkts {
		p := &pkts[i]
		if !p.TCP {
			continue
		}
		a := &p.Annotation
		f := oracleFrame{run: run, pkt: p, events: byFrame[p.Segment.Frame], sender: report.SideClient}
		if a.Dir == capture.ServerToClient {
			f.sender = report.SideServer
		}
		d := dir{a.Stream, a.Dir}
		end := a.RelSeq + uint32(p.Segment.Len)
		if p.Segment.Flags&(capture.SYN|capture.FIN) != 0 {
			end++
		}
		sp := span{a.RelSeq, end}
		if seen[d] == nil {
			seen[d] = map[span]bool{}
		}
		if end > a.RelSeq {
			// Only bytes sent before can be part of a resend.
			if l, ok := last[d]; ok && !f.resent() && a.RelSeq < high[d] {
				f.events = append(f.events, gsoResend(&out[l], &f)...)
			}
			last[d] = len(out)
			f.duplicated = seen[d][sp]
			seen[d][sp] = true
			h, ok := high[d]
			switch {
			case ok && a.RelSeq < h:
				f.late = true
			case ok && a.RelSeq > h:
				f.gap = true
				gapFrom[len(out)] = h
				gaps[d] = append(gaps[d], len(out))
			}
			if f.resent() {
				for _, g := range gaps[d] {
					if a.RelSeq >= gapFrom[g] && a.RelSeq < out[g].pkt.Annotation.RelSeq {
						out[g].gapResent = true
					}
				}
			}
			if !ok || end > h {
				high[d] = end
			}
		}
		out = append(out, f)
	}
	return out
}

// gsoResendGap is how soon after the segment before it a segment is sent
// as part of the same resend.
const gsoResendGap = time.Millisecond

// gsoResend returns the retransmissions of prev that f is part of: the
// kernel sends a buffer of several segments' worth again at once, and
// tells of it once, with its whole range, tied to its first segment
// (lab/kernelwire.go's resent); result.json keeps no range, so a segment
// of bytes sent before that starts where prev ends, within gsoResendGap
// of it, is taken for the rest of prev's resend.
func gsoResend(prev, f *oracleFrame) []report.KernelEvent {
	p, s := &prev.pkt.Annotation, &f.pkt.Segment
	if p.Dir != f.pkt.Annotation.Dir || p.RelSeq+uint32(prev.pkt.Segment.Len) != f.pkt.Annotation.RelSeq ||
		s.Time.Sub(prev.pkt.Segment.Time) > gsoResendGap {
		return nil
	}
	var out []report.KernelEvent
	for _, e := range prev.events {
		if (e.Kind == report.KernelRetransmit || e.Kind == report.KernelRetransmitSYNACK) && e.Side == f.sender {
			out = append(out, e)
		}
	}
	return out
}

// write prints the table: per row, the four counts, then the segments of
// each disagreement, with why where it is known.
func (t *oracleTable) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "label\tsegments\tboth\tneither\twire only\tkernel only\tagree\t\n")
	for r, row := range oracleRows {
		c := &t.cells[r]
		total := c[0][0].n + c[0][1].n + c[1][0].n + c[1][1].n
		agree := "-"
		if total > 0 {
			agree = fmt.Sprintf("%.2f%%", 100*float64(c[0][0].n+c[1][1].n)/float64(total))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", row.name, total, c[1][1].n, c[0][0].n, c[1][0].n, c[0][1].n, agree)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for r, row := range oracleRows {
		for _, k := range [2][2]int{{1, 0}, {0, 1}} {
			c := &t.cells[r][k[0]][k[1]]
			if c.n == 0 {
				continue
			}
			who := "the wire says " + row.name + ", the kernel does not"
			if k[0] == 0 {
				who = "the kernel says " + row.name + ", the wire does not"
			}
			fmt.Fprintf(w, "\n%s: %s (%d), the first %d:\n", row.name, who, c.n, len(c.frames))
			for _, f := range c.frames {
				fmt.Fprintf(w, "  %s\n", f)
			}
		}
	}
	if len(t.skipped) > 0 {
		fmt.Fprintf(w, "\nnot counted (%d): %s\n", len(t.skipped), strings.Join(t.skipped, "; "))
	}
	return nil
}

// readOracleRun reads the capture and result.json of one scenario's run
// in dir, whatever its verdict.
func readOracleRun(dir string) ([]capture.Packet, *report.Result, error) {
	d, err := safefile.OpenDir(dir, false)
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	r, err := report.ReadResult(d)
	if err != nil {
		return nil, nil, err
	}
	f, err := capture.Open(filepath.Join(dir, report.CaptureFile))
	if err != nil {
		return nil, r, err
	}
	defer f.Close()
	var pkts []capture.Packet
	if _, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		pkts = append(pkts, p.Keep())
		return nil
	}); err != nil {
		return nil, r, fmt.Errorf("%s: %w", filepath.Join(dir, report.CaptureFile), err)
	}
	return pkts, r, nil
}

// oracleCommand implements "oracle".
func oracleCommand(prog string, args []string, stdout, stderr io.Writer, all []*Scenario) error {
	fs := flag.NewFlagSet("oracle", flag.ContinueOnError)
	out := fs.String("out", filepath.Join("out", "oracle"), "write each run's artifacts under `DIR`/CONDITION-SEED/SCENARIO")
	seeds := fs.Int("seeds", 3, "run each condition with seeds 1 to `N`")
	conds := fs.String("conditions", strings.Join(oracleConditions, ";"), "the path `CONDITIONS` to run across, separated by ';' (as run -path takes them)")
	parallel := fs.Int("parallel", 2, "run at most `N` scenarios at once")
	limit := fs.Duration("timeout", 30*time.Minute, "stop starting runs after `D`, and report what ran")
	help := cli.Help{Usage: prog + " oracle [flags] [NAME...]",
		About: "Run scenarios (every one with data, by default) across seeded path conditions, as root, and print per label a " +
			"confusion table of the wire's analysis (tcplab's labels, which are tshark's) against the kernel's own events, " +
			"with the segments where they disagree.",
		Examples: []string{prog + " oracle", prog + " oracle -seeds 1 -conditions 'delay=10ms,loss=5%' loss rto"}}
	if err := cli.Parse(fs, args, help, stdout); err != nil {
		return err
	}
	if *seeds < 1 || *seeds > 1000 {
		return fmt.Errorf("%w: -seeds %d: give 1 to 1000", ErrUsage, *seeds)
	}
	var conditions []string
	for _, c := range strings.Split(*conds, ";") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if _, err := path.Parse(c); err != nil {
			return fmt.Errorf("%w: -conditions %q: %w", ErrUsage, c, err)
		}
		conditions = append(conditions, c)
	}
	if len(conditions) == 0 {
		return fmt.Errorf("%w: -conditions names none; give them as run -path takes them, separated by ';'", ErrUsage)
	}
	list, err := pick(all, fs.Args())
	if err != nil {
		return err
	}
	if len(fs.Args()) == 0 {
		list = withData(list)
	}
	if os.Geteuid() != 0 {
		return errors.New("the oracle compares with the kernel's own events, which need root: run it as root (sudo make oracle)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	t := newOracleTable()
	start := time.Now()
	for ci, cond := range conditions {
		for seed := 1; seed <= *seeds; seed++ {
			if ctx.Err() != nil {
				t.skipped = append(t.skipped, fmt.Sprintf("%s seed %d: out of time", cond, seed))
				continue
			}
			dir := filepath.Join(*out, fmt.Sprintf("c%d-s%d", ci+1, seed))
			fmt.Fprintf(stderr, "oracle: %s, seed %d (%d scenarios)\n", cond, seed, len(list))
			results, err := Run(ctx, list, Config{Out: dir, Parallel: *parallel, Options: Options{Path: cond, Seed: uint64(seed)}})
			if err != nil {
				return err
			}
			for _, r := range results {
				name := fmt.Sprintf("%s, %s, seed %d", r.Scenario, cond, seed)
				switch {
				case r.Interrupted:
					t.skipped = append(t.skipped, name+": interrupted")
					continue
				case r.KernelSource != report.KernelTraced:
					t.skipped = append(t.skipped, name+": not traced")
					continue
				case r.KernelLost > 0:
					t.skipped = append(t.skipped, name+": lost kernel events")
					continue
				}
				pkts, res, err := readOracleRun(filepath.Join(dir, r.Scenario))
				if err != nil {
					t.skipped = append(t.skipped, fmt.Sprintf("%s: %v", name, err))
					continue
				}
				t.add(name, pkts, res.KernelEvents)
			}
		}
	}
	fmt.Fprintf(stdout, "oracle: %d runs (%d conditions x %d seeds x %d scenarios) in %s; artifacts in %s\n\n",
		t.runs, len(conditions), *seeds, len(list), time.Since(start).Round(time.Second), *out)
	return t.write(stdout)
}

// withData returns the scenarios to judge, leaving out those at full
// speed (HighRate), whose kernel events a run does not keep whole. (A
// scenario without data adds nothing to most rows.)
func withData(list []*Scenario) []*Scenario {
	var out []*Scenario
	for _, sc := range list {
		if sc.HighRate {
			continue
		}
		out = append(out, sc)
	}
	return out
}
