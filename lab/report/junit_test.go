package report

import (
	"strings"
	"testing"
)

// TestJUnitSuiteTime: a suite without a time of its own takes the sum of
// its cases' times; one with a time keeps it.
func TestJUnitSuiteTime(t *testing.T) {
	tests := []struct {
		suite JUnitSuite
		want  string
	}{
		{JUnitSuite{Name: "run", Cases: []JUnitCase{{Name: "a", Time: 0.13}, {Name: "b", Time: 0.5}}}, `<testsuite name="run" tests="2" failures="0" errors="0" time="0.63">`},
		{JUnitSuite{Name: "run", Time: 0.7, Cases: []JUnitCase{{Name: "a", Time: 0.13}}}, `<testsuite name="run" tests="1" failures="0" errors="0" time="0.7">`},
	}
	for _, tt := range tests {
		b, err := (&JUnit{Suites: []JUnitSuite{tt.suite}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("JUnit:\n%s\nlacks %s", b, tt.want)
		}
	}
}

// TestJUnitSkipped: a skipped case is counted in its suite's skipped
// attribute (absent when none is) and says why in its skipped element.
func TestJUnitSkipped(t *testing.T) {
	tests := []struct {
		cases []JUnitCase
		want  []string
		not   string
	}{
		{[]JUnitCase{{Name: "a"}, {Name: "b", Skipped: &JUnitProblem{Message: "b.pkt:4: not played"}}},
			[]string{`tests="2" failures="0" errors="0" skipped="1"`, `<skipped message="b.pkt:4: not played"></skipped>`}, ""},
		{[]JUnitCase{{Name: "a"}}, []string{`tests="1" failures="0" errors="0" time=`}, "skipped"},
	}
	for _, tt := range tests {
		b, err := (&JUnit{Suites: []JUnitSuite{{Name: "pkt", Cases: tt.cases}}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("JUnit:\n%s\nlacks %s", b, w)
			}
		}
		if tt.not != "" && strings.Contains(string(b), tt.not) {
			t.Errorf("JUnit:\n%s\nhas %s", b, tt.not)
		}
	}
}
