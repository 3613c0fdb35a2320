package impair

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// TableName is the name of the nftables table (family inet) that Install
// creates; `nft list table inet tcplab` shows it.
const TableName = "tcplab"

// chainName is the table's one chain, on the input hook.
const chainName = "input"

// ErrInstalled is returned by Install when the namespace already has a
// table named TableName: rules of another Install are in force.
var ErrInstalled = errors.New("impair: table inet " + TableName + " already exists")

// Kind says which segments to its port a rule counts.
type Kind uint8

// The kinds of segment a rule can count.
const (
	// Data counts segments that carry payload, retransmissions included;
	// pure ACKs, SYNs and FINs without data are not counted.
	Data Kind = iota + 1
	// SYN counts connection requests: SYN without ACK, retransmitted
	// SYNs included.
	SYN
	// FIN counts segments with the FIN flag, retransmitted FINs included.
	FIN
)

// String returns "data segment" or "SYN".
func (k Kind) String() string {
	switch k {
	case Data:
		return "data segment"
	case SYN:
		return "SYN"
	case FIN:
		return "FIN"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Rule is one impairment: which TCP segments to a destination port the
// kernel drops on their way in. Build rules with DropNth, DropFraction and
// DropFirstSYN.
type Rule struct {
	// Port is the TCP destination port of the segments.
	Port uint16
	// Kind is which segments to Port the rule counts.
	Kind Kind
	// Nth lists which of the counted segments to drop, counted from 1 in
	// the order they reach the input hook. Retransmissions are counted
	// too: they are segments like any other.
	Nth []int
	// Percent, when Nth is empty, drops that share (1 to 100) of the
	// counted segments, each independently at random.
	Percent int
}

// DropNth drops the nth segment carrying data to port, and the other
// counts given, all counted from 1.
func DropNth(port uint16, n ...int) Rule { return Rule{Port: port, Kind: Data, Nth: n} }

// DropFraction drops percent of the segments carrying data to port, at
// random.
func DropFraction(port uint16, percent int) Rule {
	return Rule{Port: port, Kind: Data, Percent: percent}
}

// DropFirstSYN drops the first SYN to port: the client's connect waits for
// its initial retransmission timeout (1 s on Linux) and sends the SYN
// again.
func DropFirstSYN(port uint16) Rule { return Rule{Port: port, Kind: SYN, Nth: []int{1}} }

// DropFirstFIN drops the first FIN to port: its sender retransmits it
// after its retransmission timeout, and the receiver hears of the close
// only then.
func DropFirstFIN(port uint16) Rule { return Rule{Port: port, Kind: FIN, Nth: []int{1}} }

// String says what the rule drops, for example "drop data segment #5 to
// port 8000"; it is also the rule's comment in `nft list ruleset`.
func (r Rule) String() string {
	if len(r.Nth) == 0 {
		return fmt.Sprintf("drop %d%% of %ss to port %d", r.Percent, r.Kind, r.Port)
	}
	nums := make([]string, len(r.Nth))
	for i, n := range r.Nth {
		nums[i] = "#" + strconv.Itoa(n)
	}
	plural := ""
	if len(r.Nth) > 1 {
		plural = "s"
	}
	return fmt.Sprintf("drop %s%s %s to port %d", r.Kind, plural, strings.Join(nums, ", "), r.Port)
}

// validate says what is wrong with a rule, before the kernel sees it.
func (r Rule) validate() error {
	switch {
	case r.Port == 0:
		return errors.New("port 0")
	case r.Kind != Data && r.Kind != SYN && r.Kind != FIN:
		return fmt.Errorf("unknown kind %d", r.Kind)
	case len(r.Nth) > 0 && r.Percent != 0:
		return errors.New("both Nth and Percent set")
	case len(r.Nth) == 0 && (r.Percent < 1 || r.Percent > 100):
		return fmt.Errorf("percent %d outside 1..100", r.Percent)
	}
	for _, n := range r.Nth {
		if n < 1 || n > math.MaxUint32-1 {
			return fmt.Errorf("segment #%d: counts start at 1", n)
		}
	}
	return nil
}

// Stats counts what one installed rule saw.
type Stats struct {
	Matched uint64 // segments of the rule's kind to its port
	Dropped uint64 // of those, the ones it dropped
}

// Installed is a set of rules in force in a network namespace.
type Installed struct {
	rules []Rule
	conn  *nftables.Conn
	table *nftables.Table
	chain *nftables.Chain
}

// Install puts the rules in force in the current network namespace, in a
// new nftables table (see TableName), in the order given: a segment that
// one rule drops is not counted by the rules after it. It fails with
// ErrInstalled when the table exists already, and with the kernel's error
// when nftables refuses the rules (EPERM without CAP_NET_ADMIN, for one).
func Install(rules ...Rule) (*Installed, error) {
	if len(rules) == 0 {
		return nil, errors.New("impair: no rules to install")
	}
	for _, r := range rules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("impair: rule %q: %w", r, err)
		}
	}
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("impair: netlink: %w", err)
	}
	in := &Installed{rules: slices.Clone(rules), conn: conn}
	// CreateTable fails with EEXIST where AddTable would reuse a table.
	in.table = conn.CreateTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
	accept := nftables.ChainPolicyAccept
	in.chain = conn.AddChain(&nftables.Chain{
		Name:     chainName,
		Table:    in.table,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookInput,
		Priority: nftables.ChainPriorityFilter,
		Policy:   &accept,
	})
	for _, r := range rules {
		exprs, err := in.ruleExprs(r)
		if err != nil {
			return nil, fmt.Errorf("impair: rule %q: %w", r, err)
		}
		conn.AddRule(&nftables.Rule{
			Table:    in.table,
			Chain:    in.chain,
			Exprs:    exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.String()),
		})
	}
	if err := conn.Flush(); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, ErrInstalled
		}
		return nil, fmt.Errorf("impair: install nftables table inet %s: %w", TableName, err)
	}
	return in, nil
}

// Registers: reg 1 (NFT_REG_1, 16 bytes) holds whatever the rule loads last.
const reg = 1

// ruleExprs returns the expressions of one rule:
//
//	tcp dport PORT <kind> counter numgen ... counter drop
//
// adding to the connection's batch the anonymous set the rule looks its
// count up in, when it has one.
func (in *Installed) ruleExprs(r Rule) ([]expr.Any, error) {
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binaryutil.BigEndian.PutUint16(r.Port)},
	}
	switch r.Kind {
	case Data:
		// A load of one byte at the start of the payload (@ih, the inner
		// header: right after the TCP header and its options) fails, and
		// ends the rule, when there is no payload. TCP's header length
		// varies with its options, so a length comparison could not say it.
		exprs = append(exprs, &expr.Payload{DestRegister: reg, Base: expr.PayloadBase(unix.NFT_PAYLOAD_INNER_HEADER), Offset: 0, Len: 1})
	case SYN:
		exprs = append(exprs,
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 1, Mask: []byte{0x12}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{0x02}}, // SYN set, ACK clear
		)
	case FIN:
		exprs = append(exprs,
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 1, Mask: []byte{0x01}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{0x01}}, // FIN set
		)
	}
	exprs = append(exprs, &expr.Counter{}) // matched
	if len(r.Nth) > 0 {
		// numgen inc counts from 0 the times it runs, that is the segments
		// that matched everything before it; the modulus is as large as
		// the kernel allows, so the count never wraps in a scenario.
		set := &nftables.Set{Table: in.table, Anonymous: true, Constant: true, KeyType: nftables.TypeInteger}
		var elems []nftables.SetElement
		seen := map[int]bool{}
		for _, n := range r.Nth {
			if !seen[n] {
				seen[n] = true
				elems = append(elems, nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(n - 1))})
			}
		}
		if err := in.conn.AddSet(set, elems); err != nil {
			return nil, err
		}
		exprs = append(exprs,
			&expr.Numgen{Register: reg, Type: unix.NFT_NG_INCREMENTAL, Modulus: math.MaxUint32},
			&expr.Lookup{SourceRegister: reg, SetName: set.Name, SetID: set.ID},
		)
	} else {
		// numgen writes host byte order; cmp compares bytes, so turn the
		// number big-endian first, as nft itself does.
		exprs = append(exprs,
			&expr.Numgen{Register: reg, Type: unix.NFT_NG_RANDOM, Modulus: 100},
			&expr.Byteorder{SourceRegister: reg, DestRegister: reg, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpLt, Register: reg, Data: binaryutil.BigEndian.PutUint32(uint32(r.Percent))},
		)
	}
	return append(exprs, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}), nil
}

// Rules returns the rules in force, in order.
func (in *Installed) Rules() []Rule { return slices.Clone(in.rules) }

// Stats reads the rules' counters from the kernel, one Stats per rule in
// the order given to Install.
func (in *Installed) Stats() ([]Stats, error) {
	got, err := in.conn.GetRules(in.table, in.chain)
	if err != nil {
		return nil, fmt.Errorf("impair: read the rules of table inet %s: %w", TableName, err)
	}
	if len(got) != len(in.rules) {
		return nil, fmt.Errorf("impair: table inet %s has %d rules, installed %d", TableName, len(got), len(in.rules))
	}
	stats := make([]Stats, len(got))
	for i, r := range got {
		var counters []uint64
		for _, e := range r.Exprs {
			if c, ok := e.(*expr.Counter); ok {
				counters = append(counters, c.Packets)
			}
		}
		if len(counters) != 2 {
			return nil, fmt.Errorf("impair: rule %d of table inet %s has %d counters, want 2", i+1, TableName, len(counters))
		}
		stats[i] = Stats{Matched: counters[0], Dropped: counters[1]}
	}
	return stats, nil
}

// Remove deletes the table, and with it the rules and their counters; a
// second call fails, as the table is gone.
func (in *Installed) Remove() error {
	in.conn.DelTable(in.table)
	if err := in.conn.Flush(); err != nil {
		return fmt.Errorf("impair: delete table inet %s: %w", TableName, err)
	}
	return nil
}
