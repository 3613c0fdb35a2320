// Package report writes what a scenario run leaves behind: the commented
// capture.pcapng, walkthrough.md, walkthrough.html, ladder.svg, tseq.svg
// (when data flows), points.pcapng (when the lab captured on two hosts)
// and result.json of each scenario, and the index.html over all of them.
//
// It takes plain values: the scenario's expected steps (package expect),
// the annotated packets of the capture (capture.Packet, every frame in
// order), the Verdict that expect.Match gave, and a Result. It knows
// nothing of how they were made, so a runner, a check of someone else's
// capture, or a test can all write the same artifacts.
//
// What a reader sees is in the run's language (expect.Lang: English or
// Chinese); what tools read, the comments of capture.pcapng and
// result.json, is English in every run.
package report
