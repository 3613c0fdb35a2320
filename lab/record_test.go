package lab

import (
	"testing"
	"time"
)

// TestHighRateTimeout holds the two bounds on a HighRate capture's
// block timeout: long enough that the unread ring outlasts a transfer
// slowed by a busy machine (20 ms retired 256 blocks in 5 s and dropped
// frames), short enough that the last block is handed over before the
// lab calls the wire quiet.
func TestHighRateTimeout(t *testing.T) {
	if highRateTimeout < 100*time.Millisecond {
		t.Errorf("highRateTimeout = %v: a 64 MiB ring of half-empty blocks fills within %v of a slow transfer", highRateTimeout, 256*highRateTimeout)
	}
	if 2*highRateTimeout > quiet {
		t.Errorf("highRateTimeout = %v, quiet = %v: the last block may come after the wire was called quiet", highRateTimeout, quiet)
	}
}
