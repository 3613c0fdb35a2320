package report

import (
	"fmt"
	"math"
	"strconv"
)

// The axes of a time-sequence graph: ticks at round numbers, in a unit
// that keeps their labels short, which the axis's name states.

// axes draws a plot's frame, grid, ticks and their labels, and the axes'
// names.
func (g *tseqGraph) axes(sc *tseqScale, unit byteUnit, yTicks []float64, tUnit timeUnit, xTicks []float64) {
	b := &g.body
	b.WriteString(`<g class="axes">` + "\n")
	for _, v := range yTicks {
		y := sc.y(v)
		fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s"/>`, sc.x0, y, sc.x1, y, colourTseqGrid)
		fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s"/>`, sc.x0-tseqTick, y, sc.x0, y, colourTseqAxis)
		fmt.Fprintf(b, `<text class="tick y" x="%g" y="%g" text-anchor="end" fill="%s">%s</text>`+"\n", sc.x0-tseqTick-3, y+4, colourTseqAxis, unit.format(v))
	}
	for _, v := range xTicks {
		x := sc.x(v)
		fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s"/>`, x, sc.yTop, x, sc.yBottom, colourTseqGrid)
		fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s"/>`, x, sc.yBottom, x, sc.yBottom+tseqTick, colourTseqAxis)
		fmt.Fprintf(b, `<text class="tick x" x="%g" y="%g" text-anchor="middle" fill="%s">%s</text>`+"\n", x, sc.yBottom+tseqTick+13, colourTseqAxis, xmlText(tUnit.format(v)))
	}
	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="%s"/>`+"\n", sc.x0, sc.yTop, sc.x1-sc.x0, sc.yBottom-sc.yTop, colourTseqAxis)
	fmt.Fprintf(b, `<text class="axis x" x="%g" y="%g" text-anchor="middle" fill="%s">%s</text>`+"\n",
		(sc.x0+sc.x1)/2, sc.yBottom+36, colourTseqAxis, xmlText(fmt.Sprintf(g.t.xAxis, tUnit.name)))
	mid := (sc.yTop + sc.yBottom) / 2
	fmt.Fprintf(b, `<text class="axis y" x="%d" y="%g" text-anchor="middle" transform="rotate(-90 %d %g)" fill="%s">%s</text>`+"\n",
		ladderMargin+4, mid, ladderMargin+4, mid, colourTseqAxis, xmlText(fmt.Sprintf(g.t.yAxis, unit.name)))
	b.WriteString("</g>\n")
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that cuts span
// into about n pieces.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

// ticks returns the multiples of step from below lo to above hi.
func ticks(lo, hi, step float64) []float64 {
	first := math.Floor(lo/step+1e-9) * step
	var ts []float64
	for i := 0; ; i++ {
		v := first + float64(i)*step
		ts = append(ts, v)
		if v >= hi-1e-9*step && i > 0 {
			return ts
		}
	}
}

// byteUnit is the unit of a sequence axis's labels.
type byteUnit struct {
	size float64
	name string
	prec int // decimals of the labels
}

// format writes v bytes as a number of the unit, which the axis's name
// says: "1.5" for 1.5 MiB.
func (u byteUnit) format(v float64) string {
	return strconv.FormatFloat(v/u.size, 'f', u.prec, 64)
}

// byteTicks chooses the unit and the ticks of a sequence axis that covers
// lo to hi.
func byteTicks(lo, hi float64, t *tseqStrings) (byteUnit, []float64) {
	if hi <= lo {
		hi = lo + 1
	}
	u := byteUnit{size: 1, name: t.bytes}
	for _, c := range []byteUnit{{1 << 10, "KiB", 0}, {1 << 20, "MiB", 0}, {1 << 30, "GiB", 0}} {
		if hi >= c.size {
			u = c
		}
	}
	step := niceStep((hi-lo)/u.size, 6)
	if u.size == 1 {
		step = math.Max(step, 1)
	}
	u.prec = decimals(step)
	ts := ticks(lo/u.size, hi/u.size, step)
	for i := range ts {
		ts[i] *= u.size
	}
	return u, ts
}

// timeUnit is the unit of a time axis's labels.
type timeUnit struct {
	size float64 // in seconds
	name string
	prec int
}

// format writes v seconds as a number of the unit, which the axis's name
// says: "250" for 250 ms.
func (u timeUnit) format(v float64) string {
	return strconv.FormatFloat(v/u.size, 'f', u.prec, 64)
}

// timeTicks chooses the unit and the ticks of a time axis from 0 to dur
// seconds.
func timeTicks(dur float64, t *tseqStrings) (timeUnit, []float64) {
	u := timeUnit{size: 1e-6, name: t.us}
	switch {
	case dur >= 1:
		u = timeUnit{size: 1, name: t.s}
	case dur >= 1e-3:
		u = timeUnit{size: 1e-3, name: t.ms}
	}
	step := niceStep(dur/u.size, 8)
	u.prec = decimals(step)
	ts := ticks(0, dur/u.size, step)
	for i := range ts {
		ts[i] *= u.size
	}
	return u, ts
}

// decimals returns how many decimals a multiple of step needs.
func decimals(step float64) int {
	n := 0
	for step < 1-1e-9 && n < 6 {
		step *= 10
		n++
	}
	return n
}

// bytesText writes a count of bytes for a reader: "417 bytes" is "417 B",
// larger counts get a binary unit.
func bytesText(n int64) string {
	v := float64(n)
	for _, u := range []struct {
		size float64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if v >= u.size {
			return fmt.Sprintf("%.1f %s", v/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// secondsText writes a duration for a reader in the units of t.
func secondsText(sec float64, t *tseqStrings) string {
	if sec < 1 {
		return fmt.Sprintf("%.1f %s", sec*1e3, t.ms)
	}
	return fmt.Sprintf("%.2f %s", sec, t.s)
}
