package ktrace

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
)

// TestEventLayout: the offsets decode reads at are those of struct event
// as clang laid it out (bpf2go's ktraceEvent mirrors it).
func TestEventLayout(t *testing.T) {
	typ := reflect.TypeFor[ktraceEvent]()
	if typ.Size() != eventSize {
		t.Errorf("struct event is %d bytes, decode reads %d", typ.Size(), eventSize)
	}
	for name, off := range map[string]uintptr{
		"BootNs": offBootNs, "Saddr": offSaddr, "Daddr": offDaddr, "Sport": offSport,
		"Dport": offDport, "Family": offFamily, "Kind": offKind, "Flags": offFlags,
		"OldState": offOldState, "NewState": offNewState, "CaState": offCaState,
		"Pending": offPending, "TcpFlags": offTcpFlags, "Payload": offPayload, "Seq": offSeq,
		"EndSeq": offEndSeq, "Reason": offReason, "Netns": offNetns, "Cookie": offCookie,
		"Skb": offSkb, "Qlen": offQlen, "Probe": offProbe, "Name": offName,
	} {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Errorf("struct event has no field %s", name)
			continue
		}
		if f.Offset != off {
			t.Errorf("struct event's %s is at %d, decode reads it at %d", name, f.Offset, off)
		}
	}
}

// record is a struct event for decode, built field by field.
type record struct {
	boot                 time.Duration
	src, dst             netip.AddrPort
	kind, flags          uint8
	old, new, ca, timer  uint8
	tcpFlags             capture.Flags
	payload              uint16
	seq, end, reason, ns uint32
	cookie               uint64
}

func (r record) bytes() []byte {
	b := make([]byte, eventSize)
	ne := binary.NativeEndian
	ne.PutUint64(b[offBootNs:], uint64(r.boot))
	family := uint16(afInet)
	if r.src.Addr().Is6() {
		family = afInet6
	}
	s, d := r.src.Addr().As16(), r.dst.Addr().As16()
	if family == afInet {
		s4, d4 := r.src.Addr().As4(), r.dst.Addr().As4()
		copy(s[:], s4[:])
		copy(d[:], d4[:])
	}
	copy(b[offSaddr:], s[:])
	copy(b[offDaddr:], d[:])
	ne.PutUint16(b[offSport:], r.src.Port())
	ne.PutUint16(b[offDport:], r.dst.Port())
	ne.PutUint16(b[offFamily:], family)
	b[offKind], b[offFlags] = r.kind, r.flags
	b[offOldState], b[offNewState], b[offCaState], b[offPending] = r.old, r.new, r.ca, r.timer
	ne.PutUint16(b[offTcpFlags:], uint16(r.tcpFlags))
	ne.PutUint16(b[offPayload:], r.payload)
	ne.PutUint32(b[offSeq:], r.seq)
	ne.PutUint32(b[offEndSeq:], r.end)
	ne.PutUint32(b[offReason:], r.reason)
	ne.PutUint32(b[offNetns:], r.ns)
	ne.PutUint64(b[offCookie:], r.cookie)
	return b
}

func TestDecode(t *testing.T) {
	n := &names{
		drop:  map[uint32]string{12: "NETFILTER_DROP", 2: "NO_SOCKET"},
		reset: map[uint32]string{1: "NO_SOCKET"},
	}
	offset := 1000 * time.Hour
	a := netip.MustParseAddrPort("10.0.0.1:40000")
	b := netip.MustParseAddrPort("10.0.0.2:80")
	a6 := netip.MustParseAddrPort("[fd00::1]:40000")
	b6 := netip.MustParseAddrPort("[fd00::2]:80")
	at := time.Unix(0, 0).Add(offset + time.Second)
	for _, c := range []struct {
		name string
		rec  record
		want Event
	}{
		{"state change", record{boot: time.Second, src: a, dst: b, kind: 1, old: 2, new: 1, ns: 7, cookie: 99},
			Event{Time: at, Kind: StateChange, NetNS: 7, Cookie: 99, Src: a, Dst: b, OldState: capture.SynSent, NewState: capture.Established}},
		{"state change IPv6, new syn recv", record{boot: time.Second, src: a6, dst: b6, kind: 1, old: 10, new: 12},
			Event{Time: at, Kind: StateChange, Src: a6, Dst: b6, OldState: capture.Listen, NewState: capture.SynReceived}},
		{"unknown kernel state", record{boot: time.Second, src: a, dst: b, kind: 1, old: 13, new: 0},
			Event{Time: at, Kind: StateChange, Src: a, Dst: b, OldState: capture.Unknown, NewState: capture.Unknown}},
		{"retransmit in Loss: RTO", record{boot: time.Second, src: a, dst: b, kind: 2, flags: evHaveSeq | evHaveSock, new: 1, ca: 4, timer: 1, tcpFlags: capture.PSH | capture.ACK, seq: 100, end: 110},
			Event{Time: at, Kind: Retransmit, Src: a, Dst: b, NewState: capture.Established, Cong: CongLoss, Pending: TimerRetrans, HaveSeq: true, Seq: 100, End: 110, Flags: capture.PSH | capture.ACK, Cause: CauseRTO}},
		{"retransmit attempted, not sent (EBUSY)", record{boot: time.Second, src: a, dst: b, kind: 2, flags: evHaveSeq | evHaveSock, new: 1, ca: 4, timer: 1, seq: 100, end: 110, reason: uint32(0xffffffff - 16 + 1)},
			Event{Time: at, Kind: Retransmit, Src: a, Dst: b, NewState: capture.Established, Cong: CongLoss, Pending: TimerRetrans, HaveSeq: true, Seq: 100, End: 110, Cause: CauseRTO, Err: syscall.EBUSY}},
		{"retransmit in Recovery: fast", record{boot: time.Second, src: a, dst: b, kind: 2, flags: evHaveSeq | evHaveSock, new: 1, ca: 3, timer: 5, seq: 100, end: 110},
			Event{Time: at, Kind: Retransmit, Src: a, Dst: b, NewState: capture.Established, Cong: CongRecovery, Pending: TimerLossProb, HaveSeq: true, Seq: 100, End: 110, Cause: CauseFastRetransmit}},
		{"retransmit in Open with loss probe: TLP", record{boot: time.Second, src: a, dst: b, kind: 2, flags: evHaveSeq | evHaveSock, new: 1, ca: 0, timer: 5, seq: 100, end: 110},
			Event{Time: at, Kind: Retransmit, Src: a, Dst: b, NewState: capture.Established, Cong: CongOpen, Pending: TimerLossProb, HaveSeq: true, Seq: 100, End: 110, Cause: CauseTailLossProbe}},
		{"retransmit with probe0", record{boot: time.Second, src: a, dst: b, kind: 2, flags: evHaveSeq | evHaveSock, new: 1, ca: 1, timer: 3, seq: 100, end: 101},
			Event{Time: at, Kind: Retransmit, Src: a, Dst: b, NewState: capture.Established, Cong: CongDisorder, Pending: TimerProbe0, HaveSeq: true, Seq: 100, End: 101, Cause: CauseZeroWindowProbe}},
		{"retransmit, cause unknown", record{boot: time.Second, src: a, dst: b, kind: 2, flags: evHaveSeq | evHaveSock, new: 1, ca: 2, timer: 0, seq: 100, end: 101},
			Event{Time: at, Kind: Retransmit, Src: a, Dst: b, NewState: capture.Established, Cong: CongCWR, HaveSeq: true, Seq: 100, End: 101, Cause: CauseUnknown}},
		{"synack", record{boot: time.Second, src: b, dst: a, kind: 3, flags: evHaveSeq, tcpFlags: capture.SYN | capture.ACK, seq: 5, end: 6},
			Event{Time: at, Kind: RetransmitSYNACK, Src: b, Dst: a, HaveSeq: true, Seq: 5, End: 6, Flags: capture.SYN | capture.ACK, Cause: CauseSYNACK}},
		{"congestion", record{boot: time.Second, src: a, dst: b, kind: 4, flags: evHaveSock, ca: 0, new: 3},
			Event{Time: at, Kind: CongestionChange, Src: a, Dst: b, Cong: CongOpen, NewCong: CongRecovery}},
		{"reset to a SYN", record{boot: time.Second, src: b, dst: a, kind: 5, flags: evHaveSeq, tcpFlags: capture.SYN, seq: 1000, reason: 1},
			Event{Time: at, Kind: ResetSent, Src: b, Dst: a, HaveSeq: true, Flags: capture.RST | capture.ACK, Ack: 1001, Reason: "NO_SOCKET"}},
		{"reset to data without ACK", record{boot: time.Second, src: b, dst: a, kind: 5, flags: evHaveSeq, tcpFlags: capture.FIN | capture.PSH, seq: 1000, payload: 10, reason: 1},
			Event{Time: at, Kind: ResetSent, Src: b, Dst: a, HaveSeq: true, Flags: capture.RST | capture.ACK, Ack: 1011, Len: 10, Reason: "NO_SOCKET"}},
		{"reset to an ACK", record{boot: time.Second, src: b, dst: a, kind: 5, flags: evHaveSeq, tcpFlags: capture.ACK, seq: 1000, end: 555, reason: 1},
			Event{Time: at, Kind: ResetSent, Src: b, Dst: a, HaveSeq: true, Flags: capture.RST, Seq: 555, Reason: "NO_SOCKET"}},
		{"active reset, reason not in BTF", record{boot: time.Second, src: b, dst: a, kind: 5, old: 1, reason: 40},
			Event{Time: at, Kind: ResetSent, Src: b, Dst: a, OldState: capture.Established, Reason: "40"}},
		{"reset from a kernel without reasons", record{boot: time.Second, src: b, dst: a, kind: 5, old: 1, reason: noReason},
			Event{Time: at, Kind: ResetSent, Src: b, Dst: a, OldState: capture.Established}},
		{"reset received", record{boot: time.Second, src: a, dst: b, kind: 6, old: 2},
			Event{Time: at, Kind: ResetReceived, Src: a, Dst: b, OldState: capture.SynSent}},
		{"drop", record{boot: time.Second, src: a, dst: b, kind: 7, flags: evHaveSeq, tcpFlags: capture.ACK | capture.PSH, seq: 100, end: 200, payload: 10, reason: 12},
			Event{Time: at, Kind: Drop, Src: a, Dst: b, HaveSeq: true, Flags: capture.ACK | capture.PSH, Seq: 100, Ack: 200, Len: 10, Reason: "NETFILTER_DROP"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got Event
			if err := decode(c.rec.bytes(), offset, n, &got); err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(c.want.Time) {
				t.Errorf("time %v, want %v", got.Time, c.want.Time)
			}
			got.Time = c.want.Time
			if got != c.want {
				t.Errorf("decode:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
	var e Event
	if err := decode(make([]byte, eventSize-1), 0, n, &e); err == nil {
		t.Error("decode of a short record: no error")
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{StateChange.String(), "state"},
		{Drop.String(), "drop"},
		{Kind(0).String(), "Kind(0)"},
		{Kind(99).String(), "Kind(99)"},
		{CongLoss.String(), "Loss"},
		{CongState(9).String(), "CongState(9)"},
		{TimerLossProb.String(), "LOSS_PROBE"},
		{Timer(4).String(), "Timer(4)"},
		{CauseRTO.String(), "RTO"},
		{RetransCause(99).String(), "RetransCause(99)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestOpenConfig: a Config that names no namespace, too many, or an
// impossible inode is refused before anything loads.
func TestOpenConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"none", Config{}},
		{"too many", Config{NetNS: make([]uint64, MaxNetNS+1)}},
		{"zero inode", Config{NetNS: []uint64{0}}},
		{"inode past 32 bits", Config{NetNS: []uint64{1 << 32}}},
	} {
		tr, err := Open(c.cfg)
		if err == nil {
			tr.Close()
			t.Errorf("%s: Open succeeded", c.name)
		} else if errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v wraps ErrUnsupported", c.name, err)
		}
	}
}

// TestTracepointArgs: the loader reads from the kernel's BTF how many
// arguments a tracepoint passes, which picks the program of
// tcp_send_reset that fits.
func TestTracepointArgs(t *testing.T) {
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		testenv.SkipOrFail(t, "needs the kernel's BTF: "+err.Error(), "")
	}
	for tp, want := range map[string]int{
		"inet_sock_set_state": 3, // sk, oldstate, newstate
		"tcp_receive_reset":   1,
		"tcp_send_reset":      3, // sk, skb, reason (Linux 6.10 on)
		"kfree_skb":           4, // skb, location, reason, rx_sk (Linux 6.11 on)
	} {
		got, ok := tracepointArgs(kernel, tp)
		if !ok || got != want {
			t.Errorf("tracepointArgs(%s) = %d, %v; want %d", tp, got, ok, want)
		}
	}
	if _, ok := tracepointArgs(kernel, "no_such_tracepoint"); ok {
		t.Error("tracepointArgs of a tracepoint that does not exist: ok")
	}
}
