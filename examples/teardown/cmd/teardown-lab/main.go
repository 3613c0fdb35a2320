// Command teardown-lab runs the example's scenario with tcplab's commands:
// "teardown-lab run" leaves out/echo-teardown/ with the annotated capture,
// the walkthrough and the ladder diagram; "teardown-lab check -scenario
// echo-teardown FILE" judges a capture made elsewhere.
package main

import (
	"example.com/teardown"

	"github.com/tcplab/tcplab/lab"
)

func main() {
	lab.Main(teardown.Scenario(&teardown.Server{}))
}
