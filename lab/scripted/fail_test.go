package scripted_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/lab/scripted"
)

// fakeT records the failure of a step and ends its goroutine, as
// testing.T's Fatalf does.
type fakeT struct{ msg string }

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs script with a fakeT and returns its failure, "" if none.
func failure(script func(scripted.TB)) string {
	ft := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		script(ft)
	}()
	<-done
	return ft.msg
}

// TestVerbsFail: each verb fails, with its report, on what the kernel
// really does when the script wants otherwise; the same script passes with
// the right template.
func TestVerbsFail(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	needTUN(t)
	synack := scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(1)}
	tests := []struct {
		name string
		// script runs after the script's SYN; good is the same with the
		// right expectation, bad with a wrong one.
		good, bad func(t scripted.TB, conn *scripted.Conn)
		want      []string // in the bad script's report
	}{{
		name: "Expect: a field differs",
		good: func(t scripted.TB, conn *scripted.Conn) { conn.Expect(t, synack, time.Second) },
		bad: func(t scripted.TB, conn *scripted.Conn) {
			conn.Expect(t, scripted.TCP{Flags: scripted.SYN | scripted.ACK, Ack: scripted.Uint32(2)}, time.Second)
		},
		want: []string{"step 2: want SYN,ACK ack=2; got", "field  got  want", "ack    1    2", "frames seen while waiting (1):", "SYN,ACK seq=0 ack=1"},
	}, {
		name: "Expect: nothing comes",
		good: func(t scripted.TB, conn *scripted.Conn) { conn.Expect(t, synack, time.Second) },
		bad: func(t scripted.TB, conn *scripted.Conn) {
			conn.Expect(t, synack, time.Second)
			conn.Expect(t, scripted.TCP{}, 100*time.Millisecond)
		},
		want: []string{"step 3: want *: nothing came", "frames seen while waiting (0):"},
	}, {
		name: "ExpectAt: too early",
		good: func(t scripted.TB, conn *scripted.Conn) { conn.ExpectAt(t, synack, 0) },
		bad:  func(t scripted.TB, conn *scripted.Conn) { conn.ExpectAt(t, synack, 500*time.Millisecond) },
		want: []string{"at +500ms ± 62.5ms; got", "time", "+500ms ± 62.5ms"},
	}, {
		name: "ExpectNone: something comes",
		good: func(t scripted.TB, conn *scripted.Conn) {
			conn.Expect(t, synack, time.Second)
			conn.ExpectNone(t, 100*time.Millisecond)
		},
		bad:  func(t scripted.TB, conn *scripted.Conn) { conn.ExpectNone(t, 500*time.Millisecond) },
		want: []string{"step 2: want nothing within 500ms; got", "SYN,ACK seq=0 ack=1"},
	}, {
		name: "Send: the kernel's segment was not expected",
		good: func(t scripted.TB, conn *scripted.Conn) {
			conn.Expect(t, synack, time.Second)
			conn.Send(t, scripted.TCP{Flags: scripted.ACK})
		},
		bad: func(t scripted.TB, conn *scripted.Conn) {
			time.Sleep(100 * time.Millisecond) // the SYN/ACK comes meanwhile
			conn.Send(t, scripted.TCP{Flags: scripted.ACK})
		},
		want: []string{"step 2: want nothing before the script sends ACK; got", "SYN,ACK seq=0 ack=1"},
	}}
	for _, tt := range tests {
		for _, good := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/good=%v", tt.name, good), func(t *testing.T) {
				p, err := scripted.Open(scripted.Config{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.Close() })
				listen(t, p)
				conn := p.Dial(serverPort)
				msg := failure(func(tb scripted.TB) {
					conn.Send(tb, scripted.TCP{Flags: scripted.SYN})
					if good {
						tt.good(tb, conn)
					} else {
						tt.bad(tb, conn)
					}
				})
				switch {
				case good && msg != "":
					t.Errorf("the right expectation failed: %s", msg)
				case !good && msg == "":
					t.Errorf("the wrong expectation passed; want a report with %q", tt.want)
				case !good:
					t.Logf("report:\n%s", msg)
					for _, w := range tt.want {
						if !strings.Contains(msg, w) {
							t.Errorf("report lacks %q:\n%s", w, msg)
						}
					}
				}
			})
		}
	}
}
