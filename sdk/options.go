package sdk

import (
	"log/slog"
	"time"
)

// Option configures Serve (and, for WithLogger and WithMaxMessageBytes, Service).
type Option func(*options)

type options struct {
	maxMessageBytes int
	logger          *slog.Logger
	gracePeriod     time.Duration
	noTelemetry     bool
}

// DefaultGracePeriod is how long Serve lets calls in flight finish after
// SIGTERM or SIGINT before it stops the server hard.
const DefaultGracePeriod = 10 * time.Second

func newOptions(opts []Option) options {
	o := options{gracePeriod: DefaultGracePeriod}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = NewLogger()
	}
	return o
}

// WithMaxMessageBytes sets the largest gRPC message the plugin accepts and
// sends. Default: what the bridge passes (plugins.<name>.max_message_bytes,
// itself 4 MiB by default). Set it only to override the bridge; a limit
// below the bridge's makes large records fail as permanent errors.
func WithMaxMessageBytes(n int) Option {
	return func(o *options) { o.maxMessageBytes = n }
}

// WithLogger sets the logger of the SDK's own messages (a panicking handler,
// a signal, a failed start). Default NewLogger().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithGracePeriod sets how long calls in flight may take to finish after
// SIGTERM or SIGINT. Default DefaultGracePeriod.
func WithGracePeriod(d time.Duration) Option {
	return func(o *options) { o.gracePeriod = d }
}

// WithoutTelemetry stops Serve from setting up OpenTelemetry (the W3C trace
// context propagator and, when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, an OTLP trace exporter: over
// HTTP/protobuf unless OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL says grpc, as the
// bridge sets it with telemetry.otlp_endpoint), for a plugin that sets up
// its own. The server's stats handler still continues the bridge's trace
// through the global propagator.
func WithoutTelemetry() Option {
	return func(o *options) { o.noTelemetry = true }
}
