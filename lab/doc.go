// Package lab runs TCP scenarios and judges them.
//
// A Scenario (written in package scenarios) says what a real server and a
// real client do on kernel sockets and which segments must appear on the
// wire, as a list of Steps. Run starts each scenario in a private network
// namespace (package lab/netns) by re-executing the current binary; inside,
// the child captures lo with package capture while the peers talk, then
// annotates every segment, matches the segments against the Steps in order
// (Match), and writes the artifacts: an annotated capture.pcapng, a
// walkthrough.md, a ladder.svg diagram and a result.json. The parent
// collects the Results and writes an index.html over all of them.
package lab
