package capture

// wiresharkFields are the tcp.analysis fields of Wireshark 4.0 that the
// labels stand for, by label.
var wiresharkFields = [...]string{
	KeepAlive:              "tcp.analysis.keep_alive",
	KeepAliveACK:           "tcp.analysis.keep_alive_ack",
	WindowUpdate:           "tcp.analysis.window_update",
	ZeroWindow:             "tcp.analysis.zero_window",
	ZeroWindowProbe:        "tcp.analysis.zero_window_probe",
	ZeroWindowProbeACK:     "tcp.analysis.zero_window_probe_ack",
	WindowFull:             "tcp.analysis.window_full",
	DupACK:                 "tcp.analysis.duplicate_ack",
	Retransmission:         "tcp.analysis.retransmission",
	FastRetransmission:     "tcp.analysis.fast_retransmission",
	SpuriousRetransmission: "tcp.analysis.spurious_retransmission",
	OutOfOrder:             "tcp.analysis.out_of_order",
	LostSegment:            "tcp.analysis.lost_segment",
	ACKLostSegment:         "tcp.analysis.ack_lost_segment",
	ReusedPorts:            "tcp.analysis.reused_ports",
	TFOSyn:                 "tcp.analysis.tfo_syn",
	TFOAck:                 "tcp.analysis.tfo_ack",
	TFOIgnored:             "tcp.analysis.tfo_ignored",
}

// WiresharkField returns the Wireshark display filter field the label
// stands for, such as "tcp.analysis.keep_alive".
func (l Label) WiresharkField() string {
	if int(l) < len(wiresharkFields) {
		return wiresharkFields[l]
	}
	return ""
}

// AsWireshark returns the labels Wireshark 4.0 gives the segment that
// tcplab labels l, undoing tcplab's one deliberate difference: Linux
// probes a zero window with an empty segment one byte below the window,
// which Wireshark calls a keep-alive, and Wireshark has no label for the
// answer but zero-window. payload is the segment's length.
func (l Labels) AsWireshark(payload int) Labels {
	if l.Has(ZeroWindowProbe) && payload == 0 {
		l = l.Without(ZeroWindowProbe).With(KeepAlive)
	}
	return l.Without(ZeroWindowProbeACK)
}
