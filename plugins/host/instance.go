package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// instance is one plugin process. Its counters are guarded by the pool's
// mutex; client and rpc are set once at start.
type instance struct {
	client *plugin.Client
	conn   *grpc.ClientConn
	rpc    handlerpb.HandlerClient
	stream *callStream // nil: the plugin does not offer HandleStream
	pid    int
	said   *stderrTail // the plain lines it wrote to its standard error last

	inflight int       // calls in flight on it
	lastUsed time.Time // when its last call ended (or it started)
	answered time.Time // when it last answered a call
	dead     bool      // removed from the pool; calls in flight finish or fail
	retiring bool      // dead, and to be stopped once its last call in flight ended
	served   bool      // answered a call: the start is known good
	crashed  bool      // removed as dead (not stopped as idle or at Close)
}

// exited reports whether the process is gone.
func (i *instance) exited() bool { return i.client.Exited() }

// gone reports whether the process is gone, also when it died while a
// process it started still holds its output, which go-plugin waits for
// (processExited). It costs a system call: for the supervisor and failed
// calls, not for every call.
func (i *instance) gone() bool { return i.exited() || processExited(i.pid) }

// closing reports whether the connection to the process is closing or
// closed: the process exited, or the host is stopping it.
func (i *instance) closing() bool {
	return i.gone() || (i.conn != nil && i.conn.GetState() == connectivity.Shutdown)
}

// handle makes one call on the instance: on its stream when it has one,
// else (or for a request too large for the stream's envelope) as a Handle
// call of its own.
// size is proto.Size(req); the call ends at deadline (the plugin's timeout)
// if ctx has not ended it before.
func (i *instance) handle(ctx context.Context, req *handlerpb.HandleRequest, size int, deadline time.Time) (*handlerpb.HandleResponse, error) {
	if i.stream != nil && i.stream.fits(size) {
		return i.stream.call(ctx, req, size, deadline)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return i.rpc.Handle(ctx, req)
}

// killAfter bounds how long kill waits for a process to stop before it
// kills the process and its process group itself. go-plugin's Kill asks the
// process to shut down and kills it if it has not exited 2 s later, but it
// waits for the answer to that request without a bound: a process that is
// stopped (SIGSTOP) or wholly frozen never answers, and would never be
// killed. The bound is a little above go-plugin's 2 s, so that a process
// that does answer gets go-plugin's full grace period.
const killAfter = 3 * time.Second

// kill stops the process: it ends the stream (so that the plugin's server
// can stop gracefully), then go-plugin asks the process to shut down, waits
// up to two seconds, and kills it; a process that has not exited after
// killAfter is killed with its process group. It blocks until the process
// is gone, and then stops the processes it left in its group.
func (i *instance) kill() {
	if i.stream != nil {
		i.stream.close()
	}
	stopProcess(i.client, i.pid)
}

// groupGrace is how long the processes a plugin left in its group after it
// exited have between SIGTERM and SIGKILL.
const groupGrace = 2 * time.Second

// stopProcess stops a client's process, pid (0 if unknown), bounded by
// killAfter as kill describes, and then what the process left running in
// its process group (endGroup).
func stopProcess(client *plugin.Client, pid int) {
	if pid <= 0 {
		client.Kill()
		return
	}
	t := time.AfterFunc(killAfter, func() {
		// Until go-plugin has reaped the process, its pid, which is
		// also its process group's id (see detach), cannot have been
		// reused: the group is the plugin's.
		if !client.Exited() {
			killGroup(pid)
		}
	})
	client.Kill()
	t.Stop()
	endGroup(pid)
}

// maxLogLine is the longest log line of a plugin's (on its original standard
// error, in go-plugin's JSON format) that reaches the bridge's log at its own
// level: go-plugin's 64 KiB default dropped at info level an error line that
// quoted a record. It is also the buffer go-plugin allocates per process.
const maxLogLine = 1 << 20

// spawn starts one process of the plugin and connects to it. It is called
// without the pool's lock held.
func (p *Pool) spawn() (*instance, error) {
	tlsConfig, certPEM, err := newClientTLS()
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", p.name, err)
	}
	// Until its start ended, Close may abort it: the process is then
	// killed with its group (it has not answered, so it cannot be asked
	// to shut down), and go-plugin's start fails at once.
	abortCtx, abort := context.WithCancel(context.Background())
	cmd := exec.CommandContext(abortCtx, p.path, p.args...)
	cmd.Cancel = func() error {
		// os.Process knows whether the process was reaped; until then, or
		// while its group has a member, the group's id is the plugin's
		// (see endGroup).
		if err := cmd.Process.Kill(); err != nil {
			return err
		}
		killGroup(cmd.Process.Pid)
		return nil
	}
	cmd.Env = append(slices.Clip(p.env), clientCertEnv+"="+string(certPEM))
	detach(cmd)
	if !p.trackStart(cmd, abort) {
		abort()
		return nil, fmt.Errorf("plugin %s: %w", p.name, ErrClosed)
	}
	defer p.untrackStart(cmd)
	stdout := &lineWriter{emit: p.relay("stdout")}
	stderr := &lineWriter{emit: p.relay("stderr")}
	rawStdout := &lineWriter{emit: p.relay("stdout")} // the process's own (procRunner)
	said := &stderrTail{}
	var sockDir string // go-plugin's PLUGIN_UNIX_SOCKET_DIR, which it removes only after a start
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: protocol.Handshake,
		Plugins:         protocol.PluginSet(nil),
		// go-plugin passes a command of its own that only carries its
		// environment and stdin; cmd is what runs.
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, dir string) (runner.Runner, error) {
			sockDir = dir
			if p.checksum != nil { // go-plugin's SecureConfig would check spec's empty path
				if err := verifyChecksum(p.name, p.path, p.cfg.SHA256); err != nil {
					return nil, err
				}
			}
			cmd.Env = append(cmd.Env, spec.Env...)
			cmd.Stdin = spec.Stdin
			return newProcRunner(cmd, rawStdout)
		},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         false, // done by hand, with a key every gRPC stack accepts: see mtls.go
		TLSConfig:        tlsConfig,
		SkipHostEnv:      true,
		StartTimeout:     p.opts.StartTimeout,
		Logger:           p.hclog,
		GRPCDialOptions:  protocol.DialOptions(p.maxBytes),
		SyncStdout:       stdout,
		SyncStderr:       stderr,
		Stderr:           said, // every line of the original standard error
		// go-plugin parses each line on the process's standard error
		// (sdk.NewLogger's) and relays it at its level; a longer line
		// comes in pieces at debug level, below the bridge's default.
		PluginLogBufferSize: maxLogLine,
	})
	conn, rpc, err := p.connect(client)
	if err != nil {
		pid := 0
		if cmd.Process != nil {
			pid = cmd.Process.Pid
		}
		stopProcess(client, pid)
		if sockDir != "" {
			_ = os.RemoveAll(sockDir)
		}
		stdout.Flush()
		stderr.Flush()
		if errors.Is(err, ErrChecksumMismatch) {
			return nil, err // names both sums
		}
		if tail := said.String(); tail != "" {
			return nil, fmt.Errorf("plugin %s: start %s: %w (its stderr ended with %q)", p.name, p.path, err, tail)
		}
		return nil, fmt.Errorf("plugin %s: start %s: %w", p.name, p.path, err)
	}
	inst := &instance{client: client, conn: conn, rpc: rpc, said: said, lastUsed: time.Now(), pid: cmd.Process.Pid}
	switch inst.stream, err = openStream(rpc, p.opts.StartTimeout, p.maxBytes, p.log.With("pid", inst.pid)); {
	case errors.Is(err, errNoStream):
		p.log.Debug("plugin has no HandleStream; making a Handle call per record", "pid", inst.pid)
	case err != nil:
		p.log.Warn("plugin's HandleStream failed to open; making a Handle call per record", "pid", inst.pid, "error", err)
	}
	return inst, nil
}

// relay returns the emit function of the lineWriter of the plugin's
// stdout or stderr (stream): each line becomes an info line of the pool's
// log, and a piece of a line that was cut for its length says so.
func (p *Pool) relay(stream string) func(line string, cut bool) {
	return func(line string, cut bool) {
		if cut {
			p.log.Info(line, "stream", stream, "cut", true)
			return
		}
		p.log.Info(line, "stream", stream)
	}
}

// connect starts the client's process, dispenses the handler and checks
// that the health service answers. go-plugin bounds the handshake by the
// start timeout, and its own health check by nothing: the check here has
// the start timeout too, so a plugin whose health service never answers
// fails to start (and is stopped) rather than holding the start for good.
func (p *Pool) connect(client *plugin.Client) (*grpc.ClientConn, handlerpb.HandlerClient, error) {
	proto, err := client.Client()
	if err != nil {
		if err.Error() == handshakeTimeout {
			return nil, nil, fmt.Errorf("handshake: no answer within %s (plugins.%s.start_timeout)", p.opts.StartTimeout, p.name)
		}
		return nil, nil, err
	}
	raw, err := proto.Dispense(protocol.PluginName)
	if err != nil {
		return nil, nil, err
	}
	rpc, ok := raw.(handlerpb.HandlerClient)
	if !ok {
		return nil, nil, fmt.Errorf("dispensed %T, not a handler client", raw)
	}
	conn, ok := proto.(*plugin.GRPCClient)
	if !ok {
		return nil, nil, fmt.Errorf("plugin client %T does not speak gRPC", proto)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.StartTimeout)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn.Conn).Check(ctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		// The deadline travels with the call: the plugin's side may end
		// it a moment before it has passed by this clock.
		if ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded {
			return nil, nil, fmt.Errorf("health check: no answer within %s (plugins.%s.start_timeout): %w", p.opts.StartTimeout, p.name, err)
		}
		return nil, nil, fmt.Errorf("health check: %w", err)
	}
	return conn.Conn, rpc, nil
}

// handshakeTimeout is go-plugin's error when the process wrote no
// handshake line within the start timeout.
const handshakeTimeout = "timeout while waiting for plugin to start"

// maxStderrTail bounds what a start error, or the warning that a process
// died, quotes of the process's standard error.
const maxStderrTail = 2 << 10

// stderrTail keeps the last plain lines a process wrote to its standard
// error (go-plugin copies every line there), so that a start that fails, or
// a process that dies, can say what the process said: a plain line (a Python
// traceback, a shell's "not found", a configuration error) reaches the
// bridge's log only at debug level, where go-plugin puts the lines it cannot
// parse. Log lines in go-plugin's JSON format, relayed at their own level,
// are not kept; a JSON line go-plugin relays verbatim at debug level (a
// Node.js logger's {"level":50,"msg":...}, an "@level" it does not know such
// as "fatal") is as plain as a traceback, and is kept.
type stderrTail struct {
	mu   sync.Mutex
	line []byte // the line being written, its first maxStderrTail bytes
	buf  []byte // the plain lines before it, their last maxStderrTail bytes
}

func (t *stderrTail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(b)
	for {
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		room := max(maxStderrTail-len(t.line), 0)
		t.line = append(t.line, part[:min(len(part), room)]...)
		if i < 0 {
			return n, nil
		}
		t.endLine()
		b = b[i+1:]
	}
}

// endLine keeps the line written, unless it is blank or a log line that
// go-plugin relays at its level.
func (t *stderrTail) endLine() {
	line := bytes.TrimSpace(t.line)
	t.line = t.line[:0]
	if len(line) == 0 || relayedAtItsLevel(line) {
		return
	}
	t.buf = append(append(t.buf, line...), '\n')
	if n := len(t.buf) - maxStderrTail; n > 0 {
		t.buf = append(t.buf[:0], t.buf[n:]...)
	}
}

// relayedAtItsLevel reports whether go-plugin relays line at a level of
// its own: a JSON object whose "@level" (that exact key, as go-plugin reads
// it) is a string naming one of hclog's levels, in any case. Any other line,
// JSON or not, go-plugin relays as it is at debug level.
func relayedAtItsLevel(line []byte) bool {
	if len(line) == 0 || line[0] != '{' {
		return false
	}
	var entry map[string]json.RawMessage
	if json.Unmarshal(line, &entry) != nil {
		return false
	}
	var level string
	if json.Unmarshal(entry["@level"], &level) != nil {
		return false
	}
	switch hclog.LevelFromString(level) {
	case hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error:
		return true
	}
	return false
}

// String returns what was kept, without the surrounding white space.
func (t *stderrTail) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf) + string(t.line))
}
