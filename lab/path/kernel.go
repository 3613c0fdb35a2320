package path

import (
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/tcplab/tcplab/lab/netns"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Mechanism names what makes a path's conditions happen, as result.json
// records it.
type Mechanism string

// The mechanisms, in the order [Choose] prefers them.
const (
	// None: the path changes nothing, so nothing is installed.
	None Mechanism = "none"
	// Netem: the kernel's netem qdisc on each side's egress does all of
	// it ([ApplyNetem]).
	Netem Mechanism = "netem"
	// TBF: the kernel's tbf qdisc on each side's egress limits the rate,
	// for a path that asks for nothing else ([ApplyTBF]).
	TBF Mechanism = "tbf"
	// TUNLine: a [Line] in user space, which does everything a Path can
	// ask on any kernel with TUN.
	TUNLine Mechanism = "tun-line"
)

// Qdiscs says which of the qdiscs a path can use the running kernel
// offers.
type Qdiscs struct {
	Netem, TBF, HTB bool
}

// ErrUnsupported is wrapped by the errors of [Probe]'s trials and of the
// Apply functions when the kernel does not know the qdisc (it was built
// without it and cannot load it).
var ErrUnsupported = errors.New("qdisc not supported by this kernel")

// Choose returns the mechanism for p on a kernel offering q: none for the
// zero path; netem wherever the kernel has it; tbf when the path only
// limits the rate; the TUN line otherwise. The choice does not depend on
// anything else, so a run says which one it used and a replay on the same
// kernel makes the same choice.
func Choose(p Path, q Qdiscs) Mechanism {
	switch {
	case p.IsZero():
		return None
	case q.Netem:
		return Netem
	case q.TBF && rateOnly(p.C2S) && rateOnly(p.S2C):
		return TBF
	}
	return TUNLine
}

func rateOnly(c Conditions) bool { return c == Conditions{Rate: c.Rate} }

// Probe finds out which qdiscs the running kernel offers by making each
// the root qdisc of the interface ifname in the network namespace ns (nil:
// the caller's) and deleting it again, which gives the interface its
// default qdisc back. It needs CAP_NET_ADMIN there; use an interface of a
// namespace of the lab's own (a veth), since its traffic meets each qdisc
// for a moment. Only a kernel's "unknown qdisc" answer counts as
// unsupported; any other error is returned.
func Probe(ns *os.File, ifname string) (Qdiscs, error) {
	var q Qdiscs
	err := netns.Enter(ns, func() error {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("probe qdiscs on %s: %w", ifname, err)
		}
		attrs := rootAttrs(link)
		for _, t := range []struct {
			ok    *bool
			qdisc netlink.Qdisc
		}{
			{&q.Netem, netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{})},
			{&q.TBF, tbf(attrs, 1_000_000, link.Attrs().MTU)},
			{&q.HTB, netlink.NewHtb(attrs)},
		} {
			err := add(t.qdisc)
			if errors.Is(err, ErrUnsupported) {
				continue
			}
			if err != nil {
				return fmt.Errorf("probe qdiscs on %s: %w", ifname, err)
			}
			*t.ok = true
			if err := netlink.QdiscDel(t.qdisc); err != nil {
				return fmt.Errorf("probe qdiscs on %s: remove %s: %w", ifname, t.qdisc.Type(), err)
			}
		}
		return nil
	})
	return q, err
}

// ApplyNetem makes netem with the conditions c the root qdisc of the
// interface ifname in the namespace ns (nil: the caller's), replacing
// the one it has: c applies to the packets ifname sends. Netem's
// decisions come from the kernel's generator, not from a seed, and its
// jitter may reorder packets, unlike a Line's.
func ApplyNetem(ns *os.File, ifname string, c Conditions) error {
	us := func(d interface{ Microseconds() int64 }) uint32 {
		return uint32(min(d.Microseconds(), math.MaxUint32))
	}
	return apply(ns, ifname, func(link netlink.Link) netlink.Qdisc {
		return netlink.NewNetem(rootAttrs(link), netlink.NetemQdiscAttrs{
			Latency:     us(c.Delay),
			Jitter:      us(c.Jitter),
			Loss:        float32(c.Loss),
			ReorderProb: float32(c.Reorder),
			Duplicate:   float32(c.Duplicate),
			Rate64:      c.Rate / 8,
		})
	})
}

// ApplyTBF makes tbf at rate bits per second the root qdisc of the
// interface ifname in the namespace ns (nil: the caller's): the packets
// ifname sends leave at that rate, after a burst of 10 ms worth (at least
// two MTUs), and wait in a queue of 100 ms worth beyond it.
func ApplyTBF(ns *os.File, ifname string, rate uint64) error {
	if rate == 0 {
		return fmt.Errorf("tbf on %s: rate 0: want a rate above zero", ifname)
	}
	return apply(ns, ifname, func(link netlink.Link) netlink.Qdisc {
		return tbf(rootAttrs(link), rate, link.Attrs().MTU)
	})
}

// RemoveQdisc deletes the root qdisc of ifname in the namespace ns (nil:
// the caller's), which gives it its default qdisc back.
func RemoveQdisc(ns *os.File, ifname string) error {
	return netns.Enter(ns, func() error {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("remove qdisc of %s: %w", ifname, err)
		}
		qs, err := netlink.QdiscList(link)
		if err != nil {
			return fmt.Errorf("remove qdisc of %s: %w", ifname, err)
		}
		for _, q := range qs {
			if q.Attrs().Parent == netlink.HANDLE_ROOT && q.Attrs().Handle == netlink.MakeHandle(1, 0) {
				if err := netlink.QdiscDel(q); err != nil {
					return fmt.Errorf("remove %s qdisc of %s: %w", q.Type(), ifname, err)
				}
			}
		}
		return nil
	})
}

func apply(ns *os.File, ifname string, qdisc func(netlink.Link) netlink.Qdisc) error {
	return netns.Enter(ns, func() error {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("qdisc on %s: %w", ifname, err)
		}
		q := qdisc(link)
		if err := netlink.QdiscReplace(q); err != nil {
			return fmt.Errorf("%s qdisc on %s: %w", q.Type(), ifname, classify(err))
		}
		return nil
	})
}

// add adds qdisc, its error wrapping ErrUnsupported when the kernel does
// not know its kind.
func add(qdisc netlink.Qdisc) error {
	if err := netlink.QdiscAdd(qdisc); err != nil {
		return fmt.Errorf("add %s: %w", qdisc.Type(), classify(err))
	}
	return nil
}

// classify wraps ErrUnsupported around the kernel's answer for a qdisc
// kind it does not know: ENOENT ("Specified qdisc kind is unknown"), or
// EOPNOTSUPP.
func classify(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return err
}

// rootAttrs are the attributes of the root qdisc 1: of link.
func rootAttrs(link netlink.Link) netlink.QdiscAttrs {
	return netlink.QdiscAttrs{
		LinkIndex: link.Attrs().Index,
		Handle:    netlink.MakeHandle(1, 0),
		Parent:    netlink.HANDLE_ROOT,
	}
}

// tbf returns a tbf qdisc at rate bits per second for a link of the given
// MTU: a burst of 10 ms at the rate, at least two frames, and a queue of
// 100 ms beyond it, as `tc qdisc add ... tbf rate R burst B latency 100ms`
// would make.
func tbf(attrs netlink.QdiscAttrs, rate uint64, mtu int) *netlink.Tbf {
	bytes := rate / 8
	frame := uint64(mtu + 14)
	burst := max(bytes/100, 2*frame)
	limit := max(bytes/10, 10*frame) + burst
	return &netlink.Tbf{
		QdiscAttrs: attrs,
		Rate:       bytes,
		Limit:      uint32(min(limit, math.MaxUint32)),
		Buffer:     netlink.Xmittime(bytes, uint32(min(burst, math.MaxUint32))),
	}
}
