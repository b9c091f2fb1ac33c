package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// unrecordedProvider is the TracerProvider when spans are not exported. Its
// spans get an id and a sampling decision from the same sampler the SDK's
// would, so traceparent and tracestate on requests and produced records, and
// the trace_id and span_id of log lines, are what they would be with an
// exporter. They record nothing (attributes, events, status): with no
// exporter nothing would ever read those, and recording them is a good part
// of what a record costs the bridge.
type unrecordedProvider struct {
	embedded.TracerProvider
	// root decides for a span without a valid parent. The provider stands
	// for ParentBased(root) with ParentBased's default delegates: a span
	// with a parent, remote or local, follows the parent's sampled flag and
	// keeps its tracestate.
	root sdktrace.Sampler
}

func (p *unrecordedProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return unrecordedTracer{p: p}
}

type unrecordedTracer struct {
	embedded.Tracer
	p *unrecordedProvider
}

// Start starts a span the way the SDK does (same parent, trace id and
// sampled flag, a new span id) and records nothing of it.
func (t unrecordedTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	if cfg.NewRoot() {
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	}
	parent := trace.SpanContextFromContext(ctx)
	tid := parent.TraceID()
	if !tid.IsValid() {
		tid = newTraceID()
	}
	sampled, state := parent.IsSampled(), parent.TraceState()
	if !parent.IsValid() {
		res := t.p.root.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: tid, Name: name,
			Kind: cfg.SpanKind(), Attributes: cfg.Attributes(), Links: cfg.Links()})
		sampled, state = res.Decision == sdktrace.RecordAndSample, res.Tracestate
	}
	flags := parent.TraceFlags() &^ trace.FlagsSampled
	if sampled {
		flags |= trace.FlagsSampled
	}
	// A pointer, so that the span is allocated once, not once for the
	// context and once more for the caller.
	s := &unrecordedSpan{p: t.p, sc: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: newSpanID(),
		TraceFlags: flags, TraceState: state})}
	return trace.ContextWithSpan(ctx, s), s
}

// unrecordedSpan has a span context and a provider, and does nothing else.
type unrecordedSpan struct {
	noop.Span
	p  *unrecordedProvider
	sc trace.SpanContext
}

func (s *unrecordedSpan) SpanContext() trace.SpanContext { return s.sc }

// TracerProvider returns the span's provider, so that a child started from it
// (the webhook client span) gets an id of its own, as with the SDK.
func (s *unrecordedSpan) TracerProvider() trace.TracerProvider { return s.p }

func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		binary.NativeEndian.PutUint64(id[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.NativeEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}
