package scripted

import (
	"net/netip"
	"strings"
	"testing"
)

// TestECNBuildRead: the ECN field, the AE flag and the AccECN option a
// segment is built with read back from its frame, in IPv4 and IPv6; a
// codepoint that is not one (ect01) is refused.
func TestECNBuildRead(t *testing.T) {
	v4 := [2]netip.AddrPort{netip.MustParseAddrPort("192.168.0.2:40000"), netip.MustParseAddrPort("192.168.0.101:8000")}
	v6 := [2]netip.AddrPort{netip.MustParseAddrPort("[fd3d::2]:40000"), netip.MustParseAddrPort("[fd3d::1]:8000")}
	tests := []struct {
		name  string
		addrs [2]netip.AddrPort
		ecn   ECN
		ae    bool
		acc   *AccECN
	}{
		{"v4 not-ECT", v4, NotECT, false, nil},
		{"v4 ect0 AE", v4, ECT0, true, nil},
		{"v4 ce AccECN0", v4, CE, false, &AccECN{Order: 0, Counters: []uint32{1, 0, 1}}},
		{"v6 ect1 AccECN1", v6, ECT1, true, &AccECN{Order: 1, Counters: []uint32{1001, 2000, 0xffffff}}},
		{"v6 ce AccECN without counters", v6, CE, false, &AccECN{Order: 0, Counters: []uint32{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := wire{src: tt.addrs[0], dst: tt.addrs[1], flags: SYN | ECE | CWR, ecn: tt.ecn, ae: tt.ae, mss: Uint16(1000)}
			if tt.acc != nil {
				w.raw = []RawOption{tt.acc.raw()}
			}
			b, err := w.frame()
			if err != nil {
				t.Fatal(err)
			}
			ecn, ae, acc := ecnOf(b)
			if ecn != tt.ecn || ae != tt.ae || !acc.equal(tt.acc) {
				t.Errorf("read [%v] AE %v %v; built [%v] AE %v %v", ecn, ae, acc, tt.ecn, tt.ae, tt.acc)
			}
		})
	}
	w := wire{src: v4[0], dst: v4[1], ecn: ECT01}
	if _, err := w.frame(); err == nil || !strings.Contains(err.Error(), "not one codepoint") {
		t.Errorf("built ect01: %v; want an error", err)
	}
}

// TestECNDiff: an expectation's ECN field, AE flag and AccECN option each
// fail a segment that differs, and pass one that has them.
func TestECNDiff(t *testing.T) {
	acc := &AccECN{Order: 1, Counters: []uint32{1, 0, 1}}
	tests := []struct {
		name  string
		want  TCP
		got   Segment
		field string // "" when it must match
	}{
		{"ect0 wanted and sent", TCP{Flags: ACK, ECN: ECNPtr(ECT0)}, Segment{Flags: ACK, ECN: ECT0}, ""},
		{"ect0 wanted, not-ECT sent", TCP{Flags: ACK, ECN: ECNPtr(ECT0)}, Segment{Flags: ACK}, "ECN field"},
		{"noecn wanted, ce sent", TCP{Flags: ACK, ECN: ECNPtr(NotECT)}, Segment{Flags: ACK, ECN: CE}, "ECN field"},
		{"ect01 takes ect1", TCP{Flags: ACK, ECN: ECNPtr(ECT01)}, Segment{Flags: ACK, ECN: ECT1}, ""},
		{"ect01 refuses ce", TCP{Flags: ACK, ECN: ECNPtr(ECT01)}, Segment{Flags: ACK, ECN: CE}, "ECN field"},
		{"unchecked field", TCP{Flags: ACK}, Segment{Flags: ACK, ECN: CE}, ""},
		{"AE wanted, absent", TCP{Flags: ACK, AE: true}, Segment{Flags: ACK}, "AE flag"},
		{"AE sent, not wanted", TCP{Flags: ACK}, Segment{Flags: ACK, AE: true}, "AE flag"},
		{"AccECN equal", TCP{Flags: ACK, Options: Options{AccECN: acc}}, Segment{Flags: ACK, AccECN: &AccECN{Order: 1, Counters: []uint32{1, 0, 1}}}, ""},
		{"AccECN counter differs", TCP{Flags: ACK, Options: Options{AccECN: acc}}, Segment{Flags: ACK, AccECN: &AccECN{Order: 1, Counters: []uint32{1, 1000, 1}}}, "AccECN"},
		{"AccECN order differs", TCP{Flags: ACK, Options: Options{AccECN: acc}}, Segment{Flags: ACK, AccECN: &AccECN{Order: 0, Counters: []uint32{1, 0, 1}}}, "AccECN"},
		{"AccECN absent", TCP{Flags: ACK, Options: Options{AccECN: acc}}, Segment{Flags: ACK}, "AccECN"},
		{"AccECN sent, absent wanted", TCP{Flags: ACK, Options: Options{Absent: OptAccECN}}, Segment{Flags: ACK, AccECN: acc}, "options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.got.Options.WindowScale = -1
			rows := diff(tt.want, tt.got)
			switch {
			case tt.field == "" && len(rows) > 0:
				t.Errorf("diff = %v, want none", rows)
			case tt.field != "" && (len(rows) != 1 || rows[0].Field != tt.field):
				t.Errorf("diff = %v, want one row of %s", rows, tt.field)
			}
		})
	}
}
