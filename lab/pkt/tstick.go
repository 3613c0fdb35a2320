package pkt

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/lab/scripted"
)

// tsClock maps TS values between the script's clock and the kernel's,
// as packetdrill does. Each kernel's packet whose line writes a TS val
// ties that value to the kernel's; the first of a connection ties the
// two clocks. Under --tcp_ts_tick_usecs (tick) each later packet's TS
// val, taken to the script's clock from there, may differ from its
// line's by as many ticks as the timing tolerance holds; without it TS
// values are not compared. A TS ecr the script sends is the kernel's
// value tied to it, or, under --tcp_ts_ecr_scaled (scaled), the value
// as far from the kernel's first as the script's is from its first.
type tsClock struct {
	tick   time.Duration
	tol    time.Duration
	scaled bool
	// first are each connection's first tied values: the line's TS val
	// and the kernel's; vals all of them, the line's to the kernel's.
	first map[*scripted.Conn][2]uint32
	vals  map[*scripted.Conn]map[uint32]uint32
}

// check ties got's TS val to the outbound line pk's on conn and returns
// what is wrong with it, or "".
func (c *tsClock) check(conn *scripted.Conn, pk *Packet, got scripted.Segment) string {
	if !got.Options.HasTimestamps {
		return ""
	}
	script, _, ok := lineTS(pk)
	if !ok {
		return ""
	}
	if c.first == nil {
		c.first = map[*scripted.Conn][2]uint32{}
		c.vals = map[*scripted.Conn]map[uint32]uint32{}
	}
	if c.vals[conn] == nil {
		c.vals[conn] = map[uint32]uint32{}
	}
	c.vals[conn][script] = got.Options.TSVal
	first, seen := c.first[conn]
	if !seen {
		c.first[conn] = [2]uint32{script, got.Options.TSVal}
		return ""
	}
	if c.tick <= 0 {
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

// ecr is the TS ecr to send on conn for the script's ecr: the kernel's
// TS val tied to it, or under --tcp_ts_ecr_scaled the kernel's first
// moved as far as ecr is from the script's first. false leaves the
// choice to the peer, which echoes the kernel's last TS val (where
// packetdrill fails the script: "unable to infer live TS ecr").
func (c *tsClock) ecr(conn *scripted.Conn, ecr uint32) (uint32, bool) {
	if v, ok := c.vals[conn][ecr]; ok {
		return v, true
	}
	if first, ok := c.first[conn]; ok && c.scaled {
		return ecr - first[0] + first[1], true
	}
	return 0, false
}

// lineTS is the TS val and ecr a packet line writes, if it writes the
// option.
func lineTS(pk *Packet) (val, ecr uint32, ok bool) {
	for _, o := range pk.Options {
		if o.Kind == OptTS && len(o.Values) > 1 {
			return o.Values[0], o.Values[1], true
		}
	}
	return 0, 0, false
}
