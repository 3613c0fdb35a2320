package pkt_test

import (
	"strings"
	"testing"

	"github.com/tcplab/tcplab/lab/pkt"
	"golang.org/x/sys/unix"
)

// TestRunBlock: a %{ }% block sees the values it is given, the
// tcpi_options bits and the state names as globals; an assert that
// holds passes and one that does not is an error with python's words.
func TestRunBlock(t *testing.T) {
	vals := pkt.BlockValues{"tcpi_snd_cwnd": 10, "tcpi_state": 1, "tcpi_options": 7}
	tests := []struct {
		code string
		want string // in the error; "" for none
	}{
		{"assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd", ""},
		{"\n    assert tcpi_state == TCP_ESTABLISHED\n    assert tcpi_options & TCPI_OPT_WSCALE\n", ""},
		{"assert tcpi_snd_cwnd == 11, tcpi_snd_cwnd", "AssertionError: 10"},
		{"assert tcpi_unknown == 0", "NameError"},
	}
	for _, tt := range tests {
		err := pkt.RunBlock(tt.code, vals)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("RunBlock(%q) = %v, want nil", tt.code, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("RunBlock(%q) = %v, want an error with %q", tt.code, err, tt.want)
		}
	}
}

// TestReadBlockValues: a TCP socket's values are read by packetdrill's
// names; a descriptor that is no TCP socket is an error.
func TestReadBlockValues(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	vals, err := pkt.ReadBlockValues(fd)
	if err != nil {
		t.Fatal(err)
	}
	if vals["tcpi_state"] != 7 || vals["tcpi_rto"] == 0 {
		t.Errorf("a new socket's tcpi_state %d, tcpi_rto %d; want 7 (TCP_CLOSE) and the initial RTO", vals["tcpi_state"], vals["tcpi_rto"])
	}
	if _, ok := vals["SK_MEMINFO_SNDBUF"]; !ok {
		t.Errorf("no SK_MEMINFO_SNDBUF among %d values", len(vals))
	}
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(udp)
	if _, err := pkt.ReadBlockValues(udp); err == nil {
		t.Error("ReadBlockValues of a UDP socket: no error")
	}
}
