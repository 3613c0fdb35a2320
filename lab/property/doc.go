// Package property checks what a CI job asserts about the TCP connections
// of any capture, without a scenario: that each one opened with a full
// handshake, was never reset, closed in a given order, and so on.
//
// Parse reads the comma-separated list that `tcplab check -expect` takes,
// such as "handshake,no-rst,closer=server,teardown=S>C FIN,C>S ACK,C>S FIN,S>C ACK";
// Conns groups annotated packets (capture.Walk's) by connection; and
// Property.Check judges one connection, returning the frames that break the
// property with the segments around them, in the form the scenario matcher
// uses. Like package expect it is pure Go and knows no files.
package property
