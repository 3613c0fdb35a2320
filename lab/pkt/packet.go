package pkt

import (
	"encoding/hex"
	"net/netip"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/scripted"
)

// allOptions are the option kinds a template can say are absent.
const allOptions = scripted.OptMSS | scripted.OptWindowScale | scripted.OptSACKPermitted | scripted.OptTimestamps | scripted.OptSACK | scripted.OptFastOpen

// sendTemplate is the segment an inbound packet line sends. The options
// are laid out as Linux lays them out (package scripted builds them), not
// in the line's order of nop and eol; a TS ecr is the line's only on a
// SYN: otherwise the runner maps it to the kernel's clock (tsClock.ecr)
// or the peer echoes the kernel's last TS val. cookie is the cookie of a
// Fast Open option by name (namedCookie).
func sendTemplate(pk *Packet, cookie []byte) scripted.TCP {
	seg := scripted.TCP{
		Flags:   pk.Flags,
		Seq:     scripted.Uint32(pk.Seq),
		Payload: make([]byte, pk.Len),
		Window:  pk.Win,
	}
	// An ack without the ACK flag (the selftests' "< R 1:1(0) ack 1461")
	// is written in the header all the same, as packetdrill writes it.
	if pk.Ack != nil {
		seg.Ack = scripted.Uint32(*pk.Ack)
	}
	seg.AE = pk.AE
	seg.Urgent = pk.Urg
	if e, ok := ecnCodepoints[pk.ECN]; ok && e != scripted.NotECT {
		seg.ECN = scripted.ECNPtr(e)
	}
	for _, o := range pk.Options {
		switch o.Kind {
		case OptAccECN:
			seg.Options.AccECN = o.accECN()
		case OptMSS:
			seg.Options.MSS = scripted.Uint16(uint16(o.Values[0]))
		case OptWScale:
			seg.Options.WindowScale = scripted.Uint8(uint8(o.Values[0]))
		case OptSACKOK:
			seg.Options.SACKPermitted = true
		case OptTS:
			seg.Options.TSVal = scripted.Uint32(o.Values[0])
			if pk.Flags.Has(capture.SYN) && !pk.Flags.Has(capture.ACK) {
				seg.Options.TSEcr = scripted.Uint32(o.Values[1])
			}
		case OptSACK:
			seg.Options.SACK = sackBlocks(o.Values)
		case OptMD5:
			// check lets through 16 bytes in hex: sent as written, as
			// packetdrill does (kind 19, RFC 2385).
			b, _ := hex.DecodeString(o.Raw)
			seg.Options.Raw = append(seg.Options.Raw, scripted.RawOption{Kind: 19, Data: b})
		case OptFO:
			// check lets through a cookie in hex, named (cookie, see
			// namedCookie) or none (a request).
			c, err := hex.DecodeString(o.Raw)
			if err != nil {
				c = cookie
			}
			if o.Exp {
				// FOEXP: kind 254, the magic 0xF989, the cookie.
				seg.Options.Raw = append(seg.Options.Raw, scripted.RawOption{Kind: 254, Data: append([]byte{0xf9, 0x89}, c...)})
				break
			}
			seg.Options.FastOpen = append([]byte{}, c...)
		}
	}
	return seg
}

// namedCookie is the cookie of pk's Fast Open option when the script
// names it (TFO_COOKIE, see namedCookies), computed as the kernel does
// for a client at src connecting to dst (the script's address and the
// kernel's: one value per run, whichever way the packet goes, as
// packetdrill's runners define it); nil when pk names none.
func namedCookie(pk *Packet, src, dst netip.Addr) []byte {
	for _, o := range pk.Options {
		if w, ok := namedCookies[o.Raw]; ok && o.Kind == OptFO {
			return namedKey(w).Cookie(src, dst)
		}
	}
	return nil
}

// expectTemplate is what an outbound packet line checks: flags, the
// sequence range, ack and win when written, the urgent pointer (0 when
// not written, as packetdrill checks it), and the options' kinds and
// values, except the TS values, which the kernel's clock sets (presence
// is checked). A line without options wants none; <...> wants anything.
func expectTemplate(pk *Packet) scripted.TCP {
	want := scripted.TCP{
		Flags:  pk.Flags,
		Seq:    scripted.Uint32(pk.Seq),
		Len:    scripted.Int(pk.Len),
		Window: pk.Win,
		AE:     pk.AE,
		Urgent: scripted.Uint16(0),
	}
	if pk.Urg != nil {
		want.Urgent = pk.Urg
	}
	// Without the ACK flag the field means nothing: it is not checked.
	if pk.Flags.Has(capture.ACK) {
		want.Ack = pk.Ack
	}
	if e, ok := ecnCodepoints[pk.ECN]; ok {
		want.ECN = scripted.ECNPtr(e)
	}
	if pk.AnyOptions {
		return want
	}
	var named scripted.OptionSet
	for _, o := range pk.Options {
		switch o.Kind {
		case OptMSS:
			want.Options.MSS = scripted.Uint16(uint16(o.Values[0]))
			named |= scripted.OptMSS
		case OptWScale:
			want.Options.WindowScale = scripted.Uint8(uint8(o.Values[0]))
			named |= scripted.OptWindowScale
		case OptSACKOK:
			want.Options.SACKPermitted = true
			named |= scripted.OptSACKPermitted
		case OptTS:
			named |= scripted.OptTimestamps
		case OptSACK:
			want.Options.SACK = sackBlocks(o.Values)
			named |= scripted.OptSACK
		case OptFO:
			// Its cookie in hex, or none (a request, which packetdrill
			// tells from a cookie by the option's length); a cookie
			// the script names is computed for the run's addresses
			// and checked after (namedCookie).
			named |= scripted.OptFastOpen
			if _, ok := namedCookies[o.Raw]; !ok {
				if b, err := hex.DecodeString(o.Raw); err == nil {
					want.Options.FastOpen = append([]byte{}, b...)
				}
			}
		case OptAccECN:
			// Its absence, when the line names none, is checked
			// after (unnamedAccECN).
			want.Options.AccECN = o.accECN()
		}
	}
	want.Options.Present = named & (scripted.OptTimestamps | scripted.OptFastOpen)
	if want.Options.FastOpen != nil {
		want.Options.Present &^= scripted.OptFastOpen // the cookie wants it
	}
	want.Options.Absent = allOptions &^ named
	return want
}

func sackBlocks(v []uint32) []scripted.SACKBlock {
	var out []scripted.SACKBlock
	for i := 0; i+1 < len(v); i += 2 {
		out = append(out, scripted.SACKBlock{Left: v[i], Right: v[i+1]})
	}
	return out
}

// accECNNames are the AccECN option's counters in each order, as the
// kernel's selftests name them.
var accECNNames = [2][3]string{{"e0b", "ceb", "e1b"}, {"e1b", "ceb", "e0b"}}

// order is an AccECN option's order: 1 for kind 174, 0 for 172.
func (o TCPOption) order() uint8 {
	if o.AccECN1 {
		return 1
	}
	return 0
}

// accECN is the AccECN option o in package scripted's form.
func (o TCPOption) accECN() *scripted.AccECN {
	return &scripted.AccECN{Order: o.order(), Counters: append([]uint32{}, o.Values...)}
}

// ecnCodepoints are the ECN field's names in brackets.
var ecnCodepoints = map[string]scripted.ECN{
	"noecn": scripted.NotECT, "ect0": scripted.ECT0, "ect1": scripted.ECT1, "ce": scripted.CE, "ect01": scripted.ECT01,
}

// unnamedAccECN reports whether got carries an AccECN option that the
// outbound line pk does not name (nor allow with <...>): packetdrill
// compares every option.
func unnamedAccECN(pk *Packet, got scripted.Segment) bool {
	if pk.AnyOptions || got.AccECN == nil {
		return false
	}
	for _, o := range pk.Options {
		if o.Kind == OptAccECN {
			return false
		}
	}
	return true
}
