package path

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Conditions are what one direction of a path does to the packets that
// cross it, as netem describes a link: every value is one-way, and the zero
// value is a perfect wire.
type Conditions struct {
	// Delay is the one-way propagation delay added to every packet.
	Delay time.Duration
	// Jitter varies each packet's delay uniformly within Delay ± Jitter
	// (never below zero), as netem's default distribution does. It needs
	// a Delay.
	Jitter time.Duration
	// Loss is the percentage (0 to 100, not a fraction) of packets dropped,
	// each independently.
	Loss float64
	// Reorder is the percentage (0 to 100) of packets sent at once,
	// without the Delay, so that they overtake the packets still in
	// flight, as netem's reorder does. It needs a Delay.
	Reorder float64
	// Duplicate is the percentage (0 to 100) of packets sent twice.
	Duplicate float64
	// Rate is the link's rate in bits per second: each packet takes
	// len*8/Rate to serialise, and packets wait their turn in a bounded
	// queue. Zero means unlimited.
	Rate uint64
}

// IsZero reports whether c changes nothing: no delay, loss, reordering,
// duplication or rate.
func (c Conditions) IsZero() bool { return c == Conditions{} }

// The bounds of a path's values. A minute of delay or jitter is far beyond
// any real path (a geostationary hop is 270 ms) and keeps every sum of
// times in the delay line far from overflowing; 1kbit serialises a
// 1500-byte packet in 12 s, and 100gbit is more than a namespace's veth
// carries.
const (
	MaxDelay = time.Minute // the largest Delay, and the largest Jitter
	MinRate  = 1_000       // the smallest nonzero Rate, in bits per second: 1kbit
	MaxRate  = 100e9       // the largest Rate, in bits per second: 100gbit
)

// Check reports the first value of c out of its bounds: Delay and Jitter
// from 0 to [MaxDelay], percentages from 0 to 100, Rate 0 (unlimited) or
// from [MinRate] to [MaxRate]; and a Jitter or a Reorder without a Delay.
// [Parse] returns only conditions that pass it; a [Line] refuses the
// others.
func (c Conditions) Check() error {
	for k := range numKeys {
		if err := c.checkKey(k); err != nil {
			return fmt.Errorf("%w: %s=%s: %v; want %s", ErrSyntax, keyNames[k], c.term(k), err, keyHelp[k])
		}
	}
	if c.Jitter > 0 && c.Delay == 0 {
		return fmt.Errorf("%w: jitter=%v without a delay; jitter varies the delay, so give delay too", ErrSyntax, c.Jitter)
	}
	if c.Reorder > 0 && c.Delay == 0 {
		return fmt.Errorf("%w: reorder=%v%% without a delay; a reordered packet is one sent without the delay, so give delay too", ErrSyntax, formatPercent(c.Reorder))
	}
	return nil
}

// checkKey checks the value of key k in c against its bounds.
func (c Conditions) checkKey(k key) error {
	switch k {
	case keyDelay:
		return checkDuration(c.Delay)
	case keyJitter:
		return checkDuration(c.Jitter)
	case keyLoss:
		return checkPercent(c.Loss)
	case keyReorder:
		return checkPercent(c.Reorder)
	case keyDuplicate:
		return checkPercent(c.Duplicate)
	default:
		return checkRate(c.Rate)
	}
}

func checkDuration(d time.Duration) error {
	switch {
	case d < 0:
		return errors.New("negative")
	case d > MaxDelay:
		return fmt.Errorf("at most %v", MaxDelay)
	}
	return nil
}

func checkPercent(f float64) error {
	if math.IsNaN(f) || f < 0 || f > 100 {
		return errors.New("out of range")
	}
	return nil
}

func checkRate(bits uint64) error {
	switch {
	case bits == 0:
		return nil
	case bits < MinRate:
		return fmt.Errorf("at least %s", formatRate(MinRate))
	case bits > MaxRate:
		return fmt.Errorf("at most %s", formatRate(MaxRate))
	}
	return nil
}

// Check reports the first value of p out of its bounds, naming its
// direction; see [Conditions.Check].
func (p Path) Check() error {
	if err := p.C2S.Check(); err != nil {
		return fmt.Errorf("c2s: %w", err)
	}
	if err := p.S2C.Check(); err != nil {
		return fmt.Errorf("s2c: %w", err)
	}
	return nil
}

// Path is the conditions of a path between a client and a server, one per
// direction. It is what a user asks for (the -path option, a scenario's
// field); [Line] and the kernel's qdiscs make it happen.
type Path struct {
	// C2S applies to packets from the client to the server.
	C2S Conditions
	// S2C applies to packets from the server to the client.
	S2C Conditions
}

// IsZero reports whether p changes nothing in either direction.
func (p Path) IsZero() bool { return p.C2S.IsZero() && p.S2C.IsZero() }

// key is one term of the -path syntax.
type key uint8

const (
	keyDelay key = iota
	keyJitter
	keyLoss
	keyReorder
	keyDuplicate
	keyRate
	numKeys
)

// keyNames are the keys in canonical order; keyHelp says what each expects.
var (
	keyNames = [numKeys]string{"delay", "jitter", "loss", "reorder", "duplicate", "rate"}
	keyHelp  = [numKeys]string{
		"a duration from 0 to 1m0s with its unit, such as 20ms, 500us or 1s",
		"a duration from 0 to 1m0s with its unit, such as 2ms",
		"a percentage from 0% to 100%, such as 1% or 0.5%",
		"a percentage from 0% to 100%, such as 2%",
		"a percentage from 0% to 100%, such as 1%",
		"0 or a rate from 1kbit to 100gbit with its unit: bit, kbit, mbit, gbit, tbit (bits per second) or bps, kbps, mbps, gbps, tbps (bytes per second, as tc counts them), such as 10mbit",
	}
)

// scope says which direction a term applies to.
type scope uint8

const (
	both scope = iota
	c2s
	s2c
)

var scopePrefix = [3]string{"", "c2s:", "s2c:"}

// ErrSyntax is wrapped by every error of [Parse].
var ErrSyntax = errors.New("bad path")

// Parse reads a path in the -path syntax: comma-separated key=value terms
// with the keys delay, jitter, loss, reorder, duplicate and rate, such as
//
//	delay=20ms,jitter=2ms,loss=1%,reorder=2%,duplicate=1%,rate=10mbit
//
// Every value is one-way and applies to both directions, unless its key
// has the prefix c2s: (client to server) or s2c: (server to client); such
// a term overrides the shared one for its direction, so
// "delay=10ms,s2c:loss=5%" delays both directions and loses only
// answers. Durations are Go durations (20ms, 500us, 1.5s); percentages
// need their % sign; rates take tc's units: bit, kbit, mbit, gbit, tbit in
// bits per second and bps, kbps, mbps, gbps, tbps in bytes per second,
// with k = 1000. The empty string is the zero Path.
//
// Every value is bounded: delay and jitter from 0 to [MaxDelay] (1m0s),
// percentages from 0% to 100%, a rate 0 (unlimited) or from 1kbit
// ([MinRate]) to 100gbit ([MaxRate]); see [Conditions.Check].
//
// An error (wrapping [ErrSyntax]) names the term and says what its key
// expects, in one line.
func Parse(s string) (Path, error) {
	var (
		vals [3][numKeys]any
		set  [3][numKeys]bool
	)
	if strings.TrimSpace(s) == "" {
		return Path{}, nil
	}
	for term := range strings.SplitSeq(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			return Path{}, fmt.Errorf("%w %q: empty term; want key=value terms separated by commas", ErrSyntax, s)
		}
		sc := both
		name := term
		if rest, ok := strings.CutPrefix(term, "c2s:"); ok {
			sc, name = c2s, rest
		} else if rest, ok := strings.CutPrefix(term, "s2c:"); ok {
			sc, name = s2c, rest
		}
		name, value, ok := strings.Cut(name, "=")
		if !ok {
			return Path{}, fmt.Errorf("%w: term %q has no value; want key=value, with key one of %s", ErrSyntax, term, strings.Join(keyNames[:], ", "))
		}
		k, ok := lookupKey(name)
		if !ok {
			return Path{}, fmt.Errorf("%w: unknown key %q in %q; want one of %s, optionally prefixed with c2s: or s2c:", ErrSyntax, name, term, strings.Join(keyNames[:], ", "))
		}
		if set[sc][k] {
			return Path{}, fmt.Errorf("%w: %s%s given twice; give each key once per direction", ErrSyntax, scopePrefix[sc], name)
		}
		v, err := parseValue(k, value)
		if err != nil {
			return Path{}, fmt.Errorf("%w: %s%s=%s: %v; want %s", ErrSyntax, scopePrefix[sc], name, value, err, keyHelp[k])
		}
		vals[sc][k], set[sc][k] = v, true
	}
	var p Path
	for _, d := range [2]struct {
		sc scope
		c  *Conditions
	}{{c2s, &p.C2S}, {s2c, &p.S2C}} {
		for k := range numKeys {
			v := vals[both][k]
			if set[d.sc][k] {
				v = vals[d.sc][k]
			}
			if v != nil {
				d.c.set(k, v)
			}
		}
		if d.c.Jitter > 0 && d.c.Delay == 0 {
			return Path{}, fmt.Errorf("%w: %sjitter=%v without a delay; jitter varies the delay, so give delay too", ErrSyntax, scopePrefix[d.sc], d.c.Jitter)
		}
		if d.c.Reorder > 0 && d.c.Delay == 0 {
			return Path{}, fmt.Errorf("%w: %sreorder=%v%% without a delay; a reordered packet is one sent without the delay, so give delay too", ErrSyntax, scopePrefix[d.sc], formatPercent(d.c.Reorder))
		}
	}
	// Every value was checked as it was read; this keeps Parse and Check
	// from drifting apart.
	if err := p.Check(); err != nil {
		return Path{}, err
	}
	return p, nil
}

func lookupKey(name string) (key, bool) {
	for k, n := range keyNames {
		if n == name {
			return key(k), true
		}
	}
	return 0, false
}

// parseValue parses the value of key k: a time.Duration, a percentage
// (float64) or a rate in bits per second (uint64).
func parseValue(k key, s string) (any, error) {
	switch k {
	case keyDelay, keyJitter:
		d, err := time.ParseDuration(s)
		switch {
		case err == nil:
			return d, checkDuration(d)
		case !durationSyntax(s):
			return nil, errors.New("not a duration")
		case strings.HasPrefix(s, "-"):
			return nil, errors.New("negative")
		default:
			// Well formed, yet beyond time.Duration's 292 years.
			return nil, fmt.Errorf("at most %v", MaxDelay)
		}
	case keyLoss, keyReorder, keyDuplicate:
		num, ok := strings.CutSuffix(s, "%")
		if !ok {
			return nil, errors.New("no % sign")
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errors.New("not a number")
		}
		return f, checkPercent(f)
	default:
		return parseRate(s)
	}
}

// durationSyntax reports whether s has the form of a Go duration (an
// optional sign, then numbers each with a unit), whatever its size:
// time.ParseDuration says "invalid duration" both of "20" and of a number
// too large for it.
func durationSyntax(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" {
		return false
	}
	for s != "" {
		num := strings.TrimLeft(s, "0123456789.")
		if len(num) == len(s) || strings.Count(s[:len(s)-len(num)], ".") > 1 {
			return false
		}
		s = num
		unit := strings.TrimLeft(s, "nuµμmsh")
		switch s[:len(s)-len(unit)] {
		case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
		default:
			return false
		}
		s = unit
	}
	return true
}

// rateUnits are tc's rate units and their size in bits per second, longest
// suffix first so that "kbit" is not read as "bit".
var rateUnits = []struct {
	name string
	bits float64
}{
	{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3},
	{"tbps", 8e12}, {"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3},
	{"bit", 1}, {"bps", 8},
}

func parseRate(s string) (uint64, error) {
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(strings.ToLower(s), u.name)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, errors.New("not a number")
		}
		if f < 0 {
			return 0, errors.New("negative")
		}
		bits := math.Round(f * u.bits)
		if f > 0 && bits < MinRate {
			return 0, fmt.Errorf("at least %s", formatRate(MinRate))
		}
		if bits > MaxRate {
			return 0, fmt.Errorf("at most %s", formatRate(MaxRate))
		}
		return uint64(bits), nil
	}
	return 0, errors.New("no unit")
}

// set stores v, parsed for key k, in c.
func (c *Conditions) set(k key, v any) {
	switch k {
	case keyDelay:
		c.Delay = v.(time.Duration)
	case keyJitter:
		c.Jitter = v.(time.Duration)
	case keyLoss:
		c.Loss = v.(float64)
	case keyReorder:
		c.Reorder = v.(float64)
	case keyDuplicate:
		c.Duplicate = v.(float64)
	case keyRate:
		c.Rate = v.(uint64)
	}
}

// term returns the value of key k in c in the -path syntax, or "" when it
// is zero.
func (c Conditions) term(k key) string {
	switch k {
	case keyDelay:
		return formatDuration(c.Delay)
	case keyJitter:
		return formatDuration(c.Jitter)
	case keyLoss:
		return formatPercent(c.Loss) + "%"
	case keyReorder:
		return formatPercent(c.Reorder) + "%"
	case keyDuplicate:
		return formatPercent(c.Duplicate) + "%"
	default:
		return formatRate(c.Rate)
	}
}

func (c Conditions) isZero(k key) bool {
	switch k {
	case keyDelay:
		return c.Delay == 0
	case keyJitter:
		return c.Jitter == 0
	case keyLoss:
		return c.Loss == 0
	case keyReorder:
		return c.Reorder == 0
	case keyDuplicate:
		return c.Duplicate == 0
	default:
		return c.Rate == 0
	}
}

// String returns c in the -path syntax, its nonzero keys in the order
// delay, jitter, loss, reorder, duplicate, rate; "" for the zero value.
func (c Conditions) String() string {
	return Path{C2S: c, S2C: c}.String()
}

// String returns p in the canonical -path syntax, which [Parse] reads
// back to p: the nonzero keys in the order delay, jitter, loss, reorder,
// duplicate, rate; a key whose value is the same both ways once, without
// prefix; the others with c2s: and s2c: prefixes. The zero Path is "".
func (p Path) String() string {
	var terms []string
	var dirs []string
	for k := range numKeys {
		a, b := p.C2S, p.S2C
		if a.term(k) == b.term(k) {
			if !a.isZero(k) {
				terms = append(terms, keyNames[k]+"="+a.term(k))
			}
			continue
		}
		if !a.isZero(k) {
			dirs = append(dirs, "c2s:"+keyNames[k]+"="+a.term(k))
		}
		if !b.isZero(k) {
			dirs = append(dirs, "s2c:"+keyNames[k]+"="+b.term(k))
		}
	}
	return strings.Join(append(terms, dirs...), ",")
}

// formatDuration writes d so that time.ParseDuration reads it back.
func formatDuration(d time.Duration) string { return d.String() }

// formatPercent writes f without exponent, as short as round-trips.
func formatPercent(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// formatRate writes bits per second in the largest bit unit that divides
// it exactly.
func formatRate(bits uint64) string {
	for _, u := range []struct {
		name string
		div  uint64
	}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if bits%u.div == 0 && bits != 0 {
			return strconv.FormatUint(bits/u.div, 10) + u.name
		}
	}
	return strconv.FormatUint(bits, 10) + "bit"
}
