package report

import (
	"slices"
	"testing"

	"github.com/tcplab/tcplab/lab/expect"
)

// TestTimeSequenceTicks: the axes' ticks fall on round numbers of a unit
// that keeps the labels short, and cover the range.
func TestTimeSequenceTicks(t *testing.T) {
	en := byLang(tseqTexts, expect.English)
	bytes := []struct {
		lo, hi float64
		unit   string
		labels []string
	}{
		{1, 113, "bytes", []string{"0", "20", "40", "60", "80", "100", "120"}},
		{0, 16806, "KiB", []string{"0", "5", "10", "15", "20"}},
		{1, 1 << 20, "MiB", []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 1 << 30, "GiB", []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
	}
	for _, tt := range bytes {
		u, ts := byteTicks(tt.lo, tt.hi, en)
		var labels []string
		for _, v := range ts {
			labels = append(labels, u.format(v))
		}
		if u.name != tt.unit || !slices.Equal(labels, tt.labels) || ts[0] > tt.lo || ts[len(ts)-1] < tt.hi {
			t.Errorf("byteTicks(%g, %g) = %s %q, want %s %q covering the range", tt.lo, tt.hi, u.name, labels, tt.unit, tt.labels)
		}
	}
	times := []struct {
		dur    float64
		unit   string
		labels []string
	}{
		{0.00075, "µs", []string{"0", "100", "200", "300", "400", "500", "600", "700", "800"}},
		{0.7522, "ms", []string{"0", "100", "200", "300", "400", "500", "600", "700", "800"}},
		{1.92, "s", []string{"0.0", "0.5", "1.0", "1.5", "2.0"}},
		{15, "s", []string{"0", "2", "4", "6", "8", "10", "12", "14", "16"}},
	}
	for _, tt := range times {
		u, ts := timeTicks(tt.dur, en)
		var labels []string
		for _, v := range ts {
			labels = append(labels, u.format(v))
		}
		if u.name != tt.unit || !slices.Equal(labels, tt.labels) || ts[len(ts)-1] < tt.dur {
			t.Errorf("timeTicks(%g) = %s %q, want %s %q covering it", tt.dur, u.name, labels, tt.unit, tt.labels)
		}
	}
}
