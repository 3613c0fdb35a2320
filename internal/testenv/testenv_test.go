package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		inCI        bool
		reason, fix string
		fail        bool
		msg         string
	}{
		{false, "tshark is not installed", installHint("tshark"), false,
			"skipping test; tshark is not installed; .ci/run installs it (apt-get install tshark)"},
		{true, "tshark is not installed", installHint("tshark"), true,
			"tshark is not installed; .ci/run installs it (apt-get install tshark)"},
		{false, "cannot create a network namespace: operation not permitted", "", false,
			"skipping test; cannot create a network namespace: operation not permitted"},
		{true, "cannot create a network namespace: operation not permitted", "", true,
			"cannot create a network namespace: operation not permitted"},
	} {
		fail, msg := Decide(c.inCI, c.reason, c.fix)
		if fail != c.fail || msg != c.msg {
			t.Errorf("Decide(%v, %q, %q) = %v, %q; want %v, %q", c.inCI, c.reason, c.fix, fail, msg, c.fail, c.msg)
		}
	}
}

func TestInstallHint(t *testing.T) {
	for name, want := range map[string]string{
		"tshark":   ".ci/run installs it (apt-get install tshark)",
		"chromium": ".ci/run installs it (apt-get install chromium)",
		"nft":      ".ci/run installs it (apt-get install nftables)",
	} {
		if got := installHint(name); got != want {
			t.Errorf("installHint(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestTool runs Tool with PATH set to a directory of its own: it finds a
// command under one of its other names, and skips outside CI when the
// command is missing.
func TestTool(t *testing.T) {
	dir := t.TempDir()
	browser := filepath.Join(dir, "chromium-browser")
	if err := os.WriteFile(browser, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	t.Setenv("CI", "")
	if got := Tool(t, "chromium"); got != browser {
		t.Errorf("Tool(chromium) = %q, want %q", got, browser)
	}
	var skipped, returned bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Tool(t, "tcplab-no-such-tool")
		returned = true
	})
	if !skipped || returned {
		t.Errorf("Tool of a missing command outside CI: skipped %v, returned %v; want it skipped", skipped, returned)
	}
}
