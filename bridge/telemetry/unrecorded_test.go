package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The unrecorded provider makes the sampling decision and keeps the
// tracestate as the SDK does with ParentBased(TraceIDRatioBased(ratio)), for
// every kind of parent.
func TestUnrecordedSamplesAsTheSDK(t *testing.T) {
	state, err := trace.ParseTraceState("vendor=abc,other=1")
	if err != nil {
		t.Fatal(err)
	}
	parent := func(remote, sampled bool) context.Context {
		var flags trace.TraceFlags
		if sampled {
			flags = trace.FlagsSampled
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{9},
			TraceFlags: flags, TraceState: state, Remote: remote})
		return trace.ContextWithSpanContext(context.Background(), sc)
	}
	parents := map[string]context.Context{
		"no parent":           context.Background(),
		"remote, sampled":     parent(true, true),
		"remote, not sampled": parent(true, false),
		"local, sampled":      parent(false, true),
		"local, not sampled":  parent(false, false),
	}
	for _, ratio := range []float64{0, 0.5, 1} {
		root := sdktrace.TraceIDRatioBased(ratio)
		sdk := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(root))).Tracer("t")
		ours := (&unrecordedProvider{root: root}).Tracer("t")
		for name, ctx := range parents {
			for range 50 { // roots get random trace ids: the ratio decides on each
				_, s := ours.Start(ctx, "span")
				got := s.SpanContext()
				// The SDK's decision for the same parent and trace id.
				want := root.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: got.TraceID()})
				if p := trace.SpanContextFromContext(ctx); p.IsValid() {
					_, ss := sdk.Start(ctx, "span")
					want = sdktrace.SamplingResult{Tracestate: ss.SpanContext().TraceState()}
					if ss.SpanContext().IsSampled() {
						want.Decision = sdktrace.RecordAndSample
					}
					if got.TraceID() != p.TraceID() {
						t.Errorf("ratio %v, %s: trace id %s, want the parent's", ratio, name, got.TraceID())
					}
				}
				if got.IsSampled() != (want.Decision == sdktrace.RecordAndSample) || got.TraceState().String() != want.Tracestate.String() {
					t.Fatalf("ratio %v, %s: sampled %v, tracestate %q; the SDK: %v, %q", ratio, name,
						got.IsSampled(), got.TraceState().String(), want.Decision == sdktrace.RecordAndSample, want.Tracestate.String())
				}
				if !got.SpanID().IsValid() || got.SpanID() == (trace.SpanID{9}) || s.IsRecording() {
					t.Fatalf("ratio %v, %s: span id %s, recording %v", ratio, name, got.SpanID(), s.IsRecording())
				}
			}
		}
	}
}
