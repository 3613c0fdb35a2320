package lab

import (
	"github.com/tcplab/tcplab/capture"
)

// CheckFile matches the TCP segments of a capture file, made by any tool of
// any program, against a scenario's expected steps.
func CheckFile(path string, sc *Scenario, opt Options, mo MatchOptions) (Verdict, error) {
	f, err := capture.Open(path)
	if err != nil {
		return Verdict{}, err
	}
	defer f.Close()
	var seen []Seen
	_, err = capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		if p.TCP {
			seen = append(seen, Seen{Segment: p.Segment, Annotation: p.Annotation})
		}
		return nil
	})
	if err != nil {
		return Verdict{}, err
	}
	return Match(sc.Name, sc.Steps(opt), seen, mo), nil
}
