// Package capture gets TCP packets in and out of tcplab and says what each
// segment is.
//
// Data flows one way: a Source (a pcap or pcapng file opened with Open, or a
// live capture opened with Listen) yields raw frames; a Decoder turns each
// frame into a Segment without allocating, reassembling IP fragments on the
// way (the segment of a fragmented datagram belongs to the frame that
// completes it, as in Wireshark; fragment.go gives the rules and bounds); an
// Annotator follows every connection and gives each Segment an Annotation
// (stream, direction, relative numbers, Wireshark-style analysis labels, TCP
// states); a Writer copies the frames into a pcapng file with the annotation
// as a per-packet comment.
package capture
