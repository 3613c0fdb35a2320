// Package checksrv is a server whose test lab's tests build with
// `go test -c` and run under `tcplab check -- ./checksrv.test`, as the
// README's CI section does with your server's tests.
package checksrv

import (
	"bufio"
	"io"
	"net"
)

// Serve answers the first connection of ln with the line it sent, then
// closes it: the server closes first.
func Serve(ln net.Listener) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	_, err = io.WriteString(c, line)
	return err
}
