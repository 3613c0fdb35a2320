package main

import (
	"os"
	"testing"

	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/scenarios"
)

// TestMain lets the test binary be tcplab itself: lab.Run re-executes it in
// each scenario's namespace, and the tests run it as a command with
// TCPLAB_TEST_MAIN=1 to send it signals.
func TestMain(m *testing.M) {
	if lab.InChild() {
		os.Exit(lab.RunChild(scenarios.Every()))
	}
	if os.Getenv("TCPLAB_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
