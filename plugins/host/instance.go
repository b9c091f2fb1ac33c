package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"time"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// instance is one plugin process. Its counters are guarded by the pool's
// mutex; client and rpc are set once at start.
type instance struct {
	client *plugin.Client
	rpc    handlerpb.HandlerClient
	stream *callStream // nil: the plugin does not offer HandleStream
	pid    int

	inflight int       // calls in flight on it
	lastUsed time.Time // when its last call ended (or it started)
	dead     bool      // removed from the pool; calls in flight finish or fail
	served   bool      // answered a call: the start is known good
}

// exited reports whether the process is gone.
func (i *instance) exited() bool { return i.client.Exited() }

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

// kill stops the process: it ends the stream (so that the plugin's server
// can stop gracefully), then go-plugin asks the process to shut down, waits
// up to two seconds, and kills it. It blocks until the process is gone.
func (i *instance) kill() {
	if i.stream != nil {
		i.stream.close()
	}
	i.client.Kill()
}

// spawn starts one process of the plugin and connects to it. It is called
// without the pool's lock held.
func (p *Pool) spawn() (*instance, error) {
	tlsConfig, certPEM, err := newClientTLS()
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(slices.Clip(p.env), clientCertEnv+"="+string(certPEM))
	detach(cmd)
	var secure *plugin.SecureConfig
	if p.checksum != nil {
		secure = &plugin.SecureConfig{Checksum: p.checksum, Hash: sha256.New()}
	}
	stdout := &lineWriter{emit: func(line string) { p.log.Info(line, "stream", "stdout") }}
	stderr := &lineWriter{emit: func(line string) { p.log.Info(line, "stream", "stderr") }}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  protocol.Handshake,
		Plugins:          protocol.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         false, // done by hand, with a key every gRPC stack accepts: see mtls.go
		TLSConfig:        tlsConfig,
		SecureConfig:     secure,
		SkipHostEnv:      true,
		StartTimeout:     p.opts.StartTimeout,
		Logger:           p.hclog,
		GRPCDialOptions:  protocol.DialOptions(p.maxBytes),
		SyncStdout:       stdout,
		SyncStderr:       stderr,
	})
	rpc, err := p.connect(client)
	if err != nil {
		client.Kill()
		stdout.Flush()
		stderr.Flush()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			if e := verifyChecksum(p.name, p.path, p.cfg.SHA256); e != nil {
				return nil, e // names both sums
			}
		}
		return nil, fmt.Errorf("plugin %s: start %s: %w", p.name, p.path, err)
	}
	inst := &instance{client: client, rpc: rpc, lastUsed: time.Now()}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	switch inst.stream, err = openStream(rpc, p.opts.StartTimeout, p.maxBytes); {
	case errors.Is(err, errNoStream):
		p.log.Debug("plugin has no HandleStream; making a Handle call per record", "pid", inst.pid)
	case err != nil:
		p.log.Warn("plugin's HandleStream failed to open; making a Handle call per record", "pid", inst.pid, "error", err)
	}
	return inst, nil
}

// connect starts the client's process, dispenses the handler and checks
// that the health service answers.
func (p *Pool) connect(client *plugin.Client) (handlerpb.HandlerClient, error) {
	proto, err := client.Client()
	if err != nil {
		return nil, err
	}
	raw, err := proto.Dispense(protocol.PluginName)
	if err != nil {
		return nil, err
	}
	rpc, ok := raw.(handlerpb.HandlerClient)
	if !ok {
		return nil, fmt.Errorf("dispensed %T, not a handler client", raw)
	}
	if err := proto.Ping(); err != nil {
		return nil, fmt.Errorf("health check: %w", err)
	}
	return rpc, nil
}
