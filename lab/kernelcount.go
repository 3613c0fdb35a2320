package lab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/ktrace"
	"github.com/tcplab/tcplab/lab/netns"
	"github.com/tcplab/tcplab/lab/sockstat"
)

// retransSegs returns how many TCP segments the kernel has sent again in
// the network namespace ns (the calling thread's when nil): its SNMP
// counter Tcp RetransSegs, which the kernel adds to where it sends a
// segment again and fires the tracepoint the account's resends come from.
func retransSegs(ns *os.File) (uint64, error) {
	var b []byte
	err := netns.Enter(ns, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read the TCP counters: %w", err)
	}
	return snmpValue(b, "Tcp", "RetransSegs")
}

// snmpValue returns the value of field in /proc/net/snmp's lines of
// group: a line of names, then one of values.
func snmpValue(b []byte, group, field string) (uint64, error) {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), group+":")
		if !ok {
			continue
		}
		if names == nil {
			names = strings.Fields(rest)
			continue
		}
		values := strings.Fields(rest)
		for i, n := range names {
			if n == field && i < len(values) {
				return strconv.ParseUint(values[i], 10, 64)
			}
		}
		break
	}
	return 0, errors.New("no " + group + " " + field + " in the SNMP counters")
}

// silentCountedResends returns how many of the segments the kernel
// counted as sent again (counted, RetransSegs over the run) its resend
// events do not tell of. The kernel counts a resend's segments
// (tcp_skb_pcount), an event tells of its whole range once: a range is
// taken as the most segments it can be, its length over the receiver's
// MSS less the largest TCP options (40 bytes), so that a resend of
// several segments never reads as events lost.
func silentCountedResends(counted uint64, events []ktrace.Event, pkts []capture.Packet) uint64 {
	mss := map[[2]string]int{} // by sender and receiver: the receiver's MSS
	for i := range pkts {
		s := &pkts[i].Segment
		if pkts[i].TCP && s.Flags.Has(capture.SYN) && s.Options.MSS > 40 {
			mss[[2]string{s.Dst.String(), s.Src.String()}] = int(s.Options.MSS) - 40
		}
	}
	var told uint64
	for i := range events {
		e := &events[i]
		switch {
		case e.Kind == ktrace.RetransmitSYNACK:
			told++
		case e.Kind == ktrace.Retransmit && e.Err != syscall.EBUSY:
			// The kernel counts a resend before it transmits, so
			// one the device refused (ENOBUFS) is counted too; one
			// whose original was still queued (EBUSY) never was.
			n := uint64(1)
			if m := mss[[2]string{e.Src.String(), e.Dst.String()}]; m > 0 && e.HaveSeq {
				n = max(1, (uint64(e.End-e.Seq)+uint64(m)-1)/uint64(m))
			} else if e.HaveSeq {
				// No MSS seen: as many as bytes, the most there can be.
				n = max(1, uint64(e.End-e.Seq))
			}
			told += n
		}
	}
	if counted > told {
		return counted - told
	}
	return 0
}

// liveSockets returns the cookies of the TCP sockets alive in the
// network namespace ns now (INET_DIAG, as ss lists them), full sockets
// only: a time-wait socket is another socket than the one it replaced,
// and a connection still in its handshake has none yet.
func liveSockets(ns *os.File) (map[uint64]bool, error) {
	s, err := sockstat.New(sockstat.Config{NetNS: ns})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	socks, err := s.Sample(sockstat.Filter{})
	if err != nil {
		return nil, err
	}
	live := map[uint64]bool{}
	for _, so := range socks {
		if so.State != sockstat.TimeWait && so.State != sockstat.NewSynRecv {
			live[so.Cookie] = true
		}
	}
	return live, nil
}

// unfinishedSockets counts the sockets whose last state change in the
// events leaves them open, though the kernel no longer has them (live,
// taken once the run was over and before the tracer stopped): a socket
// closes with a change to CLOSED (one that becomes a time-wait socket
// too), so the changes that closed it are missing from the events, and
// no counter saw them.
func unfinishedSockets(events []ktrace.Event, live map[uint64]bool) int {
	last := map[uint64]capture.State{}
	for i := range events {
		if e := &events[i]; e.Kind == ktrace.StateChange && e.Cookie != 0 {
			last[e.Cookie] = e.NewState
		}
	}
	n := 0
	for cookie, st := range last {
		if st != capture.Closed && !live[cookie] {
			n++
		}
	}
	return n
}
