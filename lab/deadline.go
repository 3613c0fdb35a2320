package lab

import (
	"context"
	"sync"
	"time"
)

// conversationClock is the time a run gives its conversation, which the
// kernel's own slow work moves later: reconfiguring a device (a veth's
// GRO change tears down its NAPI context and waits for RCU grace periods)
// took 12.6 s on a loaded machine, and a soak round once ran out of its
// 15 s after setting the offloads and before a SYN left. That time is the
// kernel's, not the conversation's.
type conversationClock struct {
	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Time
	expired  bool
}

// withConversationTimeout returns a context that ends when parent does,
// or timeout from now, moved later by each extend.
func withConversationTimeout(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc, *conversationClock) {
	ctx, cancel := context.WithCancelCause(parent)
	c := &conversationClock{deadline: time.Now().Add(timeout)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timer = time.AfterFunc(timeout, func() {
		c.mu.Lock()
		if c.expired = !time.Now().Before(c.deadline); !c.expired {
			c.timer.Reset(time.Until(c.deadline))
		}
		expired := c.expired
		c.mu.Unlock()
		if expired {
			cancel(context.DeadlineExceeded)
		}
	})
	return ctx, func() { c.timer.Stop(); cancel(context.Canceled) }, c
}

// extend moves the deadline d later, unless it has passed already.
func (c *conversationClock) extend(d time.Duration) {
	if c == nil || d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.expired {
		c.deadline = c.deadline.Add(d)
	}
}
