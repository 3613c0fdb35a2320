package pkt

import (
	"encoding/binary"
	"fmt"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"time"
	"unsafe"

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
// tcpi_unacked, ...), times in microseconds as the kernel gives them,
// and the bit fields of its seventh and eighth bytes (decodeTCPInfo).
func tcpInfo(fd int) (map[string]uint64, error) {
	var ti unix.TCPInfo
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&ti)), unsafe.Sizeof(ti))
	if _, err := getsockoptBytes(fd, unix.SOL_TCP, unix.TCP_INFO, buf); err != nil {
		return nil, fmt.Errorf("getsockopt TCP_INFO: %w", err)
	}
	return decodeTCPInfo(&ti, buf), nil
}

// decodeTCPInfo names the fields of ti, whose bytes are raw, as tcpInfo
// says. The kernel's struct has bit fields after tcpi_options that
// unix.TCPInfo leaves as padding: tcpi_snd_wscale (the low four bits of
// the seventh byte, as GCC lays bit fields out on little-endian
// machines), tcpi_rcv_wscale (its high four), and in the eighth
// tcpi_delivery_rate_app_limited (one bit) and
// tcpi_fastopen_client_fail (two), packetdrill's blocks read the first
// three.
func decodeTCPInfo(ti *unix.TCPInfo, raw []byte) map[string]uint64 {
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
	vars["tcpi_snd_wscale"] = uint64(raw[6] & 0x0f)
	vars["tcpi_rcv_wscale"] = uint64(raw[6] >> 4)
	vars["tcpi_delivery_rate_app_limited"] = uint64(raw[7] & 1)
	vars["tcpi_fastopen_client_fail"] = uint64(raw[7] >> 1 & 3)
	return vars
}

// memInfoNames are SO_MEMINFO's values in the kernel's order
// (linux/sock_diag.h), by the names packetdrill gives its blocks.
var memInfoNames = []string{
	"SK_MEMINFO_RMEM_ALLOC", "SK_MEMINFO_RCVBUF", "SK_MEMINFO_WMEM_ALLOC",
	"SK_MEMINFO_SNDBUF", "SK_MEMINFO_FWD_ALLOC", "SK_MEMINFO_WMEM_QUEUED",
	"SK_MEMINFO_OPTMEM", "SK_MEMINFO_BACKLOG", "SK_MEMINFO_DROPS",
}

// memInfo adds the socket's SO_MEMINFO values to vars, as packetdrill
// reads them beside TCP_INFO for every block.
func memInfo(fd int, vars map[string]uint64) error {
	buf := make([]byte, 4*len(memInfoNames))
	n, err := getsockoptBytes(fd, unix.SOL_SOCKET, unix.SO_MEMINFO, buf)
	if err != nil {
		return fmt.Errorf("getsockopt SO_MEMINFO: %w", err)
	}
	for i, name := range memInfoNames {
		if 4*i+4 <= n {
			vars[name] = uint64(binary.NativeEndian.Uint32(buf[4*i:]))
		}
	}
	return nil
}

// ccInfo adds the congestion control's TCP_CC_INFO to vars, read as
// each of the three structs packetdrill knows whose size the kernel's
// answer covers: BBR's (bbr_bw_lo, bbr_bw_hi, bbr_bw made of the two,
// bbr_min_rtt, bbr_pacing_gain, bbr_cwnd_gain), DCTCP's (dctcp_*) and
// Vegas's (tcpv_enabled, tcpv_rttcnt, and tcp_rtt and tcp_minrtt, the
// names packetdrill gives those two). An algorithm with no such struct
// (cubic, reno) answers with none, and adds nothing.
func ccInfo(fd int, vars map[string]uint64) {
	buf := make([]byte, 20)
	n, err := getsockoptBytes(fd, unix.SOL_TCP, unix.TCP_CC_INFO, buf)
	if err == nil {
		decodeCCInfo(buf[:n], vars)
	}
}

// decodeCCInfo adds what a TCP_CC_INFO answer of len(b) bytes holds to
// vars (see ccInfo).
func decodeCCInfo(b []byte, vars map[string]uint64) {
	u32 := func(off int) uint64 { return uint64(binary.NativeEndian.Uint32(b[off:])) }
	if len(b) >= 20 {
		vars["bbr_bw_lo"], vars["bbr_bw_hi"] = u32(0), u32(4)
		vars["bbr_bw"] = u32(4)<<32 | u32(0)
		vars["bbr_min_rtt"], vars["bbr_pacing_gain"], vars["bbr_cwnd_gain"] = u32(8), u32(12), u32(16)
	}
	if len(b) >= 16 {
		vars["dctcp_enabled"] = uint64(binary.NativeEndian.Uint16(b[0:]))
		vars["dctcp_ce_state"] = uint64(binary.NativeEndian.Uint16(b[2:]))
		vars["dctcp_alpha"], vars["dctcp_ab_ecn"], vars["dctcp_ab_tot"] = u32(4), u32(8), u32(12)
		vars["tcpv_enabled"], vars["tcpv_rttcnt"] = u32(0), u32(4)
		vars["tcp_rtt"], vars["tcp_minrtt"] = u32(8), u32(12)
	}
}

// getsockoptBytes reads an option of fd into buf and says how many
// bytes the kernel wrote.
func getsockoptBytes(fd, level, name int, buf []byte) (int, error) {
	n := uint32(len(buf))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// tcpInfoAt reads the socket's tcpi_* values as tcpInfo does, and
// when: no earlier than the time it returns, no later than a fifth of a
// millisecond after. A read that took longer (the thread waited for a
// CPU around it) is made again, up to five times: a block's since-fields
// are taken back to their due time from this time (asOf), which a late
// clock reading would take back too far. The values a block also gets,
// SO_MEMINFO's and TCP_CC_INFO's (memInfo, ccInfo), are read after,
// outside that time: a getsockopt of TCP_INFO (tcpInfo alone) needs
// neither.
func tcpInfoAt(fd int) (map[string]uint64, time.Time, error) {
	for try := 1; ; try++ {
		before := time.Now()
		vars, err := tcpInfo(fd)
		if err != nil || time.Since(before) <= readBracket || try == 5 {
			if err == nil {
				if err = memInfo(fd, vars); err == nil {
					ccInfo(fd, vars)
				}
			}
			return vars, before, err
		}
	}
}

// readBracket is how long a TCP_INFO read may take for its time to be
// taken as known.
const readBracket = 200 * time.Microsecond

// tcpiOpts names the bits of tcpi_options (linux/tcp.h) as
// packetdrill's blocks know them; the values of tcpi_state and
// tcpi_ca_state come from the symbols of system calls (blockStates).
const tcpiOpts = `TCPI_OPT_TIMESTAMPS = 1
TCPI_OPT_SACK = 2
TCPI_OPT_WSCALE = 4
TCPI_OPT_ECN = 8
TCPI_OPT_ECN_SEEN = 16
TCPI_OPT_SYN_DATA = 32
TCPI_OPT_USEC_TS = 64
TCPI_OPT_TFO_CHILD = 128
`

// blockStates are the names of tcpi_state's and tcpi_ca_state's values
// that packetdrill defines for its blocks.
var blockStates = []string{
	"TCP_ESTABLISHED", "TCP_SYN_SENT", "TCP_SYN_RECV", "TCP_FIN_WAIT1", "TCP_FIN_WAIT2",
	"TCP_TIME_WAIT", "TCP_CLOSE", "TCP_CLOSE_WAIT", "TCP_LAST_ACK", "TCP_LISTEN", "TCP_CLOSING",
	"TCP_CA_Open", "TCP_CA_Disorder", "TCP_CA_CWR", "TCP_CA_Recovery", "TCP_CA_Loss",
}

// BlockValues are the values a %{ }% block reads, by the names
// packetdrill gives them: TCP_INFO's fields (tcpi_rto, tcpi_snd_cwnd,
// ...), SO_MEMINFO's and TCP_CC_INFO's.
type BlockValues map[string]uint64

// ReadBlockValues reads from socket fd the values a %{ }% block at this
// time reads (a Go test that -go wrote calls it where the script's block
// is).
func ReadBlockValues(fd int) (BlockValues, error) {
	vars, _, err := tcpInfoAt(fd)
	return vars, err
}

// RunBlock runs code, a %{ }% block, with python3 as packetdrill runs
// it at the script's end: vals, the tcpi_options bits and the state
// names set first as globals. A non-zero exit (a failed assert) is an
// error that carries what python printed.
func RunBlock(code string, vals BlockValues) error {
	python, err := exec.LookPath("python3")
	if err != nil {
		return fmt.Errorf("%%{ }%% blocks need python3: %w", err)
	}
	return (&snippet{py: &Python{Code: code}, vars: vals}).run(python)
}

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
	for _, n := range blockStates {
		fmt.Fprintf(&b, "%s = %d\n", n, symbols[n])
	}
	for _, n := range names {
		fmt.Fprintf(&b, "%s = %d\n", n, s.vars[n])
	}
	// A blank line after the block, as packetdrill writes one after each:
	// a last line that ends in a backslash continues into it and ends.
	b.WriteString(dedent(s.py.Code) + "\n")
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
