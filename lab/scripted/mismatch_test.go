package scripted

import (
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// synack is a segment as the kernel sends it in answer to a SYN with
// every option: relative sequence numbers, the four options.
func synack() Segment {
	o := capture.Options{MSS: 1460, WindowScale: 7, SACKPermitted: true, HasTimestamps: true, TSVal: 555, TSEcr: 1000}
	return Segment{Flags: SYN | ACK, Seq: 0, Ack: 1, Window: 65160, Options: o}
}

// TestDiff: a template matches a segment when every field it names
// agrees; each field it names and the segment lacks is one row, and the
// fields it leaves unset are never checked.
func TestDiff(t *testing.T) {
	data := Segment{Flags: PSH | ACK, Seq: 1, Ack: 1, Window: 502, Payload: []byte("hello"), Options: capture.Options{WindowScale: -1}}
	sacked := data
	sacked.Options.NSACK, sacked.Options.SACK[0] = 1, SACKBlock{Left: 100, Right: 200}
	cookie := synack()
	cookie.Options.FastOpen, cookie.FastOpenCookie = capture.FastOpenCookie, []byte{1, 2, 3, 4, 5, 6, 7, 8}
	request := synack()
	request.Options.FastOpen = capture.FastOpenRequest
	tests := []struct {
		name   string
		want   TCP
		got    Segment
		fields []string // the rows' fields, in order; none for a match
	}{
		{"empty template matches anything", TCP{}, synack(), nil},
		{"flags and numbers", TCP{Flags: SYN | ACK, Seq: Uint32(0), Ack: Uint32(1)}, synack(), nil},
		{"wrong flags", TCP{Flags: ACK}, synack(), []string{"flags"}},
		{"wrong ack", TCP{Ack: Uint32(2)}, synack(), []string{"ack"}},
		{"wrong seq and window", TCP{Seq: Uint32(1), Window: Uint16(1)}, synack(), []string{"seq", "window"}},
		{"options named", TCP{Options: Options{MSS: Uint16(1460), WindowScale: Uint8(7), SACKPermitted: true, TSEcr: Uint32(1000)}}, synack(), nil},
		{"wrong mss and ecr", TCP{Options: Options{MSS: Uint16(1400), TSEcr: Uint32(1)}}, synack(), []string{"mss", "TS ecr"}},
		{"TS val checked when named", TCP{Options: Options{TSVal: Uint32(554)}}, synack(), []string{"TS val"}},
		{"wscale differs", TCP{Options: Options{WindowScale: Uint8(6)}}, synack(), []string{"wscale"}},
		{"present", TCP{Options: Options{Present: OptMSS | OptTimestamps}}, synack(), nil},
		{"absent but there", TCP{Options: Options{Absent: OptWindowScale}}, synack(), []string{"options"}},
		{"present but missing", TCP{Options: Options{Present: OptTimestamps}}, data, []string{"options"}},
		{"absent and absent", TCP{Options: Options{Absent: OptTimestamps | OptWindowScale | OptSACKPermitted}}, data, nil},
		{"option wanted, none there", TCP{Options: Options{MSS: Uint16(1460), SACKPermitted: true, TSEcr: Uint32(0), WindowScale: Uint8(7)}}, data, []string{"mss", "wscale", "sackOK", "TS"}},
		{"payload", TCP{Payload: []byte("hello"), Len: Int(5)}, data, nil},
		{"other payload", TCP{Payload: []byte("hellO")}, data, []string{"payload"}},
		{"empty payload wanted", TCP{Payload: []byte{}}, data, []string{"payload"}},
		{"length", TCP{Len: Int(0)}, data, []string{"len"}},
		{"urgent pointer 0", TCP{Urgent: Uint16(0)}, data, nil},
		{"urgent pointer differs", TCP{Urgent: Uint16(5)}, data, []string{"urg"}},
		{"sack", TCP{Options: Options{SACK: []SACKBlock{{Left: 100, Right: 200}}}}, sacked, nil},
		{"sack differs", TCP{Options: Options{SACK: []SACKBlock{{Left: 100, Right: 300}}}}, sacked, []string{"sack"}},
		{"no sack wanted", TCP{Options: Options{SACK: []SACKBlock{}}}, sacked, []string{"sack"}},
		{"fast open cookie", TCP{Options: Options{FastOpen: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}, cookie, nil},
		{"fast open cookie differs", TCP{Options: Options{FastOpen: []byte{1, 2, 3, 4}}}, cookie, []string{"FO cookie"}},
		{"fast open request, a cookie came", TCP{Options: Options{FastOpen: []byte{}}}, cookie, []string{"FO cookie"}},
		{"fast open request", TCP{Options: Options{FastOpen: []byte{}}}, request, nil},
		{"fast open cookie, a request came", TCP{Options: Options{FastOpen: []byte{1}}}, request, []string{"FO cookie"}},
		{"fast open option, none came", TCP{Options: Options{FastOpen: []byte{}}}, synack(), []string{"FO"}},
		{"fast open cookie not checked when nil", TCP{}, cookie, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := diff(tt.want, tt.got)
			var fields []string
			for _, r := range rows {
				fields = append(fields, r.Field)
			}
			if strings.Join(fields, " ") != strings.Join(tt.fields, " ") {
				t.Errorf("diff(%v) rows %+v; want fields %q", tt.want, rows, tt.fields)
			}
		})
	}
}

// TestMismatchError: the report names the step, shows a got/want table of
// only the rows, and lists every frame seen.
func TestMismatchError(t *testing.T) {
	m := &Mismatch{
		Step: 3, Want: "ACK ack=1", Got: "RST seq=1",
		Rows: []Row{{"flags", "RST", "ACK"}, {"ack", "0", "1"}},
		Seen: []string{"+0.001s other", "+0.002s RST seq=1"},
	}
	want := "step 3: want ACK ack=1; got RST seq=1\n" +
		"  field  got  want\n" +
		"  flags  RST  ACK\n" +
		"  ack    0    1\n" +
		"frames seen while waiting (2):\n\t+0.001s other\n\t+0.002s RST seq=1"
	if got := m.Error(); got != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
	none := (&Mismatch{Step: 1, Want: "SYN"}).Error()
	if none != "step 1: want SYN: nothing came\nframes seen while waiting (0):" {
		t.Errorf("report of nothing: %q", none)
	}
}

// TestTolerance: the larger of the absolute and the relative part, with
// the zero value meaning the defaults.
func TestTolerance(t *testing.T) {
	tests := []struct {
		tol  Tolerance
		gap  time.Duration
		want time.Duration
	}{
		{Tolerance{}, 0, DefaultAbs},
		{Tolerance{}, 100 * time.Millisecond, DefaultAbs},
		{Tolerance{}, 400 * time.Millisecond, 50 * time.Millisecond},
		{Tolerance{}, 2 * time.Second, 250 * time.Millisecond},
		{Tolerance{Abs: 4 * time.Millisecond}, 16 * time.Millisecond, 4 * time.Millisecond},
		{Tolerance{Abs: 4 * time.Millisecond, Rel: 0.5}, 100 * time.Millisecond, 50 * time.Millisecond},
		{Tolerance{}, -400 * time.Millisecond, 50 * time.Millisecond},
		// A 250 Hz kernel's delayed ACK may come 6 ms later than a
		// 1000 Hz one's; a 1000 Hz tick adds nothing.
		{Tolerance{Abs: 4 * time.Millisecond, Rel: 1e-9, Tick: 4 * time.Millisecond}, 40 * time.Millisecond, 10 * time.Millisecond},
		{Tolerance{Abs: 4 * time.Millisecond, Rel: 1e-9, Tick: time.Millisecond}, 40 * time.Millisecond, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := tt.tol.Of(tt.gap); got != tt.want {
			t.Errorf("%+v.Of(%v) = %v, want %v", tt.tol, tt.gap, got, tt.want)
		}
	}
}

// TestTimerLate: the wheel's levels for a 250 Hz and a 1000 Hz kernel,
// at their edges, and what the slower tick adds.
func TestTimerLate(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		d, tick, late, extra time.Duration
	}{
		{0, 4 * ms, 8 * ms, 6 * ms},
		{40 * ms, 4 * ms, 8 * ms, 6 * ms},         // a delayed ACK: 10 ticks, level 0
		{248 * ms, 4 * ms, 8 * ms, 0},             // 62 ticks: still level 0 (248 at 1000 Hz: level 1)
		{252 * ms, 4 * ms, 36 * ms, 27 * ms},      // 63 ticks: level 1, 8 ticks
		{300 * ms, 4 * ms, 36 * ms, 27 * ms},      // a zero-window probe
		{1000 * ms, 4 * ms, 36 * ms, 0},           // 1000 ticks at 1000 Hz is level 2 (64 ms)
		{2016 * ms, 4 * ms, 260 * ms, 195 * ms},   // 504 ticks: level 2
		{40 * ms, ms, 2 * ms, 0},                  // 1000 Hz against itself
		{40 * ms, 10 * ms, 20 * ms, 18 * ms},      // 100 Hz
		{40 * ms, 0, 0, 0},                        // no tick
		{1 << 62, 4 * ms, 4*ms + (1<<24)*4*ms, 0}, // the wheel's last level bounds the loop
	}
	for _, tt := range tests {
		if got := TimerLate(tt.d, tt.tick); got != tt.late {
			t.Errorf("TimerLate(%v, %v) = %v, want %v", tt.d, tt.tick, got, tt.late)
		}
		if tt.tick == 0 {
			continue
		}
		if got := TickLate(tt.d, tt.tick); got != tt.extra && tt.d < 1<<62 {
			t.Errorf("TickLate(%v, %v) = %v, want %v", tt.d, tt.tick, got, tt.extra)
		}
	}
}

// TestSnapTick: a measured tick goes to the nearest rate Linux builds.
func TestSnapTick(t *testing.T) {
	ms := time.Millisecond
	tests := []struct{ got, want time.Duration }{
		{4 * ms, 4 * ms}, {5 * ms, 4 * ms}, {3400 * time.Microsecond, time.Second / 300},
		{900 * time.Microsecond, ms}, {1500 * time.Microsecond, ms}, {9 * ms, 10 * ms}, {40 * ms, 10 * ms},
	}
	for _, tt := range tests {
		if got := snapTick(tt.got); got != tt.want {
			t.Errorf("snapTick(%v) = %v, want %v", tt.got, got, tt.want)
		}
	}
}

// TestMeasureTick: the kernel's tick is one Linux can be built with.
// (Two measurements may differ on a loaded machine, where a thread can
// wake late more often than not: MeasureTick's median is not asserted
// stable.)
func TestMeasureTick(t *testing.T) {
	a, err := MeasureTick(8)
	if err != nil {
		t.Fatal(err)
	}
	switch a {
	case 10 * time.Millisecond, 4 * time.Millisecond, time.Second / 300, time.Millisecond:
	default:
		t.Errorf("tick %v is no CONFIG_HZ's", a)
	}
	t.Logf("tick %v (%d Hz)", a, time.Second/a)
}
