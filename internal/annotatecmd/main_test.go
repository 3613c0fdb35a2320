package annotatecmd

import (
	"testing"

	"github.com/tcplab/tcplab/internal/testenv"
)

// TestMain lets TestAnnotateLive run again in a network namespace of its
// own (testenv.InNamespace).
func TestMain(m *testing.M) { testenv.Main(m) }
