package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/sdk/otellog"
)

// Standard OpenTelemetry environment variables SetupTracing looks at. The
// exporters read the rest (headers, TLS, timeouts, compression) themselves.
const (
	envEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	defaultEnvProtocol = "http/protobuf" // the OpenTelemetry specification's default
)

// SetupTracing installs the process's TracerProvider and propagator as the
// OpenTelemetry globals, which every span of the bridge (and the otelhttp and
// otelgrpc instrumentation of its targets) uses.
//
// Tracing is always on (docs/tracing.md): spans are created and sampled
// with ParentBased(TraceIDRatioBased(cfg.SampleRatio)) whether or not they
// are exported, so a receiver's traceparent carries the producer's trace id
// and a bridge span as its parent. Without an exporter the spans keep nothing
// but their context (see unrecordedProvider). Export, and with it the spans'
// attributes and events, is switched on by cfg.OTLPEndpoint (OTLP/gRPC; an
// http:// URL is insecure), else by OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT with OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL
// ("grpc", "http/protobuf" (the default) or "http/json");
// OTEL_TRACES_EXPORTER=none turns the environment's export off. Spans are
// exported in batches.
//
// The propagator is W3C Trace Context plus Baggage. The resource of exported
// spans has service.name (cfg.ServiceName), service.version and whatever
// OTEL_RESOURCE_ATTRIBUTES adds. SetupTracing starts no connection: the
// exporter connects lazily. shutdown flushes the spans not yet exported and
// stops the provider; call it once, with a bounded ctx.
func SetupTracing(ctx context.Context, cfg config.Telemetry, version string) (shutdown func(context.Context) error, err error) {
	ratio := 1.0
	if cfg.SampleRatio != nil {
		ratio = *cfg.SampleRatio
	}
	root := sdktrace.TraceIDRatioBased(ratio)
	exp, err := newExporter(ctx, cfg.OTLPEndpoint)
	if err != nil {
		return nil, err
	}
	if exp == nil {
		otel.SetTracerProvider(&unrecordedProvider{root: root})
		otel.SetTextMapPropagator(RecordPropagator)
		return func(context.Context) error { return nil }, nil
	}
	name := cfg.ServiceName
	if name == "" {
		name = "hookbridge"
	}
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(KeyServiceName.String(name), KeyServiceVersion.String(version)),
	)
	if err != nil && res == nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	// A partial resource (an unparsable OTEL_RESOURCE_ATTRIBUTES) still has
	// our attributes; do not refuse to start over it.
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.ParentBased(root)), sdktrace.WithBatcher(exp),
		sdktrace.WithRawSpanLimits(spanLimits()))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(RecordPropagator)
	return tp.Shutdown, nil
}

// AttributeValueLength is the default bound, in characters, of a string
// attribute of an exported span (longer ones are cut). A record's key goes
// on its spans whole (messaging.kafka.message.key), and a key can be as long
// as a record: unbounded, one producer's megabyte keys would make the batches
// of every record's spans too large for the collector, which drops them.
// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT or OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT
// set another bound (-1: none).
const AttributeValueLength = 4096

// spanLimits are the OpenTelemetry defaults, and the environment's
// variables, but for the length of attribute values: AttributeValueLength
// unless a variable sets it.
func spanLimits() sdktrace.SpanLimits {
	l := sdktrace.NewSpanLimits()
	if os.Getenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT") == "" && os.Getenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT") == "" {
		l.AttributeValueLengthLimit = AttributeValueLength
	}
	return l
}

// LogErrors sends the errors OpenTelemetry reports in the background (a
// failed export, say) to log at warn level, instead of the SDK's default
// plain-text line on stderr. The libraries' own logger (otel.SetLogger)
// logs to log too, without the values it would quote: an
// OTEL_EXPORTER_OTLP_* endpoint or header the exporters cannot parse may
// hold credentials (sdk/otellog).
func LogErrors(log *slog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("opentelemetry", "error", err)
	}))
	otel.SetLogger(otellog.New(log))
}

// ExportTarget describes where SetupTracing exports spans, for the start-up
// log line: "none" when spans are not exported. The endpoint is shown without
// its user info, query and fragment, which may hold credentials.
func ExportTarget(cfg config.Telemetry) string {
	if cfg.OTLPEndpoint != "" {
		return "otlp/grpc " + safeEndpoint(cfg.OTLPEndpoint, "otlp_endpoint")
	}
	if strings.EqualFold(os.Getenv(envTracesExporter), "none") {
		return "none"
	}
	key := firstEnvKey(envTracesEndpoint, envEndpoint)
	if key == "" {
		return "none"
	}
	return "otlp/" + envProtocolValue() + " " + safeEndpoint(firstEnv(key), key)
}

// safeEndpoint renders an endpoint URL for logs and errors with
// config.SafeURL. One that is not a URL with a host is named by where it came
// from (source) instead: there is no telling its credentials from its host.
func safeEndpoint(raw, source string) string {
	fallback := source + " (not a valid URL)"
	if u, err := url.Parse(raw); err != nil || u.Host == "" {
		return fallback
	}
	return config.SafeURL(raw, fallback)
}

// newExporter builds the span exporter, or returns nil when spans are not
// exported.
func newExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	if endpoint != "" {
		// otlptracegrpc logs an unparsable URL whole, credentials and all,
		// and then exports to its default endpoint: refuse it here instead.
		// The parse error is dropped too, since it quotes the URL.
		if _, err := url.Parse(endpoint); err != nil {
			return nil, errors.New("telemetry: otlp_endpoint is not a valid URL")
		}
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp exporter for %s: %w", safeEndpoint(endpoint, "otlp_endpoint"), err)
		}
		return exp, nil
	}
	if strings.EqualFold(os.Getenv(envTracesExporter), "none") || firstEnv(envTracesEndpoint, envEndpoint) == "" {
		return nil, nil
	}
	// The exporter would log an unparsable endpoint whole (credentials and
	// all) and export to its default endpoint instead: refuse it, naming the
	// variable only, as an unparsable otlp_endpoint is refused.
	if key := firstEnvKey(envTracesEndpoint, envEndpoint); key != "" {
		if _, err := url.Parse(firstEnv(key)); err != nil {
			return nil, errors.New("telemetry: " + key + " is not a valid URL")
		}
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch proto := envProtocolValue(); proto {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf", "http/json":
		// The Go exporter has no JSON encoding: http/json posts
		// protobuf to the same path, which collectors take.
		exp, err = otlptracehttp.New(ctx)
	default:
		err = errors.New("unsupported protocol " + proto + " (want grpc, http/protobuf or http/json)")
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: otlp exporter from the environment: %w", err)
	}
	return exp, nil
}

func envProtocolValue() string {
	if p := firstEnv(envTracesProtocol, envProtocol); p != "" {
		return strings.ToLower(p)
	}
	return defaultEnvProtocol
}

func firstEnv(keys ...string) string {
	if k := firstEnvKey(keys...); k != "" {
		return strings.TrimSpace(os.Getenv(k))
	}
	return ""
}

// firstEnvKey returns the first of keys set to something other than blanks,
// or "".
func firstEnvKey(keys ...string) string {
	for _, k := range keys {
		if strings.TrimSpace(os.Getenv(k)) != "" {
			return k
		}
	}
	return ""
}
