package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/report"
	"github.com/tcplab/tcplab/lab/sockstat"
)

// maxKernelSamples bounds the samples of one run: a scenario's story is
// told in tens of segments, and a bulk transfer's thousands would only
// slow its capture down.
const maxKernelSamples = 1000

// kernelView asks the kernel about both ends' sockets each time the
// capture sees one of their segments (not on a timer: what the kernel
// says right after a segment is what explains the next).
type kernelView struct {
	samplers []*sockstat.Sampler // one per host: the server's, then the client's
	server   netip.AddrPort      // the server's address, to tell the ends apart
	samples  []kernelSample
	last     time.Time // when the last sample was taken
	why      error     // why the run samples rather than traces, if it tried
}

// kernelGap is how soon after a sample a plain data segment or ACK goes
// without one: a transfer's segments come microseconds apart, and asking
// the kernel after each would keep the capture's reader from its ring
// long enough for the ring to overflow. Segments with SYN, FIN or RST, or
// with a label, are always sampled.
const kernelGap = 2 * time.Millisecond

// kernelSample is what the kernel said of a connection's sockets after
// the packet at index of the recording.
type kernelSample struct {
	index, frame int
	sockets      []sockstat.Socket
}

// newKernelView opens a sampler in each host of nw.
func newKernelView(nw *network) (*kernelView, error) {
	server, err := netip.ParseAddrPort(nw.serverAddr)
	if err != nil {
		return nil, err
	}
	k := &kernelView{server: netip.AddrPortFrom(server.Addr().Unmap(), server.Port())}
	s, err := sockstat.New(sockstat.Config{})
	if err != nil {
		return nil, err
	}
	k.samplers = append(k.samplers, s)
	if nw.client != nil {
		c, err := sockstat.New(sockstat.Config{NetNS: nw.client.File()})
		if err != nil {
			k.close()
			return nil, err
		}
		k.samplers = append(k.samplers, c)
	}
	return k, nil
}

// seen records what the kernel says of p's connection now; p is the
// packet at index of the recording. Errors only lose the sample.
func (k *kernelView) seen(index int, p *capture.Packet) {
	if len(k.samples) >= maxKernelSamples {
		return
	}
	now := time.Now()
	plain := p.Segment.Flags&(capture.SYN|capture.FIN|capture.RST) == 0 && p.Annotation.Labels == 0
	if plain && now.Sub(k.last) < kernelGap {
		return
	}
	k.last = now
	f := sockstat.Filter{Tuples: []sockstat.Tuple{{A: p.Segment.Src, B: p.Segment.Dst}}}
	var all []sockstat.Socket
	for _, s := range k.samplers {
		socks, err := s.Sample(f)
		if err == nil {
			all = append(all, socks...)
		}
	}
	if len(all) > 0 {
		k.samples = append(k.samples, kernelSample{index: index, frame: p.Segment.Frame, sockets: all})
	}
}

func (k *kernelView) close() {
	for _, s := range k.samplers {
		s.Close()
	}
}

// isServer reports whether s is the server's end.
func (k *kernelView) isServer(s *sockstat.Socket) bool { return s.Local == k.server }

// texts says, for each sampled packet by index, what changed in either
// end's socket since that end's previous sample, in lang: "client: cwnd
// 10 -> 20; server: ...". The first sample of an end lists its values.
func (k *kernelView) texts(lang expect.Lang) map[int]string {
	return kernelTexts(k.samples, k.isServer, lang)
}

// kernelTexts is texts of samples, whose server end isServer tells.
func kernelTexts(samples []kernelSample, isServer func(*sockstat.Socket) bool, lang expect.Lang) map[int]string {
	who := map[bool]string{false: "client", true: "server"}
	if lang == expect.Chinese {
		who = map[bool]string{false: "客户端", true: "服务端"}
	}
	last := map[[2]netip.AddrPort]sockstat.Socket{}
	out := map[int]string{}
	for _, smp := range samples {
		var parts []string
		for _, s := range smp.sockets {
			key := [2]netip.AddrPort{s.Local, s.Remote}
			if cs := sockstat.Diff(last[key], s); len(cs) > 0 {
				parts = append(parts, who[isServer(&s)]+": "+cs.Text(lang))
			}
			last[key] = s
		}
		if len(parts) > 0 {
			out[smp.index] = strings.Join(parts, "; ")
		}
	}
	return out
}

// account returns the samples, and what changed at each in lang.
func (k *kernelView) account(_ []capture.Packet, lang expect.Lang) *kernelAccount {
	a := &kernelAccount{source: report.KernelSampled, samples: k.result(), texts: k.texts(lang)}
	a.untraced = k.why
	return a
}

// result returns the samples as result.json keeps them.
func (k *kernelView) result() []report.KernelSample {
	var out []report.KernelSample
	for _, smp := range k.samples {
		b, err := json.Marshal(smp.sockets)
		if err == nil {
			out = append(out, report.KernelSample{Frame: smp.frame, Sockets: b})
		}
	}
	return out
}

// KernelNotes says what the kernel's view of both ends' sockets changed to
// after each segment, by index of pkts, in lang, from the samples a run's
// result.json keeps (Result.Kernel): what the walkthrough shows under each
// segment (report.Run.Kernel), for a capture and its samples kept apart.
// The server is the end the first SYN went to.
func KernelNotes(samples []report.KernelSample, pkts []capture.Packet, lang expect.Lang) (map[int]string, error) {
	index := map[int]int{}
	var server netip.AddrPort
	for i := range pkts {
		p := &pkts[i]
		index[p.Segment.Frame] = i
		if p.TCP && !server.IsValid() && p.Segment.Flags&(capture.SYN|capture.ACK) == capture.SYN {
			server = netip.AddrPortFrom(p.Segment.Dst.Addr().Unmap(), p.Segment.Dst.Port())
		}
	}
	var own []kernelSample
	for _, smp := range samples {
		i, ok := index[smp.Frame]
		if !ok {
			continue
		}
		var socks []sockstat.Socket
		if err := json.Unmarshal(smp.Sockets, &socks); err != nil {
			return nil, fmt.Errorf("kernel sample of frame %d: %w", smp.Frame, err)
		}
		own = append(own, kernelSample{index: i, frame: smp.Frame, sockets: socks})
	}
	return kernelTexts(own, func(s *sockstat.Socket) bool { return s.Local == server }, lang), nil
}
