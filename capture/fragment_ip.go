package capture

import (
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// The Decoder's side of reassembly: turning the IPv4 header or IPv6
// fragment header just decoded into a fragment for the reassembler, and a
// completed datagram into the bytes the header loop goes on with.

// fragment4 handles the IPv4 fragment whose header d.ip4 holds. Like
// Wireshark, it reassembles only a fragment whose data was captured whole
// and is not empty; otherwise a first fragment is decoded as it stands and
// a later one is not a header.
func (d *Decoder) fragment4() ([]byte, header) {
	ip := &d.ip4
	d.fragment = true
	hdr := int(ip.IHL) * 4
	n := int(ip.Length) - hdr
	if n <= 0 || len(ip.Payload) < n {
		if ip.FragOffset != 0 {
			return nil, hNone
		}
		return ip.Payload, ipHeader(ip.Protocol, false)
	}
	k := fragKey{src: d.src, dst: d.dst, id: uint32(ip.Id), proto: uint8(ip.Protocol)}
	if private(k.src) || private(k.dst) {
		k.vlan = d.vlan
	}
	out, conflict, ok := d.frags.add(fragment{
		key: k, now: d.now, timeout: fragTimeout4,
		off: int(ip.FragOffset) * 8, data: ip.Payload[:n], more: ip.Flags&layers.IPv4MoreFragments != 0,
		limit: maxDatagramLength - hdr,
	})
	if !ok {
		return nil, hNone
	}
	d.fragment, d.overlap = false, d.overlap || conflict
	d.ip4Len, d.missing = len(out), 0
	return out, ipHeader(ip.Protocol, false)
}

// private reports whether a is an address Wireshark takes for one that two
// VLANs may both use: private (RFC 1918) or link-local IPv4.
func private(a netip.Addr) bool {
	return a.Is4() && (a.IsPrivate() || a.IsLinkLocalUnicast())
}

// fragment6 handles the IPv6 fragment whose fragment header d.frag holds,
// behind the IPv6 header d.ip6. Like Wireshark, it reassembles only a
// fragment whose data was captured whole; otherwise, first fragment or
// not, what follows is not decoded. The datagram's next header is the one
// of the fragment that completes it, as in Wireshark.
func (d *Decoder) fragment6() ([]byte, header) {
	f := &d.frag
	d.fragment = true
	// Bytes of the IPv6 payload in front of the fragment's data: the
	// extension headers before the fragment header, and that header.
	front := d.ip6Cap - cap(f.Payload)
	n := d.ip6Len - front
	if n < 0 || len(f.Payload) < n || front < 8 {
		return nil, hNone
	}
	out, conflict, ok := d.frags.add(fragment{
		key: fragKey{src: d.src, dst: d.dst, id: f.Identification}, now: d.now, timeout: fragTimeout6,
		off: int(f.FragmentOffset) * 8, data: f.Payload[:n], more: f.MoreFragments,
		limit: maxDatagramLength - (front - 8),
	})
	if !ok {
		return nil, hNone
	}
	d.fragment, d.overlap = false, d.overlap || conflict
	// The reassembled payload takes the place of the IPv6 payload, so
	// that l4Len measures the segment within it.
	d.ip6Len, d.ip6Cap, d.missing = len(out), cap(out), 0
	return out, ipHeader(f.NextHeader, true)
}
