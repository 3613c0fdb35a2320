// Command checkprog is the program that lab's tests run under
// `tcplab check -- COMMAND`: a TCP server and its client in one binary.
// The server listens on 127.0.0.1:0, the client connects and sends a line,
// the server answers it, and then one of them closes as -close says.
//
//	checkprog                   the server closes first, the client then
//	checkprog -close client     the client closes first, the server then
//	checkprog -close reset      the server resets the connection
//	checkprog -exit 1           as the first, then exits 1
//	checkprog -notcp            no TCP at all: prints a line and exits
//	checkprog -close client -hold   the client keeps the connection open until
//	                                a signal ends the program (a minute at most)
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	closer := flag.String("close", "server", "who ends the connection: server, client, or reset (the server resets it)")
	exit := flag.Int("exit", 0, "exit status once the connection is over")
	noTCP := flag.Bool("notcp", false, "make no connection at all")
	hold := flag.Bool("hold", false, "after the exchange, say so and keep the connection open until a signal ends the program")
	flag.Parse()
	if *noTCP {
		fmt.Println("checkprog: no connection")
		os.Exit(*exit)
	}
	if err := run(*closer, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "checkprog:", err)
		os.Exit(2)
	}
	os.Exit(*exit)
}

func run(closer string, hold bool) error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- serve(ln, closer) }()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		return err
	}
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("client: read the answer: %w", err)
	}
	fmt.Printf("checkprog: the server said %q\n", line)
	if hold {
		fmt.Println("checkprog: holding the connection")
		time.Sleep(time.Minute)
	}
	if closer != "client" {
		// Wait for the server's FIN (or RST) before closing.
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) && closer != "reset" {
			return fmt.Errorf("client: wait for the server's close: %w", err)
		}
	}
	if err := c.Close(); err != nil {
		return err
	}
	return <-served
}

func serve(ln net.Listener, closer string) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("server: read the request: %w", err)
	}
	if _, err := io.WriteString(c, line); err != nil {
		return err
	}
	switch closer {
	case "client":
		// Wait for the client's FIN, then close.
		if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("server: want the client's FIN, got %v", err)
		}
	case "reset":
		c.(*net.TCPConn).SetLinger(0)
	}
	return c.Close()
}
