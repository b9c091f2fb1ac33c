package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// flushPeriod is how long a stopping plugin keeps its connections open
// after the last call returned, for the responses to leave.
const flushPeriod = time.Second

// ErrNotStartedByHost is returned by Serve when the program was not started
// by Hookbridge (the handshake's magic cookie is missing from the
// environment): a plugin is not meant to be run by hand.
var ErrNotStartedByHost = errors.New("sdk: this program is a Hookbridge plugin: name it in plugins.<name>.command of the bridge's configuration instead of running it directly")

// Serve serves h to the Hookbridge process that started this program and
// returns when it is told to stop: when the bridge closes the plugin (the
// process may then be ended at once), or after SIGTERM or SIGINT, once the
// calls in flight finished (at most the grace period, WithGracePeriod).
// It returns ErrNotStartedByHost when the program was run directly, and an
// error when the server could not start. Serve writes the handshake line to
// standard output: the program must print nothing there before it.
func Serve(h Handler, opts ...Option) error {
	if os.Getenv(protocol.MagicCookieKey) != protocol.MagicCookieValue {
		return ErrNotStartedByHost
	}
	o := newOptions(opts)
	maxBytes := o.maxMessageBytes
	if maxBytes <= 0 {
		n, err := protocol.MaxMessageBytesFromEnv(protocol.DefaultMaxMessageBytes)
		if err != nil {
			return fmt.Errorf("sdk: %w", err)
		}
		maxBytes = n
	}
	if !o.noTelemetry {
		shutdown, err := setupTelemetry(context.Background(), o.logger)
		if err != nil {
			o.logger.Warn("tracing disabled", "error", err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = shutdown(ctx)
		}()
	}

	svc := newService(h, o.logger, maxBytes)
	var (
		mu  sync.Mutex
		srv *grpc.Server
	)
	started := make(chan struct{}) // closed once srv is set
	stop := make(chan struct{})
	defer close(stop)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(signals)
	stopWatch := watchParent()
	defer stopWatch()
	go stopOnSignal(signals, started, stop, func() *grpc.Server {
		mu.Lock()
		defer mu.Unlock()
		return srv
	}, svc, o)

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: protocol.Handshake,
		Plugins:         protocol.PluginSet(svc),
		GRPCServer: func(base []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(append(base, protocol.ServerOptions(maxBytes)...)...)
			mu.Lock()
			srv = s
			mu.Unlock()
			close(started)
			return s
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "go-plugin",
			Level:      hclog.Info,
			Output:     stderr,
			JSONFormat: true,
		}),
	})

	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		return errors.New("sdk: the plugin server did not start (see the log above)")
	}
	return nil
}

// stopOnSignal stops the plugin on the first SIGTERM or SIGINT: it lets the
// calls in flight finish within the grace period, then stops the server
// (server() once started is closed). A signal that comes before go-plugin
// made the server waits for it, or it would be lost, and the plugin would
// serve on until the host stopped it. stop ends the watch.
func stopOnSignal(signals <-chan os.Signal, started, stop <-chan struct{}, server func() *grpc.Server, svc *service, o options) {
	var sig os.Signal
	select {
	case <-stop:
		return
	case sig = <-signals:
	}
	select {
	case <-started:
	case <-stop:
		return
	}
	o.logger.Info("stopping: letting calls in flight finish", "signal", sig.String(), "grace_period", o.gracePeriod.String())
	ctx, cancel := context.WithTimeout(context.Background(), o.gracePeriod)
	svc.drain(ctx)
	cancel()
	// The handler calls are done; their responses may still be on their
	// way out. GracefulStop lets them go, but would wait forever for
	// go-plugin's own streams, which the host keeps open: bound it.
	s := server()
	t := time.AfterFunc(flushPeriod, s.Stop)
	s.GracefulStop()
	t.Stop()
}
