package pkt

import (
	"fmt"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// snippet is a %{ }% block waiting for the script's end, with the
// tcpi_* values of the socket under test at its time.
type snippet struct {
	py   *Python
	vars map[string]uint64
}

// tcpInfo reads TCP_INFO of fd as packetdrill names its fields for
// python: tcpi_ and the kernel's field name (tcpi_rto, tcpi_snd_cwnd,
// tcpi_unacked, ...), times in microseconds as the kernel gives them.
func tcpInfo(fd int) (map[string]uint64, error) {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	if err != nil {
		return nil, fmt.Errorf("getsockopt TCP_INFO: %w", err)
	}
	vars := map[string]uint64{}
	v := reflect.ValueOf(*ti)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Name == "_" {
			continue
		}
		name := "tcpi_" + strings.ToLower(f.Name)
		switch x := v.Field(i); x.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			vars[name] = x.Uint()
		}
	}
	return vars, nil
}

// tcpInfoAt reads the socket's tcpi_* values as tcpInfo does, and
// when: no earlier than the time it returns, no later than a fifth of a
// millisecond after. A read that took longer (the thread waited for a
// CPU around it) is made again, up to five times: a block's since-fields
// are taken back to their due time from this time (asOf), which a late
// clock reading would take back too far.
func tcpInfoAt(fd int) (map[string]uint64, time.Time, error) {
	for try := 1; ; try++ {
		before := time.Now()
		vars, err := tcpInfo(fd)
		if err != nil || time.Since(before) <= readBracket || try == 5 {
			return vars, before, err
		}
	}
}

// readBracket is how long a TCP_INFO read may take for its time to be
// taken as known.
const readBracket = 200 * time.Microsecond

// tcpiOpts names the bits of tcpi_options and the values of
// tcpi_ca_state (linux/tcp.h), as packetdrill's blocks know them.
const tcpiOpts = `TCP_CA_Open = 0
TCP_CA_Disorder = 1
TCP_CA_CWR = 2
TCP_CA_Recovery = 3
TCP_CA_Loss = 4
TCPI_OPT_TIMESTAMPS = 1
TCPI_OPT_SACK = 2
TCPI_OPT_WSCALE = 4
TCPI_OPT_ECN = 8
TCPI_OPT_ECN_SEEN = 16
TCPI_OPT_SYN_DATA = 32
TCPI_OPT_USEC_TS = 64
TCPI_OPT_TFO_CHILD = 128
`

// run runs the block with python3, its tcpi_* values set first as
// globals; a non-zero exit (a failed assert) is the script's failure.
func (s *snippet) run(python string) error {
	names := make([]string, 0, len(s.vars))
	for n := range s.vars {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	// The tcpi_options bits of linux/tcp.h, which scripts test by name
	// as packetdrill's blocks may.
	b.WriteString(tcpiOpts)
	for _, n := range names {
		fmt.Fprintf(&b, "%s = %d\n", n, s.vars[n])
	}
	b.WriteString(dedent(s.py.Code))
	cmd := exec.Command(python, "-")
	cmd.Stdin = strings.NewReader(b.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("python block failed (%v): %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// dedent removes the indentation the block's lines share, which python
// would refuse.
func dedent(code string) string {
	lines := strings.Split(strings.Trim(code, "\n"), "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent && indent > 0 {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// sinceFields are the tcpi_* values that count milliseconds up to the
// moment TCP_INFO is read.
var sinceFields = []string{"tcpi_last_data_sent", "tcpi_last_ack_sent", "tcpi_last_data_recv", "tcpi_last_ack_recv"}

// asOf turns the values of vars read late after a block's time into
// their values at that time: the milliseconds since an event, which grew
// while this process waited for a CPU, less the lateness (never below
// zero). The script's clock is the lab's, which waits for the lab (see
// runner.wait): a block read late asks what it would have read on time.
func asOf(vars map[string]uint64, late time.Duration) {
	ms := uint64(max(late, 0) / time.Millisecond)
	for _, f := range sinceFields {
		if v, ok := vars[f]; ok {
			vars[f] = v - min(v, ms)
		}
	}
}
