package scripted

// ChecksumOK reports whether the TCP checksum of an IPv4 or IPv6 frame is
// right, for the tests of package scripted_test.
var ChecksumOK = checksumOK

// ICMPFrame builds an ICMP message's frame, for the tests of package
// scripted_test.
var ICMPFrame = icmpFrame
