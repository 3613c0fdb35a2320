package scenarios

import "github.com/tcplab/tcplab/lab"

// Scripted returns the scenarios with a scripted side (package
// lab/scripted): a script that sends what a well-behaved peer never
// would, and the kernel's answer, each citing the RFC section it shows.
// They are not in All: a scripted peer stands behind a TUN device, which
// needs root, while All runs without it (tcplab run leaves them out when
// it cannot make one, and says so), and they speak IPv4 only.
func Scripted() []*lab.Scenario {
	return []*lab.Scenario{RSTChallenge(), ZeroWindowProbe(), SYNOptions()}
}

// scriptPort is the kernel's server port, as the script dials it.
func scriptPort(env *lab.Env) uint16 { return uint16(env.Options.ServerPort()) }

// Every returns every scenario tcplab's commands know: All, then
// Scripted.
func Every() []*lab.Scenario { return append(All(), Scripted()...) }
