package pkt

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/lab/scripted"
)

// noiseNote says, for a failure's message, how late the machine ran
// between from and to, when m (Config.Auto's) measured it.
func noiseNote(m *scripted.NoiseMeter, from, to time.Time) string {
	if m == nil {
		return ""
	}
	return fmt.Sprintf(" (noise meanwhile +%v)", m.Late(from, to).Round(time.Microsecond))
}
