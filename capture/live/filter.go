package live

import (
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
)

// Filter is a BPF filter expression, as tcpdump takes it ("tcp port 443
// and host 10.0.0.1"), compiled by libpcap for one link type, to select
// frames of a capture file.
type Filter struct {
	bpf *pcap.BPF
}

// CompileFilter compiles expr for frames of link type link.
func CompileFilter(link layers.LinkType, expr string) (*Filter, error) {
	bpf, err := pcap.NewBPF(link, DefaultSnaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", expr, err)
	}
	return &Filter{bpf: bpf}, nil
}

// Matches reports whether the frame passes the filter.
func (f *Filter) Matches(ci gopacket.CaptureInfo, data []byte) bool {
	return f.bpf.Matches(ci, data)
}
