package teardown

import (
	"os"
	"testing"

	"github.com/tcplab/tcplab/lab/labtest"
)

// TestTeardown runs the echo server on a private loopback and asserts its
// teardown order on the wire. TEARDOWN_ABORT=1 makes the server close with
// a RST, to see what a failure looks like.
func TestTeardown(t *testing.T) {
	srv := &Server{Abort: os.Getenv("TEARDOWN_ABORT") == "1"}
	labtest.Run(t, Scenario(srv))
}
