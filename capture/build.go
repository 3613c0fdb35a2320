package capture

import (
	"fmt"
	"slices"

	"github.com/gopacket/gopacket"
)

// Serialize builds one frame from its layers, outermost first, with the
// lengths and checksums filled in (FixLengths, ComputeChecksums); a TCP or
// UDP layer must have had SetNetworkLayerForChecksum called. The frame is a
// copy, not the serialize buffer's memory, so the caller may keep it. Each
// frame wants layers of its own: gopacket's layers keep state from the
// last serialization.
func Serialize(ls ...gopacket.SerializableLayer) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, fmt.Errorf("serialize %d layers: %w", len(ls), err)
	}
	return slices.Clone(buf.Bytes()), nil
}
