package sockstat

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestJSON: a connection and a listener marshal to ss's names, and read
// back to the same Socket.
func TestJSON(t *testing.T) {
	info := DecodeTCPInfo(tcpInfoBytes(280))
	info.MaxPacingRate = ^uint64(0)
	slowStart := info
	slowStart.SndSsthresh = InfiniteSsthresh
	conn := Socket{
		State: Established, Local: netip.MustParseAddrPort("192.168.0.2:40000"),
		Remote: netip.MustParseAddrPort("192.168.0.101:8000"), RecvQ: 0, SendQ: 5000,
		Timer: TimerOn, TimerExpires: 180 * time.Millisecond, Cookie: 77, Inode: 1234,
		Info: &info, Cong: "cubic",
	}
	inSlowStart := conn
	inSlowStart.Info = &slowStart
	listener := Socket{
		State: Listen, Local: netip.MustParseAddrPort("[::]:8000"), Remote: netip.MustParseAddrPort("[::]:0"),
		AcceptQ: 5, Backlog: 4,
	}
	for _, c := range []struct {
		name    string
		s       Socket
		has     []string
		hasNot  []string
		exactly string
	}{
		{name: "connection", s: conn,
			has: []string{`"state":"ESTABLISHED"`, `"local":"192.168.0.2:40000"`, `"send_q":5000`, `"recv_q":0`,
				`"cwnd":24`, `"ssthresh":20`, `"rtt_ms":40.125`, `"rttvar_ms":1.5`, `"rto_ms":204`, `"unacked":12`,
				`"retrans":0`, `"total_retrans":2`, `"bytes_acked":1048577`, `"cong":"cubic"`, `"ca_state":"recovery"`,
				`"options":["ts","sack","wscale"]`, `"pacing_rate_bps":1000000`, `"timer":"on"`, `"minrtt_ms":40.01`},
			hasNot: []string{"accept_q", "backlog", "max_pacing_rate_bps"}},
		{name: "slow start", s: inSlowStart, hasNot: []string{"ssthresh"}},
		{name: "listener", s: listener,
			exactly: `{"state":"LISTEN","local":"[::]:8000","remote":"[::]:0","accept_q":5,"backlog":4,"uid":0,"inode":0,"cookie":0}`},
	} {
		b, err := json.Marshal(c.s)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, h := range c.has {
			if !strings.Contains(string(b), h) {
				t.Errorf("%s: no %s in %s", c.name, h, b)
			}
		}
		for _, h := range c.hasNot {
			if strings.Contains(string(b), `"`+h+`"`) {
				t.Errorf("%s: %s in %s", c.name, h, b)
			}
		}
		if c.exactly != "" && string(b) != c.exactly {
			t.Errorf("%s:\n got %s\nwant %s", c.name, b, c.exactly)
		}
		var back Socket
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: unmarshal: %v", c.name, err)
		}
		if (back.Info == nil) != (c.s.Info == nil) || back.Info != nil && *back.Info != *c.s.Info {
			t.Errorf("%s: info read back:\n got %+v\nwant %+v", c.name, back.Info, c.s.Info)
		}
		back.Info, c.s.Info = nil, nil
		if back != c.s {
			t.Errorf("%s: read back:\n got %+v\nwant %+v", c.name, back, c.s)
		}
	}
	var s Socket
	for _, bad := range []string{`{"state":"ESTAB"}`, `{"state":"LISTEN","local":"x"}`} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s): no error", bad)
		}
	}
}
