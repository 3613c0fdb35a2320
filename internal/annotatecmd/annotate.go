// Package annotatecmd is the annotate command of tcplab, and of every
// program made with lab.Main: it parses the command line, walks each
// capture file with capture.Walk in a pipeline of two stages, prints a
// line (or JSON object) per TCP segment and a summary per connection, and
// writes what the flags ask for (a commented pcapng, a ladder, a
// walkthrough, a time-sequence graph) with package report.
package annotatecmd

import (
	"bufio"
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
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/capture/live"
	"github.com/tcplab/tcplab/internal/cli"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/report"
)

// maxLadderConns bounds the connections -ladder and -walkthrough tell: each gets a section
// of its own, and a diagram of hundreds reads as nothing.
const maxLadderConns = 20

// flags are annotate's command-line flags, parsed.
type flags struct {
	asJSON, summary         bool
	out, ladder, walk, tseq string
	stream, port, iface     int
	language                expect.Lang
	// open opens a capture file; nil: capture.Open. Tests give it
	// captures made on the fly.
	open func(path string) (captureFile, error)
	// liveIface is -i's interface: annotate live traffic until stop is
	// closed (Ctrl-C), then say the kernel's counts on stderr (nil:
	// os.Stderr).
	liveIface string
	stop      <-chan struct{}
	stderr    io.Writer
	ready     func() // called once the live capture is open (tests)
}

// captureFile is a capture file open for reading.
type captureFile interface {
	capture.Source
	Close() error
	Interfaces() []capture.Point
}

// openCapture opens the capture file in, as f says.
func (f *flags) openCapture(in string) (captureFile, error) {
	if f.open != nil {
		return f.open(in)
	}
	return capture.Open(in)
}

// Run implements "PROG annotate": one line (or JSON object) per TCP
// segment of each capture file, then a summary per connection; -o also
// writes a commented pcapng copy of the input, -ladder a diagram. Bad
// input is an error wrapping cli.ErrUsage (a usage mistake) or not (a file
// that cannot be read); -h returns flag.ErrHelp after printing the help.
func Run(prog string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("annotate", flag.ContinueOnError)
	var f flags
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object per TCP segment")
	fs.StringVar(&f.out, "o", "", "write a pcapng copy of the selected frames, with a comment on every TCP packet, to `FILE`")
	fs.IntVar(&f.stream, "stream", -1, "only stream `N` (Wireshark's tcp.stream); -1: every stream")
	fs.IntVar(&f.port, "port", 0, "only connections with `PORT` at either end; 0: every connection")
	filter := fs.String("filter", "", "only frames that the BPF filter `EXPR` passes, as tcpdump takes it (it may also follow the files)")
	fs.BoolVar(&f.summary, "summary", false, "print only the verdict of each connection: Zeek's conn_state and history, tshark's completeness,\nsegments and bytes each way, retransmitted bytes, first RTT, how it ended, final states, label counts\n(with -json, one JSON object per connection)")
	fs.StringVar(&f.ladder, "ladder", "", "also draw the selected connections as a ladder diagram (SVG) in `FILE`, as "+prog+" run does")
	fs.StringVar(&f.walk, "walkthrough", "", "also tell the selected connections as a numbered walkthrough (Markdown) in `FILE`, as "+prog+" run does")
	fs.StringVar(&f.tseq, "tseq", "", "also draw the selected connection's time-sequence graph (SVG) in `FILE`: sequence numbers over time, ACKs, window, SACK, retransmissions, as "+prog+" run does")
	langName := fs.String("lang", "en", "language of -walkthrough, -ladder and -tseq: en or zh")
	fs.StringVar(&f.liveIface, "i", "", "annotate live traffic on interface `IFACE` as it arrives, until Ctrl-C (needs the capture privilege:\nroot or CAP_NET_RAW); the arguments are the capture filter, and the kernel's drops are said at the end")
	fs.IntVar(&f.iface, "interface", -1, "analyse only the frames of pcapng interface `N` (0, 1, ...): a file of several capture points (tcplab's points.pcapng) holds each segment once per point; -1: every frame")
	cmd := prog + " annotate"
	help := cli.Help{
		Usage: cmd + " [flags] FILE... [FILTER EXPRESSION]",
		About: "Print every TCP segment of pcap or pcapng files (any tool's, also gzip, zstd or lz4 compressed; Ethernet, FDDI, PPP,\n" +
			"Cisco HDLC, BSD loopback, raw IP, Linux cooked SLL/SLL2, NFLOG, IP over InfiniBand, 802.11 with radiotap or PPI,\n" +
			"ARCNET; through VLAN, MPLS, GRE, VXLAN, Geneve, GTP-U, CAPWAP, IPsec AH, IPComp and more)\n" +
			"with its stream, direction, flags, relative seq/ack, length, window,\n" +
			"Wireshark's analysis labels and both ends' TCP states; then a summary per connection.\n" +
			"Every frame is analysed; -stream, -port and a BPF filter choose what is shown and written.\n" +
			"Several files are annotated one after the other, each under a line naming it; the arguments\n" +
			"after the last file that exists are the filter. With -i IFACE it annotates live traffic instead,\n" +
			"the arguments being the capture filter, until Ctrl-C.",
		Examples: []string{
			cmd + " capture/testdata/keepalive.pcap",
			cmd + " my.pcap 'tcp port 443 and host 10.0.0.1'",
			cmd + " -summary a.pcap b.pcap",
			cmd + " -json my.pcap | jq 'select(.labels | length > 0)'",
			cmd + " -summary -json my.pcap | jq 'select(.conn_state != \"SF\")'",
			cmd + " -stream 3 -ladder stream3.svg my.pcap",
			cmd + " -stream 0 -walkthrough stream0.md -lang zh my.pcap",
			cmd + " -stream 1 -tseq stream1.svg my.pcap",
			cmd + " -o commented.pcapng my.pcap",
			cmd + " -interface 1 out/lan/points.pcapng",
			cmd + " -i lo -o live.pcapng 'tcp port 8080'",
		},
	}
	if err := cli.Parse(fs, args, help, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: annotate: %w (see %s -h)", cli.ErrUsage, err, cmd)
	}
	if f.liveIface != "" {
		return annotateLive(&f, *filter, fs.Args(), *langName, stdout)
	}
	if fs.NArg() < 1 {
		return fmt.Errorf("%w: annotate takes capture files: %s (see %s -h)", cli.ErrUsage, help.Usage, cmd)
	}
	files, rest := splitFiles(fs.Args())
	if len(files) == 0 {
		// The first argument is not a file: let the walk say why.
		files, rest = fs.Args()[:1], fs.Args()[1:]
	}
	expr := strings.TrimSpace(*filter + " " + strings.Join(rest, " "))
	if *filter != "" && len(rest) > 0 {
		return fmt.Errorf("%w: annotate: give the filter with -filter or after the files, not both (%q is not a file)", cli.ErrUsage, rest[0])
	}
	if f.port < 0 || f.port > 65535 {
		return fmt.Errorf("%w: -port %d: use 1-65535", cli.ErrUsage, f.port)
	}
	language, err := expect.ParseLang(*langName)
	if err != nil {
		return fmt.Errorf("%w: -lang: %w", cli.ErrUsage, err)
	}
	f.language = language
	if len(files) > 1 {
		for _, one := range []struct{ name, value string }{{"-o", f.out}, {"-ladder", f.ladder}, {"-walkthrough", f.walk}, {"-tseq", f.tseq}} {
			if one.value != "" {
				return fmt.Errorf("%w: %s writes one file from one capture; give one capture file with it", cli.ErrUsage, one.name)
			}
		}
		if f.asJSON {
			return fmt.Errorf("%w: -json reads one capture file, whose objects do not name it; give one file at a time", cli.ErrUsage)
		}
	}
	if len(files) == 1 {
		return annotate(files[0], expr, rest, &f, stdout)
	}
	var failed []string
	for i, in := range files {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "==> %s <==\n", in)
		if err := annotate(in, expr, rest, &f, stdout); err != nil {
			if errors.Is(err, cli.ErrUsage) {
				return err
			}
			fmt.Fprintf(stdout, "%v\n", err)
			failed = append(failed, in)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d files could not be annotated: %s", len(failed), len(files), strings.Join(failed, ", "))
	}
	return nil
}

// splitFiles cuts annotate's arguments into the capture files, the
// leading arguments that name something that exists, and the filter
// expression's words after them.
func splitFiles(args []string) (files, rest []string) {
	n := 0
	for n < len(args) {
		if _, err := os.Stat(args[n]); err != nil {
			break
		}
		n++
	}
	return args[:n], args[n:]
}

// annotate annotates one capture file, in, with the filter expr (whose
// words after the files are rest), and writes what f asks for.
func annotate(in, expr string, rest []string, f *flags, stdout io.Writer) error {
	asJSON, out, stream, port, summary, ladder, walk, tseq, iface, language := &f.asJSON, &f.out, &f.stream, &f.port, &f.summary, &f.ladder, &f.walk, &f.tseq, &f.iface, f.language
	var err error
	var lv *liveSource
	drawing := *ladder != "" || *walk != ""
	keep := drawing || *tseq != "" // the selected segments are kept for the files written at the end
	dataConns := map[int]bool{}    // with -tseq, the selected connections that carry data
	var src captureFile
	if f.liveIface != "" {
		// The kernel filters a live capture.
		done := make(chan struct{})
		defer close(done)
		if lv, err = openLive(f.liveIface, expr, f.stop, done); err != nil {
			return err
		}
		src, expr = lv, ""
		if f.ready != nil {
			f.ready()
		}
	} else if src, err = f.openCapture(in); err != nil {
		return err
	}
	defer src.Close()
	var bpf *live.Filter
	if expr != "" {
		if bpf, err = live.CompileFilter(src.LinkType(), expr); err != nil {
			if len(rest) > 0 {
				return fmt.Errorf("%w: %q is neither a capture file nor a filter: %w", cli.ErrUsage, rest[0], err)
			}
			return fmt.Errorf("%w: %w", cli.ErrUsage, err)
		}
	}
	selecting := *stream >= 0 || *port > 0 || bpf != nil
	selected := func(p *capture.Packet) bool {
		if bpf != nil && !bpf.Matches(p.Info, p.Data) {
			return false
		}
		if *stream >= 0 || *port > 0 {
			s := &p.Segment
			return p.TCP && (*stream < 0 || p.Annotation.Stream == *stream) &&
				(*port == 0 || int(s.Src.Port()) == *port || int(s.Dst.Port()) == *port)
		}
		return true
	}

	var w *capture.Writer
	if *out != "" {
		if same(in, *out) {
			return fmt.Errorf("%w: -o %s would overwrite the input; choose another file", cli.ErrUsage, *out)
		}
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		if w, err = capture.NewWriter(f, src.LinkType()); err != nil {
			return fmt.Errorf("%s: %w", *out, err)
		}
		// Live, every packet reaches the file at once: however the
		// command ends, the file is whole.
		w.FlushEach = lv != nil
		// Whatever happens below, what was written stays a valid file.
		defer w.Flush()
	}

	bw := bufio.NewWriterSize(stdout, 1<<16)
	defer bw.Flush()
	a := capture.NewAnnotator()
	var shown streamSet // streams with a selected segment, when selecting or drawing
	nShown := 0
	// Closed connections are forgotten after capture.Linger, so memory
	// follows the connections open at once; the summaries printed at the
	// end (only those of the selection) are kept formatted, and spilled
	// to a temporary file past a bound (summaries.go).
	var summaries summaryStore
	defer summaries.close()
	keepSummaries := !*asJSON || *summary
	// A line is kept until the end, formatted into the store's arena.
	summaryLine := func(s *capture.ConnSummary) []byte {
		if *asJSON {
			return capture.AppendSummaryJSON(summaries.room(), s)
		}
		return append(capture.AppendSummary(summaries.room(), s), '\n')
	}
	var spillErr error
	var pl *pipeline
	// The summaries of the connections forgotten go with the segments to
	// the writing stage, which formats them.
	a.EvictClosed(func(s *capture.ConnSummary) {
		if keepSummaries && (!selecting || shown.has(s.Stream)) {
			pl.summary(s)
		}
	})
	var drawn []capture.Packet
	// Stages on as many cores: this goroutine formats and writes the
	// lines while another decodes and annotates (and, for a file, a
	// third reads it: prefetch), handing over batches of segments in
	// capture order.
	pl = newPipeline(w != nil)
	if lv != nil {
		lv.pl = pl
	}
	pl.run(func(emit func(*capture.Packet)) (capture.Counts, error) {
		var source capture.Source = src
		if lv == nil {
			// A file's reading, and decoding, is a third stage; the
			// frames of one interface are decoded by the walk, after
			// the others are left out.
			pf := newPrefetch(src, *iface < 0)
			defer pf.close()
			source = pf.source()
		}
		if *iface >= 0 {
			source = capture.OnInterface(source, *iface)
		}
		return capture.Walk(source, a, func(p *capture.Packet) error {
			pl.see(p.Info.Timestamp)
			if selecting && !selected(p) {
				return nil
			}
			// Which connections were shown matters only to a selection's
			// summaries and to -ladder: keep the map off the hot path
			// otherwise.
			if p.TCP && (selecting || keep) {
				if !shown.has(p.Annotation.Stream) {
					shown.add(p.Annotation.Stream)
					nShown++
				}
				if drawing && nShown > maxLadderConns {
					return fmt.Errorf("%w: -ladder and -walkthrough tell at most %d connections; choose fewer with -stream, -port or a filter", cli.ErrUsage, maxLadderConns)
				}
				if *tseq != "" && p.Segment.Len > 0 {
					dataConns[p.Annotation.Stream] = true
					if len(dataConns) > report.TimeSeqConns {
						return fmt.Errorf("%w: -tseq draws at most %d connections with data; choose fewer with -stream, -port or a filter", cli.ErrUsage, report.TimeSeqConns)
					}
				}
				if keep {
					q := *p
					q.Data = nil
					drawn = append(drawn, q)
				}
			}
			// -o takes every selected frame; the lines, the TCP ones.
			if w != nil || (p.TCP && !*summary) {
				emit(p)
			}
			return nil
		})
	})
	format := capture.AppendLine
	if *asJSON {
		format = capture.AppendJSON
	}
	var start time.Time
	var werr error
	buf := make([]byte, 0, 1<<17)
	// With -o, another goroutine writes each batch's frames and comments
	// to the file once its lines are formatted here, and gives the batch
	// back: the commented copy is a stage of its own.
	var toFile chan *batch
	var fileErr error
	fileDone := make(chan struct{})
	if w != nil {
		toFile = make(chan *batch, 3)
		go func() {
			defer close(fileDone)
			for b := range toFile {
				for i := range b.pkts {
					if fileErr == nil {
						fileErr = w.WriteAnnotated(&b.pkts[i])
					}
				}
				pl.done(b)
			}
		}()
	} else {
		close(fileDone)
	}
	for b := range pl.batches {
		if start.IsZero() {
			start = pl.start
		}
		for i := range b.sums {
			if spillErr == nil {
				spillErr = summaries.add(b.sums[i].Stream, summaryLine(&b.sums[i]))
			}
		}
		if !*summary {
			for i := range b.pkts {
				if p := &b.pkts[i]; p.TCP {
					buf = format(buf, p, start)
				}
			}
		}
		if toFile != nil {
			toFile <- b
		} else {
			pl.done(b)
		}
		if (len(buf) >= 1<<16 || lv != nil) && werr == nil {
			_, werr = bw.Write(buf)
			buf = buf[:0]
			if lv != nil && werr == nil {
				werr = bw.Flush()
			}
		}
	}
	if toFile != nil {
		close(toFile)
	}
	<-fileDone
	if werr == nil {
		_, werr = bw.Write(buf)
	}
	counts, err := pl.wait()
	if err == nil {
		err = fileErr
	}
	if err == nil {
		err = werr
	}
	if lv != nil {
		lv.stop()
		stderr := f.stderr
		if stderr == nil {
			stderr = os.Stderr
		}
		lv.report(stderr, counts.Frames)
	}
	if err == nil {
		err = spillErr
	}
	if keepSummaries {
		// The connections still held, after those forgotten.
		a.EachConn(func(c *capture.ConnSummary) {
			if !selecting || shown.has(c.Stream) {
				if serr := summaries.add(c.Stream, summaryLine(c)); serr != nil && err == nil {
					err = serr
				}
			}
		})
	}
	if points := src.Interfaces(); err == nil && *iface >= len(points) {
		err = fmt.Errorf("%w: -interface %d: %s has interfaces 0 to %d (%s)", cli.ErrUsage, *iface, in, len(points)-1, pointNames(points))
	}
	if *asJSON && *summary {
		if serr := summaries.writeTo(bw); serr != nil && err == nil {
			err = serr
		}
	}
	if !*asJSON {
		if !*summary {
			fmt.Fprintln(bw)
		}
		fmt.Fprintf(bw, "%d frames: %d TCP, %d other", counts.Frames, counts.TCP, counts.Skipped)
		if counts.Truncated > 0 {
			fmt.Fprintf(bw, ", %d with the TCP header cut by the snap length", counts.Truncated)
		}
		if points := src.Interfaces(); *iface < 0 && len(points) > 1 {
			fmt.Fprintf(bw, "; frames of %d capture points (%s): a segment seen at two is analysed as sent twice, choose one with -interface N", len(points), pointNames(points))
		}
		if selecting {
			if nShown == 1 {
				fmt.Fprint(bw, "; 1 connection selected")
			} else {
				fmt.Fprintf(bw, "; %d connections selected", nShown)
			}
		}
		fmt.Fprintln(bw)
		if serr := summaries.writeTo(bw); serr != nil && err == nil {
			err = serr
		}
	}
	if err == nil && *ladder != "" {
		title := filepath.Base(in)
		if err := os.WriteFile(*ladder, report.Ladder(title, drawn, nil, language), 0o644); err != nil {
			return fmt.Errorf("-ladder: %w", err)
		}
	}
	if err == nil && *tseq != "" {
		graph, gerr := report.TimeSequence(filepath.Base(in), drawn, language)
		switch {
		case errors.Is(gerr, report.ErrNoData):
			return fmt.Errorf("%w: -tseq: the selected segments carry no data, so there is no graph to draw; choose a connection with data with -stream N", cli.ErrUsage)
		case gerr != nil:
			return fmt.Errorf("-tseq: %w", gerr)
		}
		if err := os.WriteFile(*tseq, graph, 0o644); err != nil {
			return fmt.Errorf("-tseq: %w", err)
		}
	}
	if err == nil && *walk != "" {
		if err := os.WriteFile(*walk, report.CaptureWalkthrough(filepath.Base(in), drawn, language), 0o644); err != nil {
			return fmt.Errorf("-walkthrough: %w", err)
		}
	}
	if err != nil {
		if errors.Is(err, cli.ErrUsage) {
			return err
		}
		var trunc = errors.Is(err, capture.ErrTruncated)
		if trunc {
			return fmt.Errorf("%w (the %d frames before it were annotated)", err, counts.Frames)
		}
		if errors.Is(err, capture.ErrUnsupportedLinkType) {
			// The decoder does not know the file's name; say it.
			return fmt.Errorf("%s: %w", in, err)
		}
		return err
	}
	return nil
}

// pointNames lists capture points as "0 client tun0, 1 server tun0".
func pointNames(points []capture.Point) string {
	names := make([]string, len(points))
	for i, p := range points {
		name := p.Name
		if name == "" {
			name = "unnamed"
		}
		names[i] = fmt.Sprintf("%d %s", i, name)
	}
	return strings.Join(names, ", ")
}

// same reports whether two paths name the same existing file.
func same(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		pa, _ := filepath.Abs(a)
		pb, _ := filepath.Abs(b)
		return pa == pb
	}
	return os.SameFile(sa, sb)
}

// annotateLive runs annotate -i: the arguments are the capture filter,
// and the capture stops on Ctrl-C (SIGINT) or SIGTERM.
func annotateLive(f *flags, filter string, args []string, lang string, stdout io.Writer) error {
	switch {
	case filter != "" && len(args) > 0:
		return fmt.Errorf("%w: annotate -i: give the filter with -filter or after the flags, not both", cli.ErrUsage)
	case f.iface >= 0:
		return fmt.Errorf("%w: -interface chooses among a pcapng file's interfaces; with -i the capture has one", cli.ErrUsage)
	case f.port < 0 || f.port > 65535:
		return fmt.Errorf("%w: -port %d: use 1-65535", cli.ErrUsage, f.port)
	}
	language, err := expect.ParseLang(lang)
	if err != nil {
		return fmt.Errorf("%w: -lang: %w", cli.ErrUsage, err)
	}
	f.language = language
	if f.stop == nil {
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		f.stop = ctx.Done()
	}
	expr := strings.TrimSpace(filter + " " + strings.Join(args, " "))
	return annotate("-i "+f.liveIface, expr, nil, f, stdout)
}
