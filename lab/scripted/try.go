package scripted

import (
	"errors"
	"fmt"
	"time"
)

// The calls in this file are for a script that keeps its own clock and
// reports its own failures (package pkt, running packetdrill scripts):
// they return errors instead of failing a test, and take the time a
// segment is due rather than a gap since the previous event.

// StepTo makes the next step number n, when n is past the last one, so
// that the steps in reports and the pcapng's comments are the script's
// line numbers.
func (p *Peer) StepTo(n int) {
	if n-1 > p.step {
		p.step = n - 1
	}
}

// TrySend is Send returning its error, and when the kernel took the
// segment in: the time its answer is due from.
func (c *Conn) TrySend(seg TCP) (time.Time, error) {
	step := c.p.nextStep()
	err := c.send(step, seg)
	var m *Mismatch
	if err != nil && !errors.As(err, &m) {
		return time.Time{}, fmt.Errorf("step %d: send %v: %w", step, seg, err)
	}
	return c.sentAt, err
}

// TryExpect is Expect returning its error.
func (c *Conn) TryExpect(want TCP, timeout time.Duration) (Segment, error) {
	return c.expect(c.p.nextStep(), want, time.Now().Add(timeout), nil)
}

// TryExpectDue is Expect of a segment due at at, neither earlier nor
// later than tol; after is the gap the script wrote, for the report.
func (c *Conn) TryExpectDue(want TCP, at time.Time, after, tol time.Duration) (Segment, error) {
	d := &due{at: at, after: after, tol: tol}
	return c.expect(c.p.nextStep(), want, at.Add(tol), d)
}
