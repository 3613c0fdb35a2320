package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/cli"
	"github.com/tcplab/tcplab/lab"
)

// annotate implements "tcplab annotate": one line (or JSON object) per TCP
// segment, then a summary per connection; -o also writes a commented pcapng
// copy of the input.
func annotate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("annotate", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object per TCP segment")
	out := fs.String("o", "", "write a pcapng copy with a comment on every TCP packet to `FILE`")
	help := cli.Help{
		Usage: "tcplab annotate [-json] [-o OUT.pcapng] FILE",
		About: "Print every TCP segment of a pcap or pcapng file (any tool's; Ethernet, BSD loopback, raw IP,\n" +
			"Linux cooked SLL/SLL2) with its stream, direction, flags, relative seq/ack, length, window,\n" +
			"Wireshark's analysis labels and both ends' TCP states; then a summary per connection.",
		Examples: []string{
			"tcplab annotate capture/testdata/keepalive.pcap",
			"tcplab annotate -json my.pcap | jq 'select(.labels | length > 0)'",
			"tcplab annotate -o commented.pcapng my.pcap",
		},
	}
	if err := cli.Parse(fs, args, help, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: annotate: %w (see tcplab annotate -h)", lab.ErrUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: annotate takes one capture file: %s (see tcplab annotate -h)", lab.ErrUsage, help.Usage)
	}
	in := fs.Arg(0)
	src, err := capture.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()

	var w *capture.Writer
	if *out != "" {
		if same(in, *out) {
			return fmt.Errorf("%w: -o %s would overwrite the input; choose another file", lab.ErrUsage, *out)
		}
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		if w, err = capture.NewWriter(f, src.LinkType()); err != nil {
			return fmt.Errorf("%s: %w", *out, err)
		}
		// Whatever happens below, what was written stays a valid file.
		defer w.Flush()
	}

	bw := bufio.NewWriterSize(stdout, 1<<16)
	defer bw.Flush()
	a := capture.NewAnnotator()
	var start time.Time
	counts, err := capture.Walk(src, a, func(p *capture.Packet) error {
		if start.IsZero() {
			start = p.Info.Timestamp
		}
		if w != nil {
			comment := ""
			if p.TCP {
				comment = capture.Comment(p)
			}
			if err := w.WritePacket(p.Info, p.Data, comment); err != nil {
				return err
			}
		}
		if !p.TCP {
			return nil
		}
		if *asJSON {
			b, err := capture.NewRecord(p, start).MarshalLine()
			if err != nil {
				return err
			}
			_, err = bw.Write(b)
			return err
		}
		_, err := fmt.Fprintln(bw, capture.Line(p, start))
		return err
	})
	if !*asJSON {
		fmt.Fprintf(bw, "\n%d frames: %d TCP, %d other", counts.Frames, counts.TCP, counts.Skipped)
		if counts.Truncated > 0 {
			fmt.Fprintf(bw, ", %d with the TCP header cut by the snap length", counts.Truncated)
		}
		fmt.Fprintln(bw)
		for _, c := range a.Conns() {
			fmt.Fprintln(bw, capture.Summary(&c))
		}
	}
	if err != nil {
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
