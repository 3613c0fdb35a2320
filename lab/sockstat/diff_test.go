package sockstat

import (
	"testing"
	"time"

	"github.com/tcplab/tcplab/lab/expect"
)

func TestDiff(t *testing.T) {
	est := func(cwnd, ssthresh uint32, rtt time.Duration, sendQ uint32) Socket {
		return Socket{State: Established, SendQ: sendQ, Info: &TCPInfo{
			SndCwnd: cwnd, SndSsthresh: ssthresh, RTT: rtt, RTO: 204 * time.Millisecond}}
	}
	for _, c := range []struct {
		name          string
		before, after Socket
		en, zh        string
	}{
		{"slow start", est(10, InfiniteSsthresh, 0, 0), est(20, InfiniteSsthresh, 40*time.Millisecond, 0),
			"cwnd 10 -> 20, srtt 0 ms -> 40 ms", "拥塞窗口 10 -> 20, 平滑RTT 0 ms -> 40 ms"},
		{"a few microseconds are no change", est(10, InfiniteSsthresh, 40100*time.Microsecond, 0),
			est(10, InfiniteSsthresh, 40300*time.Microsecond, 0), "", ""},
		{"loss: ssthresh appears", est(20, InfiniteSsthresh, 4*time.Millisecond, 1000), est(10, 10, 4200*time.Microsecond, 0),
			"cwnd 20 -> 10, ssthresh 10, srtt 4 ms -> 4.2 ms, send_q 1000 -> 0",
			"拥塞窗口 20 -> 10, 慢启动阈值 10, 平滑RTT 4 ms -> 4.2 ms, 发送队列 1000 -> 0"},
		{"state", Socket{State: SynSent}, est(10, InfiniteSsthresh, 35*time.Microsecond, 0),
			"state SYN_SENT -> ESTABLISHED, ca_state open, cwnd 10, srtt 0.035 ms, rto 204 ms, unacked 0, retrans 0",
			"状态 SYN_SENT -> ESTABLISHED, 拥塞状态 open, 拥塞窗口 10, 平滑RTT 0.035 ms, 重传超时 204 ms, 未确认报文段 0, 累计重传 0"},
		{"accept queue", Socket{State: Listen, AcceptQ: 4, Backlog: 4}, Socket{State: Listen, AcceptQ: 5, Backlog: 4},
			"accept_q 4 -> 5", "全连接队列 4 -> 5"},
	} {
		d := Diff(c.before, c.after)
		if got := d.Text(expect.English); got != c.en {
			t.Errorf("%s: English\n got %q\nwant %q", c.name, got, c.en)
		}
		if got := d.Text(expect.Chinese); got != c.zh {
			t.Errorf("%s: Chinese\n got %q\nwant %q", c.name, got, c.zh)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                         "0 ms",
		17 * time.Microsecond:     "0.017 ms",
		35123 * time.Nanosecond:   "0.035 ms",
		4230 * time.Microsecond:   "4.2 ms",
		40400 * time.Microsecond:  "40 ms",
		204 * time.Millisecond:    "204 ms",
		1500 * time.Millisecond:   "1500 ms",
		999999 * time.Microsecond: "1000 ms",
		time.Millisecond:          "1 ms",
		100500 * time.Microsecond: "101 ms",
		9960 * time.Microsecond:   "10 ms",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
