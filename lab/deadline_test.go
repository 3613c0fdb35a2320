package lab

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestConversationClock: the conversation's context ends at its timeout,
// later by what extend adds (the kernel's own slow work), and at once
// when its parent ends. Only lower bounds are asserted: a loaded machine
// may end it later, never sooner.
func TestConversationClock(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, tc := range []struct {
		name     string
		extend   time.Duration
		parent   bool // cancel the parent at once
		atLeast  time.Duration
		deadline bool // ended by the clock, not the parent
	}{
		{name: "the timeout", atLeast: timeout, deadline: true},
		{name: "moved by the kernel's time", extend: 300 * time.Millisecond, atLeast: 400 * time.Millisecond, deadline: true},
		{name: "twice", extend: 150 * time.Millisecond, atLeast: 400 * time.Millisecond, deadline: true},
		{name: "the parent ends first", extend: time.Hour, parent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, stop := context.WithCancel(context.Background())
			defer stop()
			start := time.Now()
			ctx, cancel, clock := withConversationTimeout(parent, timeout)
			defer cancel()
			clock.extend(tc.extend)
			if tc.name == "twice" {
				clock.extend(tc.extend)
			}
			if tc.parent {
				stop()
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("not ended after 10 s")
			}
			if took := time.Since(start); took < tc.atLeast {
				t.Errorf("ended after %v, want at least %v", took, tc.atLeast)
			}
			if got := errors.Is(context.Cause(ctx), context.DeadlineExceeded); got != tc.deadline {
				t.Errorf("cause %v: deadline %v, want %v", context.Cause(ctx), got, tc.deadline)
			}
		})
	}
	// Once passed, the deadline stays passed.
	ctx, cancel, clock := withConversationTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	clock.extend(time.Hour)
	if ctx.Err() == nil {
		t.Error("extended after it ended")
	}
}
