package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Test frames are built with gopacket's serializer, one link type at a time,
// so the decoder is checked against bytes it did not write itself. A test
// describes a conversation as a list of steps (direction, flags, relative
// numbers, length, window, options, time) and either writes it into a pcap
// file (for tshark, Open and Walk) or feeds it straight to Walk through an
// in-memory Source.

// The default endpoints of test conversations.
var (
	client4 = netip.MustParseAddrPort("10.0.0.1:40000")
	server4 = netip.MustParseAddrPort("10.0.0.2:80")
	client6 = netip.MustParseAddrPort("[2001:db8::1]:40000")
	server6 = netip.MustParseAddrPort("[2001:db8::2]:80")
)

// testEpoch is the capture time of the first frame of a test conversation.
var testEpoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// link is a framing the Decoder supports. Its zero value is Ethernet, the
// default of test conversations.
type link int

const (
	linkEthernet   link = iota
	linkNullLE          // BSD loopback, family in little-endian (a little-endian host's capture)
	linkNullBE          // BSD loopback, family in big-endian
	linkLoop            // OpenBSD loopback: family always big-endian
	linkRaw             // LINKTYPE_RAW (101): IPv4 or IPv6, nothing in front
	linkRawOpenBSD      // DLT_RAW as OpenBSD numbers it (12)
	linkIPv4            // LINKTYPE_IPV4 (228)
	linkIPv6            // LINKTYPE_IPV6 (229)
	linkSLL             // Linux cooked capture v1
	linkSLL2            // Linux cooked capture v2
	numLinks
)

var linkNames = [numLinks]string{"ethernet", "null-le", "null-be", "loop", "raw", "raw-openbsd", "ipv4", "ipv6", "sll", "sll2"}

func (l link) String() string { return linkNames[l] }

// linkType returns the link type a capture file of this framing declares.
func (l link) linkType() layers.LinkType {
	return [numLinks]layers.LinkType{
		layers.LinkTypeEthernet, layers.LinkTypeNull, layers.LinkTypeNull, layers.LinkTypeLoop,
		layers.LinkTypeRaw, 12, layers.LinkTypeIPv4, layers.LinkTypeIPv6,
		layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
	}[l]
}

// carries reports whether the framing can carry IP packets of that family:
// LINKTYPE_IPV4 and LINKTYPE_IPV6 carry only their own.
func (l link) carries(v6 bool) bool {
	switch l {
	case linkIPv4:
		return !v6
	case linkIPv6:
		return v6
	}
	return true
}

// header returns the layers in front of an IP packet (none for the raw
// link types). v6 chooses the family or EtherType of the IP packet.
func (l link) header(v6 bool) []gopacket.SerializableLayer {
	etype := layers.EthernetTypeIPv4
	family := uint32(layers.ProtocolFamilyIPv4)
	if v6 {
		etype = layers.EthernetTypeIPv6
		family = uint32(layers.ProtocolFamilyIPv6BSD)
	}
	switch l {
	case linkEthernet:
		return []gopacket.SerializableLayer{&layers.Ethernet{
			SrcMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
			DstMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 2},
			EthernetType: etype,
		}}
	case linkNullLE:
		// gopacket writes the family in little-endian, as a little-endian
		// host's libpcap does.
		return []gopacket.SerializableLayer{&layers.Loopback{Family: layers.ProtocolFamily(family)}}
	case linkNullBE, linkLoop:
		return []gopacket.SerializableLayer{rawBytes(binary.BigEndian.AppendUint32(nil, family))}
	case linkSLL:
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[0:], 0)     // packet type: to us
		binary.BigEndian.PutUint16(h[2:], 1)     // ARPHRD_ETHER
		binary.BigEndian.PutUint16(h[4:], 6)     // address length
		copy(h[6:], []byte{0x02, 0, 0, 0, 0, 1}) // source MAC, padded to 8
		binary.BigEndian.PutUint16(h[14:], uint16(etype))
		return []gopacket.SerializableLayer{rawBytes(h)}
	case linkSLL2:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], uint16(etype))
		binary.BigEndian.PutUint32(h[4:], 1) // interface index
		binary.BigEndian.PutUint16(h[8:], 1) // ARPHRD_ETHER
		h[10] = 0                            // packet type: to us
		h[11] = 6                            // address length
		copy(h[12:], []byte{0x02, 0, 0, 0, 0, 1})
		return []gopacket.SerializableLayer{rawBytes(h)}
	}
	return nil
}

// rawBytes is a layer serialized as the given bytes, for headers gopacket
// cannot write: Linux cooked headers, a big-endian loopback family, IPv6
// extension headers laid out by hand.
type rawBytes []byte

func (r rawBytes) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func (r rawBytes) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	dst, err := b.PrependBytes(len(r))
	if err != nil {
		return err
	}
	copy(dst, r)
	return nil
}

// ipHeaders says how the IP header of a frame looks beyond its addresses.
type ipHeaders struct {
	// v4Options adds IPv4 options (a record-route option and padding),
	// making a 32-byte header.
	v4Options bool
	// v6Ext adds a hop-by-hop and a destination options header (8 bytes
	// each) between the IPv6 header and TCP.
	v6Ext bool
}

// seg describes one TCP frame to build.
type seg struct {
	link     link
	src, dst netip.AddrPort
	flags    Flags
	seq, ack uint32
	win      uint16
	opts     []layers.TCPOption
	len      int // payload bytes
	ip       ipHeaders
}

// ipLayers returns the network layers of a frame from src to dst carrying
// proto, and the layer TCP and UDP checksums are computed against.
func ipLayers(src, dst netip.Addr, proto layers.IPProtocol, h ipHeaders) ([]gopacket.SerializableLayer, gopacket.NetworkLayer) {
	if src.Is4() {
		ip := &layers.IPv4{
			Version: 4, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment,
			Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
		}
		if h.v4Options {
			// Record route with room for two addresses (11 bytes), then an
			// end-of-options byte: 12 bytes of options, IHL 8.
			ip.Options = []layers.IPv4Option{
				{OptionType: 7, OptionLength: 11, OptionData: []byte{4, 0, 0, 0, 0, 0, 0, 0, 0}},
				{OptionType: 0, OptionLength: 1},
			}
		}
		return []gopacket.SerializableLayer{ip}, ip
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	out := []gopacket.SerializableLayer{ip}
	if h.v6Ext {
		// gopacket folds hop-by-hop into its IPv6 layer and pads options
		// its own way, so both headers are laid out here: next header,
		// length 0 (8 bytes), one PadN option of 4 bytes.
		ip.NextHeader = layers.IPProtocolIPv6HopByHop
		out = append(out,
			rawBytes{byte(layers.IPProtocolIPv6Destination), 0, 1, 4, 0, 0, 0, 0},
			rawBytes{byte(proto), 0, 1, 4, 0, 0, 0, 0})
	}
	return out, ip
}

// serialize builds a frame from the layers, with lengths and checksums
// filled in.
func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatalf("serialize %d layers: %v", len(ls), err)
	}
	return slices.Clone(buf.Bytes())
}

// payloadBytes returns n bytes of printable payload.
func payloadBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// frame builds s as a frame of its link type.
func (s seg) frame(tb testing.TB) []byte {
	tb.Helper()
	v6 := s.src.Addr().Is6()
	if !s.link.carries(v6) {
		tb.Fatalf("link %v cannot carry a frame from %v", s.link, s.src)
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(s.src.Port()), DstPort: layers.TCPPort(s.dst.Port()),
		Seq: s.seq, Ack: s.ack, Window: s.win, Options: s.opts,
		FIN: s.flags.Has(FIN), SYN: s.flags.Has(SYN), RST: s.flags.Has(RST), PSH: s.flags.Has(PSH),
		ACK: s.flags.Has(ACK), URG: s.flags.Has(URG), ECE: s.flags.Has(ECE), CWR: s.flags.Has(CWR),
	}
	ls := s.link.header(v6)
	ip, nl := ipLayers(s.src.Addr(), s.dst.Addr(), layers.IPProtocolTCP, s.ip)
	if err := tcp.SetNetworkLayerForChecksum(nl); err != nil {
		tb.Fatal(err)
	}
	ls = append(ls, ip...)
	ls = append(ls, tcp)
	if s.len > 0 {
		ls = append(ls, gopacket.Payload(payloadBytes(s.len)))
	}
	return serialize(tb, ls...)
}

// TCP options, for the opts of a step or seg.
func optMSS(v uint16) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: binary.BigEndian.AppendUint16(nil, v)}
}

func optWScale(shift uint8) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{shift}}
}

func optSACKPerm() layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted}
}

func optNOP() layers.TCPOption { return layers.TCPOption{OptionType: layers.TCPOptionKindNop} }

func optTS(val, ecr uint32) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionData: binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, val), ecr)}
}

// optSACK returns a SACK option of the blocks given as left, right pairs.
func optSACK(edges ...uint32) layers.TCPOption {
	var b []byte
	for _, e := range edges {
		b = binary.BigEndian.AppendUint32(b, e)
	}
	return layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionData: b}
}

// synOptions are the options of a Linux SYN with window scale 7.
func synOptions() []layers.TCPOption {
	return []layers.TCPOption{optMSS(1460), optSACKPerm(), optTS(1, 0), optNOP(), optWScale(7)}
}

// Directions, short for conversation tables.
const (
	cs = ClientToServer
	sc = ServerToClient
)

// step is one segment of a scripted conversation. seq is relative to the
// sender's initial sequence number and ack to the receiver's, as Wireshark
// shows them (the SYN has seq 0).
type step struct {
	dir      Dir
	flags    Flags
	seq, ack uint32
	len      int
	win      uint16 // raw window field
	opts     []layers.TCPOption
	// at is the time since the first frame; 0 after the first step means
	// 1ms after the previous step.
	at time.Duration
}

// conv is a scripted TCP conversation: two endpoints and their segments.
type conv struct {
	link           link
	client, server netip.AddrPort // zero: client4, server4
	cisn, sisn     uint32         // initial sequence numbers; zero: defaults
	start          time.Time      // zero: testEpoch
	ip             ipHeaders
	steps          []step
}

// Default initial sequence numbers: the server's wraps around 2^32 after
// 256 bytes, so relative numbering is tested across the wrap.
const (
	defaultClientISN = 1_000_000
	defaultServerISN = 0xffff_ff00
)

func (c conv) withDefaults() conv {
	if !c.client.IsValid() {
		c.client, c.server = client4, server4
	}
	if c.cisn == 0 {
		c.cisn = defaultClientISN
	}
	if c.sisn == 0 {
		c.sisn = defaultServerISN
	}
	if c.start.IsZero() {
		c.start = testEpoch
	}
	return c
}

// capturedFrame is a frame with its capture metadata.
type capturedFrame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// frames builds the conversation's frames, cut to snap bytes when snap > 0.
func (c conv) frames(tb testing.TB, snap int) []capturedFrame {
	tb.Helper()
	c = c.withDefaults()
	var out []capturedFrame
	var at time.Duration
	for i, st := range c.steps {
		switch {
		case st.at != 0 || i == 0:
			at = st.at
		default:
			at += time.Millisecond
		}
		s := seg{link: c.link, flags: st.flags, win: st.win, opts: st.opts, len: st.len, ip: c.ip}
		if st.dir == ClientToServer {
			s.src, s.dst = c.client, c.server
			s.seq, s.ack = c.cisn+st.seq, c.sisn+st.ack
		} else {
			s.src, s.dst = c.server, c.client
			s.seq, s.ack = c.sisn+st.seq, c.cisn+st.ack
		}
		if !st.flags.Has(ACK) {
			s.ack = 0
		}
		out = append(out, captured(s.frame(tb), c.start.Add(at), snap))
	}
	return out
}

// captured returns data as a capture with the given snap length keeps it.
func captured(data []byte, ts time.Time, snap int) capturedFrame {
	ci := gopacket.CaptureInfo{Timestamp: ts, Length: len(data), CaptureLength: len(data)}
	if snap > 0 && len(data) > snap {
		data = data[:snap]
		ci.CaptureLength = snap
	}
	return capturedFrame{ci: ci, data: data}
}

// merge returns the frames of several conversations in time order; frames
// at the same time keep the order of their conversations.
func merge(tb testing.TB, snap int, convs ...conv) []capturedFrame {
	tb.Helper()
	var all []capturedFrame
	for _, c := range convs {
		all = append(all, c.frames(tb, snap)...)
	}
	slices.SortStableFunc(all, func(a, b capturedFrame) int { return a.ci.Timestamp.Compare(b.ci.Timestamp) })
	return all
}

// writePcap writes frames into a new pcap file at path (microsecond
// timestamps, or nanosecond ones when nanos is set).
func writePcap(tb testing.TB, path string, lt layers.LinkType, nanos bool, frames []capturedFrame) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w := pcapgo.NewWriter(bw)
	if nanos {
		w = pcapgo.NewWriterNanos(bw)
	}
	if err := w.WriteFileHeader(262144, lt); err != nil {
		tb.Fatal(err)
	}
	for _, fr := range frames {
		if err := w.WritePacket(fr.ci, fr.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// frameSource is an in-memory Source.
type frameSource struct {
	lt     layers.LinkType
	frames []capturedFrame
}

func (s *frameSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if len(s.frames) == 0 {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	f := s.frames[0]
	s.frames = s.frames[1:]
	return f.data, f.ci, nil
}

func (s *frameSource) LinkType() layers.LinkType { return s.lt }

// annotated is one TCP frame after Walk: its segment and annotation.
type annotated struct {
	seg Segment
	ann Annotation
}

// walkFrames runs Walk over frames and returns every TCP frame, in order,
// and the annotator that saw them.
func walkFrames(tb testing.TB, lt layers.LinkType, frames []capturedFrame) ([]annotated, *Annotator) {
	tb.Helper()
	a := NewAnnotator()
	var out []annotated
	_, err := Walk(&frameSource{lt: lt, frames: frames}, a, func(p *Packet) error {
		if p.TCP {
			out = append(out, annotated{p.Segment, p.Annotation})
		}
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		tb.Fatalf("walk: %v", err)
	}
	return out, a
}

// annotate feeds the conversation to Walk and returns every segment with
// its annotation, one per step.
func (c conv) annotate(tb testing.TB) ([]annotated, *Annotator) {
	tb.Helper()
	got, a := walkFrames(tb, c.link.linkType(), c.frames(tb, 0))
	if len(got) != len(c.steps) {
		tb.Fatalf("%d steps gave %d TCP segments", len(c.steps), len(got))
	}
	return got, a
}

// handshake returns the steps of a three-way handshake with window scale 7
// on both SYNs, the client's ACK at 2ms (so the first RTT is 2ms).
func handshake() []step {
	return []step{
		{cs, SYN, 0, 0, 0, 64240, synOptions(), 0},
		{sc, SYN | ACK, 0, 1, 0, 65160, synOptions(), time.Millisecond},
		{cs, ACK, 1, 1, 0, 502, nil, 2 * time.Millisecond},
	}
}
