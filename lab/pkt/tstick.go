package pkt

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/lab/scripted"
)

// tsClock checks the kernel's TS val under --tcp_ts_tick_usecs, as
// packetdrill does: the first kernel's packet of a connection that
// carries a TS val and whose line writes one ties the two clocks; each
// later one's TS val, taken to the script's clock from there, may differ
// from its line's by as many ticks as the timing tolerance holds.
// Without the option (tick 0) TS values are not compared, as in
// packetdrill.
type tsClock struct {
	tick time.Duration
	tol  time.Duration
	// first are each connection's tied values: the line's TS val and
	// the kernel's.
	first map[*scripted.Conn][2]uint32
}

// check returns what is wrong with got's TS val for the outbound line
// pk on conn, or "".
func (c *tsClock) check(conn *scripted.Conn, pk *Packet, got scripted.Segment) string {
	if c.tick <= 0 || !got.Options.HasTimestamps {
		return ""
	}
	script, ok := lineTSVal(pk)
	if !ok {
		return ""
	}
	if c.first == nil {
		c.first = map[*scripted.Conn][2]uint32{}
	}
	first, seen := c.first[conn]
	if !seen {
		c.first[conn] = [2]uint32{script, got.Options.TSVal}
		return ""
	}
	mapped := first[0] + (got.Options.TSVal - first[1])
	off := int64(int32(mapped - script))
	if off < 0 {
		off = -off
	}
	if time.Duration(off)*c.tick > c.tol {
		return fmt.Sprintf("TS val %d on the script's clock (the kernel's %d), want %d: %d ticks of %v off, more than the tolerance %v",
			mapped, got.Options.TSVal, script, off, c.tick, c.tol)
	}
	return ""
}

// lineTSVal is the TS val a packet line writes.
func lineTSVal(pk *Packet) (uint32, bool) {
	for _, o := range pk.Options {
		if o.Kind == OptTS && len(o.Values) > 0 {
			return o.Values[0], true
		}
	}
	return 0, false
}
