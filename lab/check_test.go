package lab

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/lab/expect"
)

// TestRunJUnit: a run's results become one suite with a case per
// scenario; a failure carries its first line as the message and the whole
// report as the text, and the XML parses.
func TestRunJUnit(t *testing.T) {
	results := []Result{
		{Scenario: "handshake", Pass: true, Seconds: 0.3, Dir: "out/handshake"},
		{Scenario: "halfclose", Seconds: 0.6, Dir: "out/halfclose", Mismatches: []expect.Mismatch{{
			Scenario: "halfclose", Step: 8, Diffs: []expect.Diff{{Field: expect.FieldFlags, Want: "ACK", Got: "RST,ACK"}},
			Expected: "S>C ACK", Actual: "S>C RST,ACK"}}},
		{Scenario: "keepalive", Interrupted: true, Error: "interrupted: the capture so far is kept"},
	}
	b, err := RunJUnit(results).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests int `xml:"tests,attr"`
		Fails int `xml:"failures,attr"`
		Suite struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if doc.Tests != 3 || doc.Fails != 2 || len(doc.Suite.Cases) != 3 {
		t.Fatalf("tests %d, failures %d, cases %d; want 3, 2, 3\n%s", doc.Tests, doc.Fails, len(doc.Suite.Cases), b)
	}
	hc := doc.Suite.Cases[1].Failure
	if hc == nil || hc.Message != "halfclose step 8: field flags: expected ACK vs actual RST,ACK" || !strings.Contains(hc.Text, "actual:   S>C RST,ACK") {
		t.Errorf("halfclose failure %+v", hc)
	}
	if ka := doc.Suite.Cases[2].Failure; ka == nil || !strings.HasPrefix(ka.Message, "interrupted: ") {
		t.Errorf("keepalive failure %+v", ka)
	}
}
