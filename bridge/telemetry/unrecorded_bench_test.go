package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The spans of one delivered record, as the dispatch chain and the webhook
// client make them (process, attempt, HTTP client, the delivered event),
// with the SDK recording them (an exporter is configured) and with the
// unrecorded provider (none is).
func BenchmarkRecordSpans(b *testing.B) {
	sampler := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(1))
	producer := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true}))
	client := []attribute.KeyValue{attribute.String("http.request.method", "POST"),
		attribute.String("url.full", "http://127.0.0.1:8080/hook"), attribute.String("server.address", "127.0.0.1"),
		attribute.Int("server.port", 8080)}
	for _, p := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"recorded", sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))},
		{"unrecorded", &unrecordedProvider{root: sdktrace.TraceIDRatioBased(1)}},
	} {
		b.Run(p.name, func(b *testing.B) {
			tr := p.tp.Tracer("bench")
			b.ReportAllocs()
			for b.Loop() {
				ctx, s := tr.Start(producer, "process orders", trace.WithSpanKind(trace.SpanKindConsumer))
				if s.IsRecording() {
					s.SetAttributes(ProcessAttrs("r", "g", "orders", 3, 1234, []byte("key-1"), 256, "orders-3-1234")...)
				}
				actx, a := tr.Start(ctx, "deliver r", trace.WithAttributes(KeyRoute.String("r"), KeyAttempt.Int(1)))
				_, c := trace.SpanFromContext(actx).TracerProvider().Tracer("bench").Start(actx, "POST",
					trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(client...))
				c.SetAttributes(attribute.Int("http.response.status_code", 200))
				c.End()
				a.End()
				if s.IsRecording() {
					s.AddEvent(EventDelivered, trace.WithAttributes(KeyAttempt.Int(1)))
					s.SetAttributes(KeyOutcome.String(OutcomeDelivered), KeyAttempts.Int(1))
				}
				s.End()
			}
		})
	}
}
