// Package capgen makes large synthetic captures for benchmarks and memory
// tests: a pcap file of busy bulk and request/response connections
// (WriteBulk), and a Source of a million short connections made on the
// fly (ShortConns). The frames are built byte by byte into a reused
// buffer, since a million gopacket serializations would take longer than
// the benchmarks they feed. It does not import capture, so that capture's
// own tests can use it.
package capgen
