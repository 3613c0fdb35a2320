// Package expect is the language in which a scenario says which TCP
// segments must appear on the wire, and the matcher that judges a capture
// against it.
//
// A Step expects one segment (C2S, S2C), a choice (Either for single
// segments, OneOf for sequences), or none at all (Note, a remark in the
// story). Refinements return copies: S2C(ACK).AckNum(415).Length(0) checks
// the direction, the flags, the acknowledgement number and the length, and
// nothing else, because a step says what TCP guarantees and nothing more.
// Optional, AnyNumber and Times repeat a step.
//
// Match takes the annotated packets of a capture (capture.Packet, as
// capture.Walk yields them) and returns a Verdict: which step each segment
// matched, and for each connection that went wrong a Mismatch in the manner
// of packetdrill, naming every field that differs, with the segments around
// it. The package knows nothing of runs, peers or files: it is pure Go and
// builds with CGO_ENABLED=0.
//
// Handshake, ClientCloses and ServerCloses are the fragments most
// scenarios share, explained in English and Chinese.
package expect
