// Package capture gets TCP packets in and out of tcplab and says what each
// segment is.
//
// Data flows one way: a Source (a pcap or pcapng file opened with Open,
// gzip, zstd or lz4 compressed or not, or a live capture opened with
// Listen) yields raw frames; a Decoder turns each
// frame into a Segment without allocating, reassembling IP fragments on the
// way (the segment of a fragmented datagram belongs to the frame that
// completes it, as in Wireshark; fragment.go gives the rules and bounds); an
// Annotator follows every connection and gives each Segment an Annotation
// (stream, direction, relative numbers, Wireshark-style analysis labels, TCP
// states); a Writer copies the frames into a pcapng file with the annotation
// as a per-packet comment.
//
// A file is read through gopacket's pcap and pcapng readers, but a framer
// (frame.go) checks each record's lengths first, against what holds it, the
// file's remaining bytes and MaxPacket: no file, sparse or compressed,
// makes the readers allocate more than a record can hold.
package capture
