package pkt

import (
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/scripted"
)

// TestTSClock: under --tcp_ts_tick_usecs a connection's first kernel's
// TS val ties the clocks, and each later one may be off its line's by as
// many ticks as the tolerance holds, across the counter's wrap; each
// connection ties its own; a line or a packet without a TS val, or no
// tick, checks nothing.
func TestTSClock(t *testing.T) {
	line := func(tsval uint32) *Packet {
		return &Packet{Options: []TCPOption{{Kind: OptTS, Values: []uint32{tsval, 0}}}}
	}
	seg := func(tsval uint32) scripted.Segment {
		return scripted.Segment{Options: capture.Options{HasTimestamps: true, TSVal: tsval}}
	}
	a, b := new(scripted.Conn), new(scripted.Conn)
	steps := []struct {
		name string
		conn *scripted.Conn
		line *Packet
		got  scripted.Segment
		want string // in the failure; "" passes
	}{
		{"the first ties the clocks", a, line(100), seg(5000), ""},
		{"1100 ticks on both", a, line(1200), seg(6100), ""},
		{"4 ticks off, the tolerance", a, line(1200), seg(6104), ""},
		{"5 ticks off", a, line(1200), seg(6105), "TS val 1205 on the script's clock (the kernel's 6105), want 1200: 5 ticks"},
		{"5 ticks early", a, line(1200), seg(6095), "want 1200: 5 ticks"},
		{"a line without TS val", a, &Packet{}, seg(9999), ""},
		{"a packet without timestamps", a, line(1200), scripted.Segment{}, ""},
		{"another connection ties its own", b, line(100), seg(0xfffffff0), ""},
		{"across the wrap", b, line(132), seg(0x10), ""},
		{"across the wrap, off", b, line(132), seg(0x20), "16 ticks"},
	}
	c := tsClock{tick: time.Millisecond, tol: 4 * time.Millisecond}
	for _, st := range steps {
		got := c.check(st.conn, st.line, st.got)
		if st.want == "" && got != "" || st.want != "" && !strings.Contains(got, st.want) {
			t.Errorf("%s: %q, want %q", st.name, got, st.want)
		}
	}
	off := tsClock{tol: 4 * time.Millisecond}
	off.check(a, line(100), seg(5000))
	if got := off.check(a, line(100), seg(9000)); got != "" {
		t.Errorf("no tick: %q, want no check", got)
	}
}
