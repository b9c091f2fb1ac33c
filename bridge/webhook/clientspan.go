package webhook

import (
	"io"
	"net/http"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracingTransport gives every request an HTTP CLIENT span, child of the span
// in the request's context, and injects its context (traceparent, tracestate)
// with the global propagator. Unlike a generic instrumentation wrapper it
// leaves the request body alone, so net/http still writes headers and body in
// one go, and it records no metrics of its own (the bridge has its own).
type tracingTransport struct {
	next  http.RoundTripper
	start []trace.SpanStartOption // fixed per target: kind CLIENT, method, URL, server
}

func newTracingTransport(next http.RoundTripper, safeURL, host, port string) *tracingTransport {
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", http.MethodPost),
		attribute.String("url.full", safeURL),
		attribute.String("server.address", host),
	}
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	return &tracingTransport{next: next,
		start: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...)}}
}

const scope = "github.com/hookbridge/hookbridge/bridge/webhook"

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The span comes from the provider of the span in the context (the
	// delivery's), so it lands wherever its parent does.
	tr := trace.SpanFromContext(req.Context()).TracerProvider().Tracer(scope)
	ctx, span := tr.Start(req.Context(), req.Method, t.start...)
	if !span.IsRecording() && !span.SpanContext().IsValid() {
		span.End()
		return t.next.RoundTrip(req)
	}
	// The request is ours (built by the target), so its header map can take
	// the trace context without a clone.
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
	}
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// spanBody ends the client span when the response body is closed.
type spanBody struct {
	io.ReadCloser
	span trace.Span
	once sync.Once
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.span.End() })
	return err
}
