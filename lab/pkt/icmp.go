package pkt

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tcplab/tcplab/lab/scripted"
)

// The ICMP types and codes by the names packetdrill gives them (RFC 792
// and RFC 1700 for ICMP, RFC 4443 for ICMPv6).
var (
	icmpv4Types = map[string]uint8{
		"echo_reply": 0, "unreachable": 3, "source_quench": 4, "redirect": 5,
		"echo_request": 8, "time_exceeded": 11, "parameter_problem": 12,
		"timestamp_request": 13, "timestamp_reply": 14, "information_request": 15,
		"information_reply": 16, "address_mask_request": 17, "address_mask_reply": 18,
	}
	icmpv4Codes = map[string]map[string]uint8{
		"unreachable": {
			"net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
			"port_unreachable": 3, "frag_needed": 4, "source_route_failed": 5,
			"net_unknown": 6, "host_unknown": 7, "source_host_isolated": 8,
			"net_prohibited": 9, "host_prohibited": 10, "net_unreachable_for_tos": 11,
			"host_unreachable_for_tos": 12, "packet_filtered": 13,
			"precedence_violation": 14, "precedence_cutoff": 15,
		},
	}
	icmpv6Types = map[string]uint8{
		"unreachable": 1, "packet_too_big": 2, "time_exceeded": 3,
		"parameter_problem": 4, "echo_request": 128, "echo_reply": 129,
	}
	icmpv6Codes = map[string]map[string]uint8{
		"unreachable": {
			"net_unreachable": 0, "no_route": 0, "admin_prohibited": 1,
			"not_neighbour": 2, "address_unreachable": 3, "port_unreachable": 4,
		},
		"time_exceeded":     {"exceeded_hop_limit": 0, "exceeded_frag_time": 1},
		"parameter_problem": {"header_field": 0, "unknown_next_header": 1, "unknown_option": 2},
	}
)

// icmpOf is the message m sends on the wire of family v6 (ICMPv6) or not
// (ICMP), with its numbers looked up as packetdrill looks them up:
// "type_N" and "code_N" for any number, a missing code 0, an MTU only on
// IPv4's Fragmentation Needed (16 bits) and IPv6's Packet Too Big.
func icmpOf(m *ICMPMessage, v6 bool) (scripted.ICMP, error) {
	types, codes, proto := icmpv4Types, icmpv4Codes, "ICMP"
	if v6 {
		types, codes, proto = icmpv6Types, icmpv6Codes, "ICMPv6"
	}
	var out scripted.ICMP
	typ, ok := numbered(m.Type, "type_")
	if !ok {
		if typ, ok = types[m.Type]; !ok {
			return out, fmt.Errorf("%s has no type %q: want one of %s, or type_N", proto, m.Type, names(types))
		}
	}
	var code uint8
	if m.Code != "" {
		if code, ok = numbered(m.Code, "code_"); !ok {
			if code, ok = codes[m.Type][m.Code]; !ok {
				if len(codes[m.Type]) == 0 {
					return out, fmt.Errorf("%s type %s has no named codes: write code_N, not %q", proto, m.Type, m.Code)
				}
				return out, fmt.Errorf("%s type %s has no code %q: want one of %s, or code_N", proto, m.Type, m.Code, names(codes[m.Type]))
			}
		}
	}
	out.Type, out.Code = typ, code
	if m.MTU != nil {
		switch {
		case !v6 && (typ != scripted.ICMPv4Unreachable || code != scripted.ICMPv4FragNeeded):
			return out, fmt.Errorf("an ICMP MTU is Fragmentation Needed's (unreachable frag_needed), not type %d code %d's", typ, code)
		case !v6 && *m.MTU > 0xffff:
			return out, fmt.Errorf("ICMP MTU %d does not fit its 16 bits", *m.MTU)
		case v6 && (typ != scripted.ICMPv6PacketTooBig || code != 0):
			return out, fmt.Errorf("an ICMPv6 MTU is Packet Too Big's (packet_too_big), not type %d code %d's", typ, code)
		}
		out.MTU = *m.MTU
	}
	out.Seq, out.Len = m.Seq, m.Len
	return out, nil
}

// numbered reads "type_N" or "code_N" of a byte.
func numbered(s, prefix string) (uint8, bool) {
	n, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(n, 10, 8)
	return uint8(v), err == nil
}

// names lists a table's names, sorted, for an error.
func names(m map[string]uint8) string {
	var l []string
	for n := range m {
		l = append(l, n)
	}
	slices.Sort(l)
	return strings.Join(l, ", ")
}
