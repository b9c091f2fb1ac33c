package sdktest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/internal/inproc"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// Server is a handler served over gRPC in-process. Its methods may be called
// concurrently.
type Server struct {
	stop       func()
	client     handlerpb.HandlerClient
	health     grpc_health_v1.HealthClient
	route      string
	maxOutputs int
}

// Option configures NewServer.
type Option func(*config)

type config struct {
	maxMessageBytes int
	maxOutputs      int
	route           string
	sdkOptions      []sdk.Option
}

// DefaultMaxOutputs is the default of plugins.<name>.max_outputs.
const DefaultMaxOutputs = 1000

// WithMaxOutputs sets the most outputs an answer may have, as
// plugins.<name>.max_outputs does: the bridge turns an answer with more into
// a permanent error (the record is dead-lettered), and so does Handle.
// Default DefaultMaxOutputs, which 0 keeps, as in the config.
func WithMaxOutputs(n int) Option {
	return func(c *config) { c.maxOutputs = n }
}

// WithMaxMessageBytes sets the message size limit of both sides, as
// plugins.<name>.max_message_bytes does. Default 4 MiB, which 0 keeps, as
// in the config.
func WithMaxMessageBytes(n int) Option {
	return func(c *config) { c.maxMessageBytes = n }
}

// WithRoute sets Message.Route of the calls whose Message leaves it empty.
// Default "test".
func WithRoute(name string) Option {
	return func(c *config) { c.route = name }
}

// WithSDKOptions passes options to sdk.Service (sdk.WithLogger).
func WithSDKOptions(opts ...sdk.Option) Option {
	return func(c *config) { c.sdkOptions = append(c.sdkOptions, opts...) }
}

// NewServer serves h in-process and returns a client for it. The server is
// stopped when the test ends.
func NewServer(t testing.TB, h sdk.Handler, opts ...Option) *Server {
	t.Helper()
	s, err := Start(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start serves h in-process, outside a test (in an Example or a
// benchmark harness). Close stops it.
func Start(h sdk.Handler, opts ...Option) (*Server, error) {
	c := config{maxMessageBytes: protocol.DefaultMaxMessageBytes, maxOutputs: DefaultMaxOutputs, route: "test"}
	for _, opt := range opts {
		opt(&c)
	}
	if c.maxMessageBytes <= 0 {
		c.maxMessageBytes = protocol.DefaultMaxMessageBytes
	}
	if c.maxOutputs <= 0 {
		c.maxOutputs = DefaultMaxOutputs
	}
	srv := grpc.NewServer(protocol.ServerOptions(c.maxMessageBytes)...)
	handlerpb.RegisterHandlerServer(srv, sdk.Service(h, append([]sdk.Option{sdk.WithMaxMessageBytes(c.maxMessageBytes)}, c.sdkOptions...)...))
	hs := health.NewServer()
	hs.SetServingStatus("plugin", grpc_health_v1.HealthCheckResponse_SERVING)
	grpc_health_v1.RegisterHealthServer(srv, hs)
	conn, stop, err := inproc.Serve(srv, c.maxMessageBytes)
	if err != nil {
		return nil, fmt.Errorf("sdktest: dial: %w", err)
	}
	return &Server{
		stop:       stop,
		client:     handlerpb.NewHandlerClient(conn),
		health:     grpc_health_v1.NewHealthClient(conn),
		route:      c.route,
		maxOutputs: c.maxOutputs,
	}, nil
}

// Close stops the server; calls in flight fail.
func (s *Server) Close() { s.stop() }

// Handle delivers msg to the handler in a Handle call, as the bridge does
// when it does not use the stream (see the package doc). A Message with
// Attempt 0 is sent as attempt 1, one with no ID gets
// "<topic>-<partition>-<offset>". The error is the handler's, classified as
// it crossed the wire (sdk.IsPermanent, sdk.RetryAfterOf), or a *CallError
// when the call itself failed. An answer with more outputs than
// WithMaxOutputs allows is a permanent error, as in the bridge; so is a
// Message with a header key that is not UTF-8, which the bridge refuses
// before the call (the handler does not run).
func (s *Server) Handle(ctx context.Context, msg *sdk.Message) (*sdk.Result, error) {
	for i, h := range msg.Headers {
		if !utf8.ValidString(h.Key) {
			return nil, sdk.Permanent(fmt.Errorf("sdktest: the key of the record's header %d is not valid UTF-8, which the plugin protocol cannot carry", i))
		}
	}
	req := requestFromMessage(msg)
	if req.Route == "" {
		req.Route = s.route
	}
	resp, err := s.client.Handle(ctx, req)
	if err != nil {
		return nil, &CallError{Err: err}
	}
	if n := len(resp.GetOutputs()); n > s.maxOutputs && resp.GetError() == nil {
		return nil, sdk.Permanent(fmt.Errorf("sdktest: the answer has %d outputs, more than %d (plugins.<name>.max_outputs)", n, s.maxOutputs))
	}
	return resultFromProto(resp)
}

// Healthy reports whether the server answers the health check under the
// name go-plugin uses, "plugin".
func (s *Server) Healthy(ctx context.Context) error {
	resp, err := s.health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "plugin"})
	if err != nil {
		return err
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("sdktest: health status %s", resp.GetStatus())
	}
	return nil
}

// CallError is a failed gRPC call, as opposed to a handler's error: the
// message exceeded the size limit, the context ended, the server stopped.
type CallError struct {
	Err error // a gRPC status error
}

func (e *CallError) Error() string { return "sdktest: call failed: " + e.Err.Error() }
func (e *CallError) Unwrap() error { return e.Err }

// IsCallError reports whether err is a *CallError.
func IsCallError(err error) bool {
	var c *CallError
	return errors.As(err, &c)
}
