package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/internal/safefile"
	"github.com/tcplab/tcplab/lab/netns"
	"github.com/tcplab/tcplab/lab/report"
)

// commandCheck is what `check ... -- COMMAND` was asked: run the command
// in a network namespace of its own, capture its loopback, judge the
// capture.
type commandCheck struct {
	argv   []string // COMMAND and its arguments
	out    string   // -o: the capture file; "": next to -junit, else a temporary file
	junit  string
	asJSON bool
	req    CheckRequest
}

// CommandVerdict is how the command of `check -- COMMAND` ended and what
// its capture holds. The capture's own verdict is a FileVerdict.
type CommandVerdict struct {
	Command     []string `json:"command"`
	Exit        int      `json:"exit"`             // its exit status; -1 when a signal ended it
	Signal      string   `json:"signal,omitempty"` // the signal that ended it
	Interrupted bool     `json:"interrupted,omitempty"`
	Capture     string   `json:"capture"` // the file written
	Frames      int      `json:"frames"`  // frames captured
	Dropped     int      `json:"dropped"` // frames the kernel dropped
	Note        string   `json:"note,omitempty"`
}

// Pass reports whether the command exited 0, uninterrupted, and its
// capture lost nothing.
func (c *CommandVerdict) Pass() bool {
	return c.Exit == 0 && c.Signal == "" && !c.Interrupted && c.Dropped == 0
}

// name is the command as the user typed it.
func (c *CommandVerdict) name() string { return strings.Join(c.Command, " ") }

// ended says how the command ended: "./srv.test exited 0".
func (c *CommandVerdict) ended() string {
	switch {
	case c.Signal != "":
		return fmt.Sprintf("%s was ended by a signal (%s)", c.name(), c.Signal)
	case c.Exit == 0:
		return c.name() + " exited 0"
	}
	return fmt.Sprintf("%s exited with status %d", c.name(), c.Exit)
}

// lost says what the capture lost, or "".
func (c *CommandVerdict) lost() string {
	if c.Dropped == 0 {
		return ""
	}
	return fmt.Sprintf("the kernel dropped %d frames of the capture, so it is incomplete", c.Dropped)
}

// checkRunCommand implements `check ... -- COMMAND`.
func checkRunCommand(prog string, cc commandCheck, stdout, stderr io.Writer) error {
	if len(cc.req.Properties) == 0 && cc.req.Scenario == nil {
		return fmt.Errorf("%w: check -- %s: no properties given; say what its connections must show with -expect PROPERTIES (or -scenario NAME), see %s check -h",
			ErrUsage, cc.argv[0], prog)
	}
	path, err := exec.LookPath(cc.argv[0])
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return fmt.Errorf("%w: check --: cannot run %s: %v; give its path or put it on PATH", ErrUsage, cc.argv[0], err)
	}
	if err := netns.Check(); err != nil {
		return fmt.Errorf("check -- needs user namespaces or root: %s", strings.TrimSuffix(err.Error(), ", or use -no-sandbox"))
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("check --: find own binary to re-execute: %w", err)
	}
	file, err := createCapture(cc.out, cc.junit)
	if err != nil {
		return err
	}
	oc, err := runCommandChild(exe, append([]string{path}, cc.argv[1:]...), file.f, stdout, stderr)
	if err == nil && oc.Error != "" {
		err = errors.New(oc.Error)
	}
	if oc.NoNamespace {
		file.discard()
		return fmt.Errorf("check -- needs user namespaces or root: %w", err)
	}
	if err != nil && oc.Started {
		// What was captured before the failure is kept.
		cv := CommandVerdict{Command: cc.argv, Exit: oc.Exit, Signal: oc.Signal}
		if cerr := file.commit(); cerr != nil {
			return fmt.Errorf("check --: %s, but its capture failed: %w", cv.ended(), errors.Join(err, cerr))
		}
		return fmt.Errorf("check --: %s, but its capture failed: %w; what it holds is in %s", cv.ended(), err, file.path)
	}
	if err != nil {
		file.discard()
		if oc.Interrupted {
			return fmt.Errorf("%w before %s started", ErrInterrupted, cc.argv[0])
		}
		return fmt.Errorf("check --: %w", err)
	}
	if err := file.commit(); err != nil {
		return fmt.Errorf("check --: %w", err)
	}
	cv := CommandVerdict{Command: cc.argv, Exit: oc.Exit, Signal: oc.Signal, Interrupted: oc.Interrupted,
		Capture: file.path, Frames: oc.Frames, Dropped: oc.Dropped, Note: oc.Note}
	req := cc.req
	req.Command = cv.name()
	return reportCommand(prog, cc, &cv, func(o *checkOutput) FileVerdict { return o.check(file.path, req) }, stdout, stderr)
}

// reportCommand judges the capture of `check -- COMMAND` by check,
// printing and writing its verdicts as they come, and returns the error
// its exit status comes from.
func reportCommand(prog string, cc commandCheck, cv *CommandVerdict, check func(*checkOutput) FileVerdict, stdout, stderr io.Writer) error {
	o, err := newCheckOutput(stdout, cc.asJSON, cc.junit)
	if err != nil {
		return err
	}
	o.command(cv)
	if !cc.asJSON {
		dropped := "none dropped"
		if cv.Dropped > 0 {
			dropped = fmt.Sprintf("%d DROPPED", cv.Dropped)
		}
		fmt.Fprintf(stdout, "%s; %d frames captured on its loopback, %s: %s\n", cv.ended(), cv.Frames, dropped, cv.Capture)
		if cv.Note != "" {
			fmt.Fprintf(stderr, "%s: %s\n", prog, cv.Note)
		}
	}
	v := check(o)
	fv := &v
	if !cc.asJSON && (fv.Error == "" || fv.judged > 0 || fv.Scenarios != nil) {
		printVerdict(stdout, *fv)
	}
	if err := o.close(!cv.Pass(), commandCases(cv, fv.File)...); err != nil {
		return err
	}
	var why []string
	if !cv.Pass() && !cv.Interrupted {
		why = append(why, cv.ended())
	}
	if l := cv.lost(); l != "" {
		why = append(why, l)
	}
	if fv.Error != "" && fv.judged == 0 && fv.Scenarios == nil {
		// Nothing was judged: one line says why.
		why = append(why, fv.File+": "+fv.Error)
	} else if !fv.Pass {
		why = append(why, fv.File+" fails its checks")
	}
	switch {
	case cv.Interrupted:
		return fmt.Errorf("%w: %s; the capture so far is in %s", ErrInterrupted, strings.Join(append([]string{cv.ended()}, why...), "; "), cv.Capture)
	case len(why) > 0:
		return fmt.Errorf("check %w: %s", ErrFailed, strings.Join(why, "; "))
	}
	return nil
}

// CommandJUnit turns the verdicts of `check -- COMMAND` into a JUnit
// report: the capture's suite (see JUnit), which begins with a case for
// the command's exit status and one for the capture's completeness.
func CommandJUnit(cv *CommandVerdict, fv *FileVerdict) *report.JUnit {
	j := JUnit([]FileVerdict{*fv})
	j.Suites[0].Cases = append(commandCases(cv, fv.File), j.Suites[0].Cases...)
	return j
}

// commandCases are the JUnit cases of `check -- COMMAND`'s command, in
// the suite of its capture file: its exit status and the capture's
// completeness.
func commandCases(cv *CommandVerdict, file string) []report.JUnitCase {
	run := report.JUnitCase{Name: "run " + cv.name(), Classname: file, SystemOut: cv.ended()}
	if cv.Exit != 0 || cv.Signal != "" || cv.Interrupted {
		run.SystemOut = ""
		run.Failure = &report.JUnitProblem{Message: cv.ended(), Type: "command"}
		if cv.Interrupted {
			run.Failure.Message = "interrupted: " + cv.ended()
		}
	}
	complete := report.JUnitCase{Name: "capture of " + cv.name(), Classname: file,
		SystemOut: fmt.Sprintf("%d frames, none dropped", cv.Frames)}
	if l := cv.lost(); l != "" {
		complete.SystemOut = ""
		complete.Failure = &report.JUnitProblem{Message: l, Type: "capture"}
	}
	return []report.JUnitCase{run, complete}
}

// captureFile is the file `check -- COMMAND` writes its capture in.
type captureFile struct {
	f       *os.File
	path    string
	commit  func() error
	discard func()
}

// createCapture makes the capture file: out; else next to junit (with
// junit's name and .pcapng); else a new temporary file.
func createCapture(out, junit string) (*captureFile, error) {
	if out == "" && junit != "" {
		out = strings.TrimSuffix(junit, filepath.Ext(junit)) + ".pcapng"
		if out == junit {
			out += ".pcapng"
		}
	}
	if out == "" {
		f, err := os.CreateTemp("", "tcplab-check-*.pcapng")
		if err != nil {
			return nil, fmt.Errorf("check --: a temporary capture file: %w; name one with -o FILE", err)
		}
		return &captureFile{f: f, path: f.Name(),
			commit:  f.Close,
			discard: func() { f.Close(); os.Remove(f.Name()) }}, nil
	}
	dir, err := safefile.OpenDir(filepath.Dir(out), false)
	if err != nil {
		return nil, fmt.Errorf("check --: cannot write the capture %s: %w; choose another file with -o FILE", out, err)
	}
	sf, err := dir.Create(filepath.Base(out))
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("check --: cannot write the capture: %w; choose another file with -o FILE", err)
	}
	return &captureFile{f: sf.File, path: out,
		commit:  func() error { defer dir.Close(); return sf.Commit() },
		discard: func() { sf.Discard(); dir.Close() }}, nil
}

// runCommandChild re-executes exe in a new network namespace to run argv
// there (runCheckChild), with the capture file and the outcome pipe as
// its descriptors 3 and 4, the caller's standard input and stdout and
// stderr as the command's. SIGINT and SIGTERM are passed on to the child,
// which passes them on to the command and still writes the capture.
func runCommandChild(exe string, argv []string, capture *os.File, stdout, stderr io.Writer) (commandOutcome, error) {
	var oc commandOutcome
	orders, err := json.Marshal(checkOrders{Command: argv})
	if err != nil {
		return oc, err
	}
	// The child's signals come from here, one at a time: no cancel.
	cmd, err := netns.Command(context.Background(), exe)
	if err != nil {
		return oc, err
	}
	cmd.Env = append(cmd.Env, checkChildEnv+"="+string(orders))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	// Processes the command left behind may hold stdout a while.
	cmd.WaitDelay = 5 * time.Second
	r, w, err := os.Pipe()
	if err != nil {
		return oc, err
	}
	defer r.Close()
	cmd.ExtraFiles = []*os.File{capture, w} // checkCaptureFD, checkOutcomeFD
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	err = cmd.Start()
	w.Close()
	if err != nil {
		return oc, fmt.Errorf("start a network namespace: %w", err)
	}
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		read <- b
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
			continue
		case err = <-waited:
		}
		break
	}
	b := <-read
	if jerr := json.Unmarshal(b, &oc); jerr != nil {
		if err == nil {
			err = errors.New("no word from it")
		}
		return oc, fmt.Errorf("the capture's process in the namespace failed (%v); its messages are above", err)
	}
	return oc, nil
}
