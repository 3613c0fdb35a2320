package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/lab/expect"
	"github.com/tcplab/tcplab/lab/impair"
	"github.com/tcplab/tcplab/lab/peer"
	"github.com/tcplab/tcplab/lab/report"
)

// anySegment is any segment of an established connection, for the parts
// of an ending's story that the ending does not depend on.
func anySegment() expect.Step {
	var alts []expect.Step
	for _, f := range []capture.Flags{ack, pshAck, finAck, expect.FIN | pshAck} {
		alts = append(alts, expect.C2S(f), expect.S2C(f))
	}
	return expect.Either(alts...).AnyNumber()
}

// ending is a test-only scenario that ends its connection one way: its
// steps are the handshake, anything, and the segments that end it, so
// that the run waits for them.
func ending(name string, server, client func(context.Context, *lab.Env) error, last ...expect.Step) *lab.Scenario {
	return &lab.Scenario{
		Name: "ending-" + name, Summary: "a connection that ends: " + name, Timeout: 10 * time.Second,
		Server: server, Client: client,
		Steps: func(lab.Options) []expect.Step {
			return append(append(expect.Handshake(), anySegment()), last...)
		},
	}
}

// request sends the blog post's request on a new connection and reads the
// response; it returns the connection and its reader.
func request(ctx context.Context, env *lab.Env) (*net.TCPConn, *bufio.Reader, error) {
	c, err := env.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	r, err := peer.Exchange(c, peer.GetRequest())
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, r, nil
}

// untilEOF reads r to its end.
func untilEOF(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read to EOF: %w", err)
	}
	return nil
}

// answerAndClose is a server that answers one request and closes first;
// before it closes, do runs on the socket (corking it, say).
func answerAndClose(do func(*net.TCPConn) error) func(context.Context, *lab.Env) error {
	return func(ctx context.Context, env *lab.Env) error {
		c, _, err := peer.AcceptRequest(ctx, env, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if do != nil {
			if err := do(c); err != nil {
				return err
			}
		}
		if _, err := c.Write([]byte(peer.Response)); err != nil {
			return err
		}
		return c.Close()
	}
}

// endingCases are the endings of TestEndings, each made by real peers
// on real sockets, with the verdict every command must give of it. The
// Go peers stand for any program: what matters is the order of their
// calls, which each case fixes.
func endingCases() []endingCase {
	serverPort := func(env *lab.Env) uint16 {
		ap, _ := netip.ParseAddrPort(env.Addr)
		return ap.Port()
	}
	return []endingCase{{
		// The blog post's close: the client closes first.
		sc:     Handshake(),
		closer: "client", ending: "the client closed first (FIN frame", teardown: "FIN,ACK,FIN,ACK",
	}, {
		sc:     serverClosesFirst(),
		closer: "server", ending: "the server closed first (FIN frame", teardown: "S>C FIN,C>S ACK,C>S FIN,S>C ACK",
	}, {
		// Both close at once across a delay: the FINs cross.
		sc:     SimClose(),
		closer: "simultaneous", ending: "simultaneous close: the FINs crossed", teardown: "FIN,FIN,ACK,ACK",
		notCloser: "client",
	}, {
		// The server's FIN rides on its last data: it corks the socket,
		// writes and closes, so the kernel sends both in one segment.
		sc: ending("fin-on-data", answerAndClose(func(c *net.TCPConn) error {
			raw, err := c.SyscallConn()
			if err != nil {
				return err
			}
			var serr error
			if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 1) }); err != nil {
				return err
			}
			return serr
		}), func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := peer.Exchange(c, peer.GetRequest())
			if err != nil {
				return err
			}
			if err := untilEOF(r); err != nil {
				return err
			}
			return c.Close()
		}, expect.S2C(expect.FIN|pshAck).WithData(), anySegment(), expect.C2S(finAck), expect.S2C(ack).Length(0)),
		closer: "server", ending: "the server closed first (FIN frame", teardown: "S>C FIN,C>S ACK,C>S FIN,S>C ACK",
		finData: capture.ServerToClient,
	}, {
		// The client half-closes after its request; the server answers.
		sc:     HalfClose(),
		closer: "client", ending: "half-close: the server sent 113 bytes", teardown: "C>S FIN,S>C ACK,S>C FIN,C>S ACK",
		halfClose: true,
	}, {
		// The server half-closes after its answer; the client, having read
		// to EOF, still sends a line, which the server reads.
		sc: ending("server-half-close", func(ctx context.Context, env *lab.Env) error {
			c, r, err := peer.AcceptRequest(ctx, env, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write([]byte(peer.Response)); err != nil {
				return err
			}
			if err := c.CloseWrite(); err != nil {
				return err
			}
			b, err := io.ReadAll(r)
			if err != nil || string(b) != "thanks\n" {
				return fmt.Errorf("after its FIN the server read %q, %v; want the client's thanks", b, err)
			}
			return c.Close()
		}, func(ctx context.Context, env *lab.Env) error {
			c, r, err := request(ctx, env)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := untilEOF(r); err != nil {
				return err
			}
			if _, err := c.Write([]byte("thanks\n")); err != nil {
				return fmt.Errorf("write after the server's FIN: %w", err)
			}
			return c.Close()
		}, expect.C2S(pshAck).WithData(), anySegment(), expect.C2S(finAck), expect.S2C(ack).Length(0)),
		closer: "server", ending: "half-close: the client sent 7 bytes", teardown: "S>C FIN,C>S ACK,C>S FIN,S>C ACK",
		halfClose: true,
	}, {
		// connect() to a port where nothing listens (stream 0), then an
		// abortive close with SO_LINGER 0 in ESTABLISHED (stream 1).
		sc:      Reset(),
		streams: []string{"refused: the server answered the client's SYN with a RST", "reset by the server (frame"},
		rst:     true, closer: "", teardown: "S>C RST",
	}, {
		// The client aborts with SO_LINGER 0 after its answer: a RST from
		// the client in ESTABLISHED, no FIN at all.
		sc: ending("client-abort", func(ctx context.Context, env *lab.Env) error {
			c, r, err := peer.AcceptRequest(ctx, env, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write([]byte(peer.Response)); err != nil {
				return err
			}
			if _, err := r.ReadByte(); !errors.Is(err, syscall.ECONNRESET) {
				return fmt.Errorf("read after the client's abort: %v, want ECONNRESET", err)
			}
			return nil
		}, func(ctx context.Context, env *lab.Env) error {
			c, _, err := request(ctx, env)
			if err != nil {
				return err
			}
			if err := c.SetLinger(0); err != nil {
				c.Close()
				return err
			}
			return c.Close()
		}, expect.C2S(expect.RST|ack)),
		closer: "", ending: "reset by the client (frame", rst: true, teardown: "C>S RST",
	}, {
		// The server closes; the client, ignoring the EOF, writes: the
		// server's kernel has no socket to give the data to, and resets.
		sc: ending("data-after-close", answerAndClose(nil), func(ctx context.Context, env *lab.Env) error {
			c, r, err := request(ctx, env)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := untilEOF(r); err != nil {
				return err
			}
			if _, err := c.Write([]byte("more\n")); err != nil {
				return fmt.Errorf("write after the server closed: %w", err)
			}
			if _, err := r.ReadByte(); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read after the write: %v, want ECONNRESET or EOF", err)
			}
			return nil
		}, expect.C2S(pshAck).WithData(), expect.S2C(expect.RST)),
		closer: "server", ending: "data after close: the client sent 5 bytes", rst: true, teardown: "S>C FIN,C>S ACK,S>C RST",
	}, {
		// The server closes with the request unread: Linux resets the
		// connection instead of sending a FIN (RFC 2525 section 2.17).
		sc: ending("close-unread", func(ctx context.Context, env *lab.Env) error {
			c, err := env.Accept(ctx, nil)
			if err != nil {
				return err
			}
			buf := make([]byte, 1)
			if _, err := c.Read(buf); err != nil {
				return err
			}
			return c.Close()
		}, func(ctx context.Context, env *lab.Env) error {
			c, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write(peer.GetRequest()); err != nil {
				return err
			}
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
				return fmt.Errorf("read: %v, want ECONNRESET", err)
			}
			return nil
		}, expect.S2C(expect.RST|ack)),
		closer: "", ending: "reset by the server (frame", rst: true, teardown: "S>C RST",
	}, {
		// The client's FIN is lost on its way in: it is sent again after
		// the client's retransmission timeout, and the close completes.
		sc: func() *lab.Scenario {
			sc := ending("lost-fin", peer.Server(nil), func(ctx context.Context, env *lab.Env) error {
				c, _, err := request(ctx, env)
				if err != nil {
					return err
				}
				return c.Close()
			}, expect.C2S(finAck).With(capture.Retransmission), anySegment(), expect.C2S(ack).Length(0))
			sc.NeedsNamespace = true
			sc.Setup = func(ctx context.Context, env *lab.Env) (func(), error) {
				in, err := impair.Install(impair.DropFirstFIN(serverPort(env)))
				if err != nil {
					return nil, err
				}
				return func() { in.Remove() }, nil
			}
			return sc
		}(),
		closer: "client", ending: "the client closed first (FIN frame", teardown: "FIN,ACK,FIN,ACK", retransmittedFIN: true,
	}}
}

// endingCase is one way a connection ends and what every command must say
// of it.
type endingCase struct {
	sc *lab.Scenario
	// closer is the closer= value that must pass ("" when no FIN: every
	// closer= fails); notCloser one that must fail.
	closer, notCloser string
	// ending is in annotate -summary's account and the walkthrough's;
	// streams, for a capture of several connections, one for each.
	ending  string
	streams []string
	// teardown must pass as check -expect teardown=...
	teardown         string
	halfClose, rst   bool
	finData          capture.Dir // the side whose FIN carried data (with a FIN in it)
	retransmittedFIN bool
}

// TestEndings runs every way a connection ends that the lab can make with
// real peers, and checks that annotate -summary, check -expect (closer,
// half-close, teardown, no-rst) and the walkthrough say the same, and
// that tshark's completeness agrees on which of FIN and RST were seen.
func TestEndings(t *testing.T) {
	testenv.NetNS(t)
	cases := endingCases()
	var scs []*lab.Scenario
	for _, c := range cases {
		scs = append(scs, c.sc)
	}
	out := t.TempDir()
	results, err := lab.Run(context.Background(), scs, lab.Config{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		c := cases[i]
		t.Run(r.Scenario, func(t *testing.T) {
			if !r.Pass {
				t.Fatalf("the run failed, so the ending was not made:\n%s", r.Failure())
			}
			path := filepath.Join(r.Dir, report.CaptureFile)
			sums := summaries(t, path)
			want := c.streams
			if want == nil {
				want = []string{c.ending}
			}
			if len(sums) != len(want) {
				t.Fatalf("%d connections, want %d", len(sums), len(want))
			}
			for k, s := range sums {
				if !strings.Contains(s.Ending.String(), want[k]) {
					t.Errorf("stream %d: annotate says %q, want it to say %q", k, s.Ending.String(), want[k])
				}
				if c.finData == capture.ServerToClient && (s.Ending.FIN[1].Frame == 0 || s.Ending.FIN[1].Data == 0) {
					t.Errorf("stream %d: the server's FIN carries no data: %+v", k, s.Ending.FIN[1])
				}
			}
			// The walkthrough says it in the same words.
			walk := readFile(t, filepath.Join(r.Dir, report.WalkthroughFile))
			for k, s := range sums {
				if !strings.Contains(walk, s.Ending.String()) {
					t.Errorf("walkthrough lacks stream %d's ending %q", k, s.Ending.String())
				}
			}
			// check -expect, on the connection the case is about (the
			// last).
			stream := strconv.Itoa(len(sums) - 1)
			checks := []struct {
				expect string
				pass   bool
			}{
				{"teardown=" + c.teardown, true},
				{"half-close", c.halfClose},
				{"no-rst", !c.rst},
			}
			for _, closer := range []string{"client", "server", "simultaneous"} {
				checks = append(checks, struct {
					expect string
					pass   bool
				}{"closer=" + closer, closer == c.closer})
			}
			if c.retransmittedFIN {
				checks = append(checks, struct {
					expect string
					pass   bool
				}{"no-retransmission", false})
			}
			for _, ck := range checks {
				var stdout, stderr bytes.Buffer
				code := lab.Command("tcplab", []string{"check", "-expect", ck.expect, "-stream", stream, path}, &stdout, &stderr, All())
				if (code == lab.ExitPass) != ck.pass {
					t.Errorf("check -expect %s: exit %d, want pass %v:\n%s%s", ck.expect, code, ck.pass, stdout.String(), stderr.String())
				}
			}
			tsharkAgrees(t, path, sums)
		})
	}
}

// summaries annotates the capture at path and returns its connections'
// summaries, by stream.
func summaries(t *testing.T, path string) []capture.ConnSummary {
	t.Helper()
	f, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := capture.NewAnnotator()
	if _, err := capture.Walk(f, a, func(*capture.Packet) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return a.Conns()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := exec.Command("cat", path).Output()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// tsharkAgrees checks tshark's view of each connection's completeness
// (tcp.completeness: 16 a FIN, 32 a RST) against capture.Ending's.
func tsharkAgrees(t *testing.T, path string, sums []capture.ConnSummary) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-r", path, "-2", "-Y", "tcp", "-T", "fields",
		"-e", "tcp.stream", "-e", "tcp.completeness").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	complete := map[int]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		cols := strings.Split(line, "\t")
		if len(cols) != 2 {
			continue
		}
		st, _ := strconv.Atoi(cols[0])
		v, _ := strconv.ParseInt(strings.TrimPrefix(cols[1], "0x"), 0, 32)
		if strings.HasPrefix(cols[1], "0x") {
			v, _ = strconv.ParseInt(cols[1][2:], 16, 32)
		}
		complete[st] = max(complete[st], int(v))
	}
	for k, s := range sums {
		e := &s.Ending
		fin := e.FIN[0].Frame != 0 || e.FIN[1].Frame != 0
		rst := e.Reset.Frame != 0
		if got := complete[k]&16 != 0; got != fin {
			t.Errorf("stream %d: tshark's completeness %#x says FIN %v, tcplab %v (%s)", k, complete[k], got, fin, e)
		}
		if got := complete[k]&32 != 0; got != rst {
			t.Errorf("stream %d: tshark's completeness %#x says RST %v, tcplab %v (%s)", k, complete[k], got, rst, e)
		}
	}
}

// TestEndingAbandoned: a real capture cut after the request, before any
// FIN or RST, is a connection the capture leaves open, and says so.
func TestEndingAbandoned(t *testing.T) {
	f, err := capture.Open(filepath.Join("testdata", "readme-halfclose.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkts []capture.Packet
	if _, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
		if p.TCP && p.Segment.Flags&(capture.FIN|capture.RST) == 0 && len(pkts) < 5 {
			pkts = append(pkts, p.Keep())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e := capture.EndingOf(pkts)
	if !e.Abandoned() || e.Closer() != capture.NoCloser || e.String() != "not closed: no FIN or RST by the end of the capture" {
		t.Errorf("the first %d segments: %s (closer %v)", len(pkts), e.String(), e.Closer())
	}
}

// TestSameStepNumbers: run judges its own peers with a scenario's own
// steps, check judges anyone's capture with the steps for any peers;
// on a capture of a run both give every segment the same step number, so
// the walkthrough, the ladder and check's report agree.
func TestSameStepNumbers(t *testing.T) {
	for _, sc := range []*lab.Scenario{HalfClose(), Walkthrough(), Reset()} {
		t.Run(sc.Name, func(t *testing.T) {
			f, err := capture.Open(readmeCapture(sc.Name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var pkts []capture.Packet
			if _, err := capture.Walk(f, capture.NewAnnotator(), func(p *capture.Packet) error {
				pkts = append(pkts, p.Keep())
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			run := expect.Match(sc.Name, sc.Steps(lab.Options{}), pkts, expect.Options{})
			check := expect.Match(sc.Name, sc.Steps(lab.Options{AnyPeers: true}), pkts, expect.Options{})
			if !run.Pass || !check.Pass {
				t.Fatalf("run's steps pass %v, check's %v", run.Pass, check.Pass)
			}
			for i := range pkts {
				if run.StepOf[i] != check.StepOf[i] {
					t.Errorf("frame %d: step %s in run, %s in check", pkts[i].Segment.Frame, run.StepOf[i], check.StepOf[i])
				}
			}
		})
	}
}
