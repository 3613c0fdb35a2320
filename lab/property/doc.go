// Package property checks what a CI job asserts about the TCP connections
// of any capture, without a scenario: that each one opened with a full
// handshake, was never reset, closed in a given order, and so on.
//
// Parse reads the comma-separated list that `tcplab check -expect` takes,
// such as "handshake,no-rst,closer=server,teardown=S>C FIN,C>S ACK,C>S FIN,S>C ACK".
// A Judge follows one connection: fed its annotated packets
// (capture.Walk's) one at a time, it keeps only what the properties need
// (counts, the first MaxFrames frames that break each, the segments around
// them, a capture.EndingTracker for the close), so that a capture of any
// size is judged in one pass, in memory bounded by the connections open at
// once. Its Results give the frames that break each property with the
// segments around them, in the form the scenario matcher uses. Conns and
// Property.Check do the same for connections held whole in memory. Like
// package expect it is pure Go and knows no files.
package property
