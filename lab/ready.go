package lab

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// listensAlone notices a server that listens on the scenario's port by
// itself (net.Listen) instead of through Env.Listen or Env.Accept: the
// runner waits for those to say the server is ready, and would otherwise
// wait until the timeout to report that a listening server did not listen.
type listensAlone struct {
	addr  string
	port  int
	since time.Time // when the listener was first seen; zero: not seen
}

// graceAlone is how long a listener may stand before Env.Listen says the
// server is ready: Env.Listen says so right after listen(), so a listener
// still unannounced after it was made elsewhere.
const graceAlone = time.Second

func newListensAlone(addr string) *listensAlone {
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return &listensAlone{addr: addr, port: port}
}

// check returns the error to report when something has listened on the
// port for graceAlone at now without the server saying it is ready;
// listening reports whether something listens on the port now.
func (l *listensAlone) check(now time.Time, listening func(port int) bool) error {
	if l.port == 0 || !listening(l.port) {
		l.since = time.Time{}
		return nil
	}
	if l.since.IsZero() {
		l.since = now
	}
	if now.Sub(l.since) < graceAlone {
		return nil
	}
	return fmt.Errorf("server: something listens on %s, but not through env.Listen: a scenario's server listens with env.Listen(ctx, nil) or env.Accept(ctx, nil), which tell the lab it is ready to start the client; net.Listen does not", l.addr)
}

// listening reports whether a socket listens on port in this namespace.
func listening(port int) bool {
	v4, v6, any6 := listeners(port)
	return v4 || v6 || any6
}
