package lab

import (
	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/lab/expect"
)

// CheckFile matches the TCP segments of a capture file, made by any tool of
// any program, against a scenario's expected steps.
func CheckFile(path string, sc *Scenario, opt Options, mo expect.Options) (expect.Verdict, error) {
	f, err := capture.Open(path)
	if err != nil {
		return expect.Verdict{}, err
	}
	defer f.Close()
	var pkts []capture.Packet
	_, err = capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		if p.TCP {
			q := *p
			q.Data = nil // the matcher needs the annotation, not the bytes
			pkts = append(pkts, q)
		}
		return nil
	})
	if err != nil {
		return expect.Verdict{}, err
	}
	return expect.Match(sc.Name, sc.Steps(opt), pkts, mo), nil
}
