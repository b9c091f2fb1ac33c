package sdk

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// setupTelemetry sets the W3C trace context and baggage propagator, so that
// the server's stats handler continues the bridge's trace from each call's
// metadata, and, when the standard OTLP endpoint variables are set (the
// bridge passes OTEL_* variables to its plugins), a tracer provider that
// exports the plugin's spans over OTLP/gRPC. The function it returns flushes
// and stops the exporter.
func setupTelemetry(ctx context.Context) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	noop := func(context.Context) error { return nil }
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return noop, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("sdk: otlp trace exporter: %w", err)
	}
	name := "hookbridge-plugin"
	if n := os.Getenv(protocol.EnvPluginName); n != "" {
		name += "-" + n
	}
	// resource.Default reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
	// they override the name derived from the plugin's.
	res, err := resource.Merge(resource.NewSchemaless(semconv.ServiceName(name)), resource.Default())
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
