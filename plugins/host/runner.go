package host

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"

	"github.com/hashicorp/go-plugin/runner"
)

// maxHandshake bounds the first line of a plugin's standard output, its
// handshake (about 1 KiB with the certificate), that go-plugin gets: its
// scanner takes lines of at most 64 KiB.
const maxHandshake = 32 << 10

// procRunner runs a plugin's command for go-plugin (ClientConfig.RunnerFunc)
// as go-plugin's own runner does, but for the process's standard output:
// go-plugin reads it with a bufio.Scanner, takes the first line (the
// handshake) and throws the rest away, and a line longer than the
// scanner's 64 KiB (a record a plugin in another language prints, the
// output of a child process or of a C library in a Go plugin) ends its
// reading for good. The process then blocks in its next write to its
// standard output once the pipe is full, in the middle of a call, until it
// is taken as hung. Here go-plugin gets the first line only, and the rest
// goes to relay, line by line, for as long as the process writes it.
// go-plugin's end is closed when the process's standard output is, so
// that go-plugin still waits for it before it reaps the process.
type procRunner struct {
	cmd    *exec.Cmd
	out    io.ReadCloser  // the process's standard output
	stderr io.ReadCloser  // the process's standard error
	errR   *io.PipeReader // go-plugin's end: the standard error (copyStderr)
	errW   *io.PipeWriter
	hsR    *io.PipeReader // go-plugin's end: the handshake line
	hsW    *io.PipeWriter
	relay  *lineWriter // the rest of the standard output
}

var _ runner.Runner = (*procRunner)(nil)

// newProcRunner prepares cmd, which is not started yet.
func newProcRunner(cmd *exec.Cmd, relay *lineWriter) (*procRunner, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	r := &procRunner{cmd: cmd, out: out, stderr: stderr, relay: relay}
	r.hsR, r.hsW = io.Pipe()
	r.errR, r.errW = io.Pipe()
	return r, nil
}

// Start starts the process and the copies of its standard output and
// standard error.
func (r *procRunner) Start(context.Context) error {
	if err := r.cmd.Start(); err != nil {
		return err
	}
	go r.copyStdout()
	go r.copyStderr()
	return nil
}

// copyStdout gives go-plugin the first line of the process's standard
// output (one longer than maxHandshake is cut there, and go-plugin refuses
// it) and relays the rest, until the process's standard output is closed.
func (r *procRunner) copyStdout() {
	br := bufio.NewReaderSize(r.out, maxHandshake)
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		line = append(line, '\n')
	}
	if len(line) > 0 {
		_, _ = r.hsW.Write(line) // go-plugin reads its end until it is closed
	}
	if err == nil || errors.Is(err, bufio.ErrBufferFull) {
		_, _ = io.Copy(r.relay, br)
		r.relay.Flush()
	}
	_ = r.hsW.Close()
}

// copyStderr gives go-plugin the process's standard error, line by line,
// each JSON log line made safe for go-plugin to parse (safeLogLine), until
// the process's standard error is closed. A line longer than maxLogLine,
// which go-plugin relays in pieces without parsing it, goes unchanged.
func (r *procRunner) copyStderr() {
	br := bufio.NewReaderSize(r.stderr, maxLogLine)
	piece := false // the line goes on from a piece longer than maxLogLine
	for {
		line, err := br.ReadSlice('\n')
		if (err == nil || (err == io.EOF && len(line) > 0)) && !piece {
			line = safeLogLine(line) // a last line without its newline too: go-plugin parses it
		}
		if _, werr := r.errW.Write(line); werr != nil {
			break
		}
		piece = errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !piece {
			break
		}
	}
	_ = r.errW.Close()
}

func (r *procRunner) Wait(context.Context) error { return r.cmd.Wait() }

// Kill kills the process; it may be called more than once.
func (r *procRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *procRunner) Stdout() io.ReadCloser { return r.hsR }
func (r *procRunner) Stderr() io.ReadCloser { return r.errR }
func (r *procRunner) Name() string          { return r.cmd.Path }

// ID is the process's pid once it started, else "" (go-plugin then has
// nothing to kill).
func (r *procRunner) ID() string {
	if r.cmd.Process == nil {
		return ""
	}
	return strconv.Itoa(r.cmd.Process.Pid)
}

func (r *procRunner) Diagnose(context.Context) string { return "" }

// The plugin runs on this host: addresses need no translation.

func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}
