package webhook

import (
	"context"
	"crypto/rand"
	"runtime"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// remoteParent returns ctx carrying a producer's remote span context of a
// trace of its own, sampled or not.
func remoteParent(ctx context.Context, sampled bool) context.Context {
	var tid trace.TraceID
	var sid trace.SpanID
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true}))
}

// A batch whose first record's trace is not sampled, and whose second
// record's is: the request belongs to the sampled record's trace (its
// client span is recorded, a child of that record's span, and the receiver
// gets a sampled traceparent of that trace), so that the sampled record's
// trace reaches the request and the receiver. With the first record's span
// as the parent whatever its sampling, the request's span was never
// recorded and the sampled record's trace ended at its deliver span.
func TestBatchRequestJoinsASampledRecordsTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)) // parent-based, as the bridge's
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 2, MaxWait: config.Duration(time.Hour)}
	})
	pending := func() int {
		tg.batch.mu.Lock()
		defer tg.batch.mu.Unlock()
		return len(tg.batch.pending)
	}

	var wg sync.WaitGroup
	spans := make([]trace.Span, 2)
	for i, sampled := range []bool{false, true} {
		ctx, span := tp.Tracer("test").Start(remoteParent(t.Context(), sampled), "deliver orders-billing")
		spans[i] = span
		wg.Go(func() {
			defer span.End()
			if _, err := deliver(t, ctx, tg, &target.Record{Topic: "orders", Partition: int32(i), Offset: 1, Value: []byte("x")}); err != nil {
				t.Error(err)
			}
		})
		for i == 0 && pending() == 0 {
			runtime.Gosched() // the unsampled record goes first in the batch
		}
	}
	wg.Wait()
	if spans[0].SpanContext().IsSampled() || !spans[1].SpanContext().IsSampled() {
		t.Fatal("test setup: want the first record unsampled and the second sampled")
	}
	got := next(t, reqs).header.Get("Traceparent")
	sampled := spans[1].SpanContext()
	client := clientSpan(rec)
	if client == nil {
		t.Fatalf("no client span recorded; the receiver got traceparent %q", got)
	}
	if client.Parent().SpanID() != sampled.SpanID() || client.SpanContext().TraceID() != sampled.TraceID() {
		t.Errorf("client span's parent %v, want the sampled record's span %v", client.Parent(), sampled)
	}
	if want := "00-" + sampled.TraceID().String() + "-" + client.SpanContext().SpanID().String() + "-01"; got != want {
		t.Errorf("receiver's traceparent %q, want %q (the client span, in the sampled record's trace)", got, want)
	}
}
