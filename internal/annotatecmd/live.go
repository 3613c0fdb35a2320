package annotatecmd

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/capture/live"
)

// liveFlushEvery is how long a live capture's lines may wait for a batch
// to fill before they are shown.
const liveFlushEvery = 100 * time.Millisecond

// liveSource is a live capture for annotate -i: a capture file that ends
// when stop is closed, and hands the lines so far to the writing stage
// whenever it waits for traffic, so that they are shown as they come.
type liveSource struct {
	c         *live.Capture
	iface     string
	pl        *pipeline // set before the walk starts
	lastFlush time.Time

	mu       sync.Mutex
	stats    live.Stats
	statsErr error
	stopped  bool
}

// openLive starts capturing on iface with the kernel filter expr, and
// stops when stop is closed or done is.
func openLive(iface, expr string, stop, done <-chan struct{}) (*liveSource, error) {
	c, err := live.Open(live.Config{Interface: iface, Filter: expr})
	if err != nil {
		return nil, fmt.Errorf("-i %s: %w", iface, err)
	}
	l := &liveSource{c: c, iface: iface}
	go func() {
		select {
		case <-stop:
		case <-done:
		}
		l.stop()
	}()
	return l, nil
}

// stop reads the kernel's counts, then closes the capture: the walk then
// reads to its end.
func (l *liveSource) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.stopped = true
	l.stats, l.statsErr = l.c.Stats()
	l.c.Close()
}

// ReadPacketData returns the next frame; waiting for one, it first hands
// over the lines emitted so far.
func (l *liveSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if l.pl != nil && time.Since(l.lastFlush) >= liveFlushEvery {
		l.pl.flush()
		l.lastFlush = time.Now()
	}
	data, ci, err := l.c.ReadPacketData()
	if errors.Is(err, capture.ErrTimeout) && l.pl != nil {
		l.pl.flush()
		l.lastFlush = time.Now()
	}
	return data, ci, err
}

// LinkType returns the interface's link type.
func (l *liveSource) LinkType() layers.LinkType { return l.c.LinkType() }

// Close stops the capture.
func (l *liveSource) Close() error {
	l.stop()
	return nil
}

// Interfaces returns the one capture point, the interface.
func (l *liveSource) Interfaces() []capture.Point {
	return []capture.Point{{Name: l.iface, Link: l.c.LinkType()}}
}

// report says, as tcpdump does at its end, how many packets the kernel
// passed to the filter and how many it dropped.
func (l *liveSource) report(w io.Writer, frames int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.statsErr != nil {
		fmt.Fprintf(w, "%d packets captured on %s; the kernel's counts are unknown: %v\n", frames, l.iface, l.statsErr)
		return
	}
	fmt.Fprintf(w, "%d packets captured on %s, %d received by filter, %d dropped by kernel\n", frames, l.iface, l.stats.Received, l.stats.Dropped)
}
