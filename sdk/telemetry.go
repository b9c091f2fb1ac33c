package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/hookbridge/hookbridge/sdk/otellog"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// setupTelemetry sets the W3C trace context and baggage propagator, so that
// the server's stats handler continues the bridge's trace from each call's
// metadata, and, when the standard OTLP endpoint variables are set (the
// bridge passes OTEL_* variables to its plugins), a tracer provider that
// exports the plugin's spans over OTLP with the protocol they name, as the
// bridge reads them: http/protobuf unless they say grpc, and no export with
// OTEL_TRACES_EXPORTER=none. The function it returns flushes and stops the
// exporter. The OpenTelemetry libraries' own log lines go to log without
// their values (sdk/otellog).
func setupTelemetry(ctx context.Context, log *slog.Logger) (func(context.Context) error, error) {
	otel.SetLogger(otellog.New(log))
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	noop := func(context.Context) error { return nil }
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" ||
		strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")), "none") {
		return noop, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	switch otlpProtocol() {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default: // http/protobuf, the specification's default (http/json is not offered by the Go exporter)
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return noop, fmt.Errorf("sdk: otlp trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(pluginResource(ctx)))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// otlpProtocol is the OTLP protocol the standard variables ask for
// (traces-specific first), in lower case; the bridge passes them on, and
// sets grpc with telemetry.otlp_endpoint, so a plugin exports the way the
// bridge does.
func otlpProtocol() string {
	p := strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if p == "" {
		p = strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	return strings.ToLower(p)
}

// pluginResource is the resource of the plugin's spans: service.name
// "hookbridge-plugin-<name>" (the name in the bridge's configuration), the
// telemetry.sdk attributes, and whatever OTEL_RESOURCE_ATTRIBUTES and
// OTEL_SERVICE_NAME set, which win over the derived name.
//
// Later detectors win a key: resource.Default() must not be merged over the
// derived name, since its own service.name ("unknown_service:<executable>")
// would replace it.
func pluginResource(ctx context.Context) *resource.Resource {
	name := "hookbridge-plugin"
	if n := os.Getenv(protocol.EnvPluginName); n != "" {
		name += "-" + n
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(name)),
		resource.WithFromEnv(),
	)
	if err != nil && res == nil {
		// A partial resource (an unparsable OTEL_RESOURCE_ATTRIBUTES)
		// still has the name; with none, use the name alone.
		res = resource.NewSchemaless(semconv.ServiceName(name))
	}
	return res
}
