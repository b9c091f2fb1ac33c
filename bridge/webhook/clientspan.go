package webhook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// tracingTransport gives every request an HTTP CLIENT span, child of the span
// in the request's context, and injects its context (traceparent, tracestate)
// with the global propagator. Unlike a generic instrumentation wrapper it
// leaves the request body alone, so net/http still writes headers and body in
// one go, and it records no metrics of its own (the bridge has its own).
type tracingTransport struct {
	next http.RoundTripper
	opts []trace.SpanStartOption // fixed per target: kind CLIENT, method, URL, server
	kind []trace.SpanStartOption // kind CLIENT only, for a span that records nothing
}

// newTracingTransport instruments the requests to one URL: safeURL is it
// as spans may show it (url.full), host and port where requests go
// (server.address, server.port), port given even when the URL leaves it to
// its scheme.
func newTracingTransport(next http.RoundTripper, safeURL, host, port string) *tracingTransport {
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", http.MethodPost),
		attribute.String("url.full", safeURL),
		attribute.String("server.address", host),
	}
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	kind := trace.WithSpanKind(trace.SpanKindClient)
	return &tracingTransport{next: next,
		opts: []trace.SpanStartOption{kind, trace.WithAttributes(attrs...)}, kind: []trace.SpanStartOption{kind}}
}

const scope = "github.com/hookbridge/hookbridge/bridge/webhook"

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	attempt, _ := strconv.Atoi(req.Header.Get(HeaderAttempt))
	span, traced := t.start(req.Context(), propagation.HeaderCarrier(req.Header), attempt)
	if !traced {
		return t.next.RoundTrip(req)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		failed(span, err)
		return resp, err
	}
	answered(span, resp.StatusCode)
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// start starts the client span of a request, child of the span in ctx, and
// injects its context into the request's header through h (the request must
// be the caller's own: it is changed without a copy). attempt is the
// request's hookbridge-attempt: from the second on the request is sent
// again, and the span says how many times before in
// http.request.resend_count, as the HTTP semantic conventions ask of a
// resent request. traced is false when there is nothing to trace (no span
// in ctx, as in a test): the span has then already ended and h is
// unchanged.
func (t *tracingTransport) start(ctx context.Context, h propagation.TextMapCarrier, attempt int) (span trace.Span, traced bool) {
	// The span comes from the provider of the span in the context (the
	// delivery's), so it lands wherever its parent does. Its attributes go
	// only to a span that can record them: the bridge's sampler follows
	// the parent, so a parent that records nothing has a child that
	// records nothing, and copying the attributes into its start
	// configuration would be wasted.
	parent := trace.SpanFromContext(ctx)
	opts := t.kind
	if parent.IsRecording() {
		opts = t.opts
	}
	if links := linksOf(ctx); len(links) > 0 && parent.IsRecording() {
		opts = append(slices.Clip(opts), trace.WithLinks(links...))
	}
	if attempt > 1 && parent.IsRecording() {
		opts = append(slices.Clip(opts), trace.WithAttributes(attribute.Int("http.request.resend_count", attempt-1)))
	}
	ctx, span = parent.TracerProvider().Tracer(scope).Start(ctx, http.MethodPost, opts...)
	if !span.IsRecording() && !span.SpanContext().IsValid() {
		span.End()
		return span, false
	}
	otel.GetTextMapPropagator().Inject(ctx, h)
	return span, true
}

type linksKey struct{}

// withLinks returns ctx carrying links for the client span of its request:
// the spans of a batch's other records, whose request this is too.
func withLinks(ctx context.Context, links []trace.Link) context.Context {
	return context.WithValue(ctx, linksKey{}, links)
}

func linksOf(ctx context.Context) []trace.Link {
	links, _ := ctx.Value(linksKey{}).([]trace.Link)
	return links
}

// failed ends a client span whose request got no answer, with its
// error.type (see errorType).
func failed(span trace.Span, err error) {
	if span.IsRecording() {
		span.SetAttributes(telemetry.KeyErrorType.String(errorType(err)))
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	span.End()
}

// errorType is the error.type of a request that got no answer, which the
// HTTP semantic conventions ask for when there is no status code to give:
// "timeout" for one that timed out, "canceled" for one the bridge gave up,
// else the error's type.
func errorType(err error) string {
	switch ne, ok := errors.AsType[net.Error](err); {
	case errors.Is(err, context.DeadlineExceeded), ok && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return semconv.ErrorType(err).Value.AsString()
}

// answered records the answer's status on a client span, which the caller
// ends once the body is read. From 400 on the span failed, and its
// error.type is the status code.
func answered(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 400 {
		code := strconv.Itoa(status)
		span.SetAttributes(telemetry.KeyErrorType.String(code))
		span.SetStatus(codes.Error, code)
	}
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
