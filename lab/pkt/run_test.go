package pkt

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
)

// The live tests run again, each alone, in a private network namespace
// (testenv.InNamespace); Run makes a namespace of its own inside it for
// each script.
func TestMain(m *testing.M) { testenv.Main(m) }

// needTUN skips the test (fails it in CI) when this process may not
// create TUN devices.
func needTUN(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		testenv.SkipOrFail(t, "cannot open /dev/net/tun: "+err.Error(), "run as root, with the tun module")
		return
	}
	f.Close()
}

// testFloor is the tests' timing tolerance: tcplab's default floor (25
// ms). The script is timed from when the kernel took each segment and
// call in, and the process keeps a CPU beside busy loops (see
// netns.RaisePriority), so no wider one is needed.
const testFloor = 0

// wantRE is a fixture's expectation in its first line: "// want: fail
// at line N: text" or "// want: skip at line N: text".
var wantRE = regexp.MustCompile(`^// want: (fail|skip) at line (\d+): (.+)$`)

// TestRunScripts plays every script of testdata (each must pass),
// testdata/fail (each must fail where and as its first line says) and
// testdata/skip (each must be skipped so), and reads back each pass's
// pcapng: every frame commented with its script line.
func TestRunScripts(t *testing.T) {
	if !testenv.InNamespace(t, 3*time.Minute) {
		return
	}
	needTUN(t)
	files, _ := filepath.Glob("testdata/*.pkt")
	more, _ := filepath.Glob("testdata/*/*.pkt")
	for _, f := range append(files, more...) {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(f, "testdata/"), ".pkt"), func(t *testing.T) {
			want, line, text := Passed, 0, ""
			if m := wantRE.FindStringSubmatch(firstLine(t, f)); m != nil {
				want, text = Failed, m[3]
				if m[1] == "skip" {
					want = Skipped
				}
				line, _ = strconv.Atoi(m[2])
			}
			s, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pcap := filepath.Join(t.TempDir(), "capture.pcapng")
			out, err := os.Create(pcap)
			if err != nil {
				t.Fatal(err)
			}
			res := Run(context.Background(), s, Config{Pcap: out, Floor: testFloor})
			out.Close()
			for _, st := range res.Steps {
				t.Logf("line %3d  due %8v  at %8v  %-8s %s", st.Line, st.Scheduled, st.Actual.Round(time.Microsecond), st.Note, st.Event)
			}
			if res.Status != want || res.Line != line || !strings.Contains(res.Reason, text) {
				t.Fatalf("got %v at line %d: %s\nwant %v at line %d: %s", res.Status, res.Line, res.Reason, want, line, text)
			}
			if want == Passed {
				checkComments(t, pcap, s)
			}
		})
	}
}

func firstLine(t *testing.T, name string) string {
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	return sc.Text()
}

// stepRE finds the step, which is the script's line, in a frame's
// comment.
var stepRE = regexp.MustCompile(`^(scripted|expected): step (\d+): `)

// checkComments reads the pcapng back: every frame is a TCP segment (or
// the script's ICMP message) whose comment names the line of a packet
// event that way, but for the sockets' teardown after the last event,
// which no line takes.
func checkComments(t *testing.T, name string, s *Script) {
	t.Helper()
	packets := map[int]Direction{}
	for _, e := range s.Events {
		if pk, ok := e.(*Packet); ok {
			packets[pk.Line] = pk.Dir
		}
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := capture.NewDecoder(r.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	n, teardown, parts := 0, 0, 0
	for {
		data, _, opts, err := r.ReadPacketDataWithOptions()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		var seg capture.Segment
		if !dec.Decode(data, &seg) && !icmpFrame(data) {
			t.Errorf("frame %d is neither a TCP segment nor an ICMP message", n)
		}
		c := strings.Join(opts.Comments, "; ")
		if c == "unexpected: taken by no expectation" {
			teardown++
			continue
		}
		m := stepRE.FindStringSubmatch(c)
		if m == nil || teardown > 0 {
			t.Errorf("frame %d: comment %q names no script line", n, c)
			continue
		}
		line, _ := strconv.Atoi(m[2])
		// The kernel's segments that one line took together (Aggregate)
		// count once.
		if strings.Contains(c, "(part ") {
			parts++
		}
		dir, ok := packets[line]
		if !ok || (dir == Inbound) != (m[1] == "scripted") {
			t.Errorf("frame %d: comment %q: line %d is not a packet that way", n, c, line)
		}
	}
	if n-teardown-parts != len(packets) {
		t.Errorf("%d frames in the pcapng (%d of the teardown, %d parts of a line's), want one for each of the %d packet lines", n, teardown, parts, len(packets))
	}
}

// icmpFrame reports whether IP frame b carries ICMP or ICMPv6.
func icmpFrame(b []byte) bool {
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		return b[9] == 1
	case len(b) >= 40 && b[0]>>4 == 6:
		return b[6] == 58
	}
	return false
}

// TestActedAtMovesTheClockForLateActs: an event that reached the kernel
// later than due moves the script's clock by its lateness, so that the
// kernel's answers are timed from the act; one on time (within a
// millisecond) or early leaves it.
func TestActedAtMovesTheClockForLateActs(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, c := range []struct {
		name    string
		st, at  time.Duration // the event's script time; when it acted, from start
		shifted time.Duration
	}{
		{"on time", 100 * time.Millisecond, 100 * time.Millisecond, 0},
		{"within a millisecond", 100 * time.Millisecond, 100*time.Millisecond + 900*time.Microsecond, 0},
		{"early", 100 * time.Millisecond, 90 * time.Millisecond, 0},
		{"late", 100 * time.Millisecond, 155 * time.Millisecond, 55 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &runner{start: start}
			r.actedAt(c.st, start.Add(c.at))
			if got := r.start.Sub(start); got != c.shifted {
				t.Errorf("clock moved %v, want %v", got, c.shifted)
			}
		})
	}
}

// TestWallAt: a script time is placed on the wall clock as the script
// reached it: with the moves of its clock before it, and with those at
// the same time only up to the first event there (a call right after a
// packet, late, moves the clock after the packet came, and a stamp of
// the packet is still due when it came).
func TestWallAt(t *testing.T) {
	origin := time.Unix(1000, 0)
	ms := time.Millisecond
	// The packet at 30 ms came 2 ms late (a shift), the call after it
	// 10 ms later than that (another, at the same script time); an
	// event at 50 ms came 5 ms late.
	r := &runner{origin: origin,
		shifts:  []shift{{30 * ms, 2 * ms}, {30 * ms, 10 * ms}, {50 * ms, 5 * ms}},
		reached: map[time.Duration]int{30 * ms: 1, 50 * ms: 3},
	}
	for _, c := range []struct{ st, want time.Duration }{
		{10 * ms, 10 * ms},
		{30 * ms, 32 * ms}, // the packet's time, not the call's
		{40 * ms, 52 * ms}, // no event then: every move before it
		{50 * ms, 67 * ms}, // 50 + 2 + 10 + 5
		{60 * ms, 77 * ms},
	} {
		if got := r.wallAt(c.st).Sub(origin); got != c.want {
			t.Errorf("wallAt(%v) = origin+%v, want origin+%v", c.st, got, c.want)
		}
	}
}

// TestRunDelayCountsWaitsForACPU: a thread that is kept from the CPU by
// another runnable thread on the same CPU gains run delay; one alone
// barely does.
func TestRunDelayCountsWaitsForACPU(t *testing.T) {
	if _, err := os.Stat("/proc/thread-self/schedstat"); err != nil {
		t.Skip("skipping test; the kernel keeps no scheduler statistics (CONFIG_SCHED_INFO)")
	}
	// A thread of its own, pinned to one CPU; it ends with its
	// goroutine, pinned, instead of serving other goroutines.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- spinBesideABusyLoop()
	}()
	if err := <-errc; err != nil {
		t.Error(err)
	}
}

// spinBesideABusyLoop pins its thread to CPU 0 beside a busy loop and
// fails unless the thread's run delay grows.
func spinBesideABusyLoop() error {
	var one unix.CPUSet
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return fmt.Errorf("cannot pin this thread: %w", err)
	}
	// A busy child process on the same CPU, at this thread's priority
	// (forked from it, it inherits its nice).
	busy := exec.Command("taskset", "-c", "0", "sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		return fmt.Errorf("cannot start a busy loop: %w", err)
	}
	defer func() { busy.Process.Kill(); busy.Wait() }()
	w0 := runDelay()
	// Spin for 200 ms of wall time: sharing the CPU, the thread waits
	// for it part of the time.
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
	}
	if d := runDelay() - w0; d < 20*time.Millisecond {
		return fmt.Errorf("run delay %v over 200 ms beside a busy loop on one CPU, want at least 20 ms", d)
	}
	return nil
}

// TestAutoToleranceFailsAChangedTimer: with Config.Auto, rto.pkt passes,
// its tolerance the script's widened by the measured noise; the same
// script after a backtick command raises the namespace's minimum RTO to
// 1 s fails at its first retransmission: the widening is the machine's
// noise and its kernel's tick, not room for a timer that changed.
func TestAutoToleranceFailsAChangedTimer(t *testing.T) {
	if !testenv.InNamespace(t, time.Minute) {
		return
	}
	needTUN(t)
	src, err := os.ReadFile("testdata/rto.pkt")
	if err != nil {
		t.Fatal(err)
	}
	const first = "0   socket("
	changed := strings.Replace(string(src), first, "0   `echo 1000000 > /proc/sys/net/ipv4/tcp_rto_min_us`\n"+first, 1)
	for _, c := range []struct {
		name, src string
		want      Status
		line      int // of the failure
	}{
		{"as written", string(src), Passed, 0},
		{"rto_min 1s", changed, Failed, 17}, // line 16, one down
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse("rto.pkt", []byte(c.src))
			if err != nil {
				t.Fatal(err)
			}
			res := Run(context.Background(), s, Config{Auto: true, Dir: t.TempDir()})
			t.Logf("tolerance %v (%s); %v at line %d: %s", res.Tolerance, res.Why, res.Status, res.Line, res.Reason)
			if res.Noise <= 0 || res.Tolerance != DefaultTolerance+res.Noise || !strings.Contains(res.Why, "widened by "+res.Noise.String()) {
				t.Errorf("tolerance %v, noise %v, why %q: want packetdrill's 4 ms widened by the noise, saying so", res.Tolerance, res.Noise, res.Why)
			}
			if res.Tick <= 0 || (res.Tick > time.Millisecond) != strings.Contains(res.Why, "this kernel's tick is "+res.Tick.String()) {
				t.Errorf("tick %v, why %q: want the kernel's tick measured, and said when longer than 1 ms", res.Tick, res.Why)
			}
			if res.Status != c.want || res.Line != c.line {
				t.Errorf("got %v at line %d, want %v at line %d", res.Status, res.Line, c.want, c.line)
			}
		})
	}
}

// TestUntimedCommandsRun: a script's untimed first command runs before
// it plays, and its untimed last one after it, even when the script
// failed (scripts restore their sysctls there); an init command that
// fails fails the script at its line.
func TestUntimedCommandsRun(t *testing.T) {
	if !testenv.InNamespace(t, time.Minute) {
		return
	}
	needTUN(t)
	for _, c := range []struct {
		name, src string
		line      int // of the failure
		init      bool
	}{
		{"a call fails", "`touch init`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = -1 EINVAL (Invalid argument)\n`touch cleanup`\n", 2, true},
		{"the init command fails", "`false`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n`touch cleanup`\n", 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse("t.pkt", []byte(c.src))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			res := Run(context.Background(), s, Config{Dir: dir})
			if res.Status != Failed || res.Line != c.line {
				t.Errorf("got %v at line %d: %s; want FAIL at line %d", res.Status, res.Line, res.Reason, c.line)
			}
			for name, want := range map[string]bool{"init": c.init, "cleanup": true} {
				if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
					t.Errorf("%s command ran: %v, want %v", name, err == nil, want)
				}
			}
		})
	}
}

// TestDueCountsFromTheKernelsLastPacket: a relative kernel's packet right
// after another is due from when the other came; any other relative
// event from the previous event's time; an absolute one at its time.
func TestDueCountsFromTheKernelsLastPacket(t *testing.T) {
	ms := time.Millisecond
	parse := func(src string) Event {
		s, err := Parse("t.pkt", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return s.Events[0]
	}
	for _, c := range []struct {
		name     string
		src      string
		afterOut bool
		want     time.Duration
	}{
		{"resend after a resend that came late", "+.4 > P. 1:101(100) ack 1", true, 620 * ms},
		{"kernel's packet after another event", "+.4 > P. 1:101(100) ack 1", false, 600 * ms},
		{"script's packet after the kernel's", "+.4 < . 1:1(0) ack 101 win 100", true, 600 * ms},
		{"call after the kernel's packet", "+.4 close(3) = 0", true, 600 * ms},
		{"absolute", "1 > P. 1:101(100) ack 1", true, 1000 * ms},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The previous event was due at 200 ms; the kernel's last
			// packet came at 220 ms.
			if got := due(parse(c.src), 200*ms, 220*ms, c.afterOut); got != c.want {
				t.Errorf("due %v, want %v", got, c.want)
			}
		})
	}
}

// TestSameErrno: the names Linux gives one errno twice are one.
func TestSameErrno(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"EAGAIN", "EWOULDBLOCK", true},
		{"EOPNOTSUPP", "ENOTSUP", true},
		{"EAGAIN", "EAGAIN", true},
		{"EAGAIN", "EINPROGRESS", false},
		{"ENOTSUP", "EINVAL", false},
	} {
		if got := sameErrno(c.a, c.b); got != c.same {
			t.Errorf("sameErrno(%s, %s) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

// TestMeasureNoiseRestoresNice: MeasureNoise samples at nice 0 too, the
// priority of the kernel's softirq thread, and gives the thread its
// raised priority back: a thread left at nice 0 would serve the script's
// later calls at the priority of the busy loops beside it.
func TestMeasureNoiseRestoresNice(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Setpriority(unix.PRIO_PROCESS, tid, 20-prio)
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, -5); err != nil {
		testenv.SkipOrFail(t, "cannot raise a thread's priority: "+err.Error(), "run as root")
		return
	}
	// A nil Host runs the measurement on this thread.
	if _, err := MeasureNoise(nil, 5); err != nil {
		t.Fatal(err)
	}
	got, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		t.Fatal(err)
	}
	if nice := 20 - got; nice != -5 {
		t.Errorf("nice %d after MeasureNoise, want the thread's -5 back", nice)
	}
}

// TestStartsAfterTick: a script starts 250 µs after one of the kernel's
// ticks, as packetdrill's do (the tick measured, or Config.Tick: a
// period AwaitTick aligns to whatever the kernel's), in most of a few
// runs (a loaded machine may come late to one).
func TestStartsAfterTick(t *testing.T) {
	needTUN(t)
	s, err := Parse("tick.pkt", []byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tick := range []time.Duration{0, 10 * time.Millisecond} {
		const runs = 3
		var phases []time.Duration
		good := 0
		for range runs {
			res := Run(context.Background(), s, Config{Dir: t.TempDir(), Tick: tick})
			if res.Status != Passed {
				t.Fatalf("Config.Tick %v: %v at line %d: %s", tick, res.Status, res.Line, res.Reason)
			}
			phases = append(phases, res.AfterTick)
			if res.AfterTick >= startAfterTick && res.AfterTick < startAfterTick+200*time.Microsecond {
				good++
			}
		}
		if good < runs-1 {
			t.Errorf("Config.Tick %v: scripts started %v after a tick, want %v (+200µs) in %d of %d", tick, phases, startAfterTick, runs-1, runs)
		}
	}
}
