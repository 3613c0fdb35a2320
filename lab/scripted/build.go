package scripted

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcplab/tcplab/capture"
)

// wire is a segment to send with every field decided: absolute sequence
// numbers, the options in the order Linux writes them.
type wire struct {
	src, dst   netip.AddrPort
	flags      capture.Flags
	seq, ack   uint32
	window     uint16
	mss        *uint16
	wscale     *uint8
	sackOK     bool
	ts         bool
	tsVal      uint32
	tsEcr      uint32
	sack       []SACKBlock // absolute
	fastOpen   []byte      // the Fast Open option's cookie, when not nil
	raw        []RawOption // sent as given, last
	ecn        ECN         // the IP header's ECN field
	ae         bool        // AccECN's flag
	urgent     uint16      // the urgent pointer field
	payload    []byte
	identifier uint16
}

// frame builds the IPv4 frame of w, with fresh layers, lengths and
// checksums (capture.Serialize).
func (w *wire) frame() ([]byte, error) {
	v4 := w.src.Addr().Is4() && w.dst.Addr().Is4()
	if !v4 && !(w.src.Addr().Is6() && w.dst.Addr().Is6()) {
		return nil, fmt.Errorf("build segment %v > %v: the two addresses are of two families", w.src, w.dst)
	}
	opts := w.options()
	n := 0
	for _, o := range opts {
		n += int(o.OptionLength)
	}
	if n > 40 {
		return nil, fmt.Errorf("build segment %v > %v: %d bytes of options, TCP allows 40: send fewer SACK blocks", w.src, w.dst, n)
	}
	if w.ecn > CE {
		return nil, fmt.Errorf("build segment %v > %v: %v is not one codepoint to send: send ect0 or ect1", w.src, w.dst, w.ecn)
	}
	var ip interface {
		gopacket.NetworkLayer
		gopacket.SerializableLayer
	}
	if v4 {
		ip = &layers.IPv4{
			Version: 4, TOS: uint8(w.ecn), TTL: 64, Id: w.identifier, Flags: layers.IPv4DontFragment,
			Protocol: layers.IPProtocolTCP, SrcIP: w.src.Addr().AsSlice(), DstIP: w.dst.Addr().AsSlice(),
		}
	} else {
		ip = &layers.IPv6{
			Version: 6, TrafficClass: uint8(w.ecn), HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: w.src.Addr().AsSlice(), DstIP: w.dst.Addr().AsSlice(),
		}
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(w.src.Port()), DstPort: layers.TCPPort(w.dst.Port()),
		Seq: w.seq, Ack: w.ack, Window: w.window, Urgent: w.urgent, Options: opts,
		FIN: w.flags.Has(FIN), SYN: w.flags.Has(SYN), RST: w.flags.Has(RST), PSH: w.flags.Has(PSH),
		ACK: w.flags.Has(ACK), URG: w.flags.Has(URG), ECE: w.flags.Has(ECE), CWR: w.flags.Has(CWR), NS: w.ae,
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, fmt.Errorf("build segment: %w", err)
	}
	ls := []gopacket.SerializableLayer{ip, tcp}
	if len(w.payload) > 0 {
		ls = append(ls, gopacket.Payload(w.payload))
	}
	b, err := capture.Serialize(ls...)
	if err != nil {
		return nil, fmt.Errorf("build segment %v > %v: %w", w.src, w.dst, err)
	}
	return b, nil
}

// options lays the options out as Linux does (mss, sackOK, TS, nop,
// wscale), padded with NOPs to 32-bit words.
func (w *wire) options() []layers.TCPOption {
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1}
	var o []layers.TCPOption
	if w.mss != nil {
		o = append(o, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4,
			OptionData: binary.BigEndian.AppendUint16(nil, *w.mss)})
	}
	sackOK := layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}
	ts := layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10,
		OptionData: binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, w.tsVal), w.tsEcr)}
	switch {
	case w.sackOK && w.ts:
		o = append(o, sackOK, ts)
	case w.ts:
		o = append(o, nop, nop, ts)
	case w.sackOK:
		o = append(o, nop, nop, sackOK)
	}
	if w.wscale != nil {
		o = append(o, nop, layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3,
			OptionData: []byte{*w.wscale}})
	}
	if len(w.sack) > 0 {
		var data []byte
		for _, s := range w.sack {
			data = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(data, s.Left), s.Right)
		}
		o = append(o, nop, nop, layers.TCPOption{OptionType: layers.TCPOptionKindSACK,
			OptionLength: uint8(2 + len(data)), OptionData: data})
	}
	if w.fastOpen != nil {
		// Kind 34, then NOPs to the next 32-bit word, as Linux
		// writes it ("FO abcd1234,nop,nop").
		o = append(o, layers.TCPOption{OptionType: layers.TCPOptionKind(34),
			OptionLength: uint8(2 + len(w.fastOpen)), OptionData: w.fastOpen})
		for n := 2 + len(w.fastOpen); n%4 != 0; n++ {
			o = append(o, nop)
		}
	}
	for _, r := range w.raw {
		o = append(o, layers.TCPOption{OptionType: layers.TCPOptionKind(r.Kind), OptionLength: uint8(2 + len(r.Data)), OptionData: r.Data})
		for n := 2 + len(r.Data); n%4 != 0; n++ {
			o = append(o, nop)
		}
	}
	return o
}
