package dispatch_test

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

const (
	traceRoute = "orders-webhook"
	traceGroup = "hookbridge.orders-webhook"
	// The producer's context in testRecord's traceparent header.
	producerTraceID = "0af7651916cd43dd8448eb211c80319c"
	producerSpanID  = "b7ad6b7169203331"
)

// newTracer returns a tracer whose spans go to the returned recorder; every
// span is sampled unless its parent was not (the SDK's default sampler).
func newTracer(t *testing.T) (trace.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.WithoutCancel(t.Context())) })
	return tp.Tracer("test"), sr
}

// tracedChain is the route's chain with both tracing layers in place.
func tracedChain(tr trace.Tracer, tg target.Target, prod dispatch.Producer, ev dispatch.Events, maxAttempts int) target.Target {
	return target.Chain(tg,
		dispatch.Trace(tr, traceRoute, traceGroup),
		dispatch.DeadLetter(dlqPolicy(), prod, ev),
		dispatch.Reply("orders.replies", prod, ev, time.Millisecond),
		dispatch.Retry(fastPolicy(maxAttempts), ev),
		dispatch.AttemptTrace(tr),
	)
}

// spanCtxSeen is a fake target step that records the span context of every
// call and then runs step.
type spanCtxSeen struct {
	mu   sync.Mutex
	seen []trace.SpanContext
}

func (s *spanCtxSeen) wrap(tg target.Target) target.Target {
	return target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		s.mu.Lock()
		s.seen = append(s.seen, trace.SpanContextFromContext(ctx))
		s.mu.Unlock()
		return tg.Deliver(ctx, d)
	})
}

func (s *spanCtxSeen) all() []trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// byName splits ended spans into the process span (exactly one is required)
// and the attempt spans, in start order.
func byName(t *testing.T, spans []sdktrace.ReadOnlySpan) (process sdktrace.ReadOnlySpan, attempts []sdktrace.ReadOnlySpan) {
	t.Helper()
	for _, s := range spans {
		switch s.Name() {
		case "process orders":
			if process != nil {
				t.Fatalf("two process spans")
			}
			process = s
		case "deliver " + traceRoute:
			attempts = append(attempts, s)
		default:
			t.Fatalf("unexpected span %q", s.Name())
		}
	}
	if process == nil {
		t.Fatalf("no process span among %d spans", len(spans))
	}
	slices.SortFunc(attempts, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	return process, attempts
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// checkProcessAttrs checks every attribute of a process span of testRecord:
// the key, value and type of each.
func checkProcessAttrs(t *testing.T, s sdktrace.ReadOnlySpan) {
	t.Helper()
	want := map[attribute.Key]attribute.Value{
		"messaging.system":                   attribute.StringValue("kafka"),
		"messaging.operation.type":           attribute.StringValue("process"),
		"messaging.operation.name":           attribute.StringValue("process"),
		"messaging.destination.name":         attribute.StringValue("orders"),
		"messaging.consumer.group.name":      attribute.StringValue(traceGroup),
		"messaging.destination.partition.id": attribute.StringValue("3"),
		"messaging.kafka.offset":             attribute.Int64Value(42),
		"messaging.kafka.message.key":        attribute.StringValue("customer-7"),
		"messaging.message.id":               attribute.StringValue("orders-3-42"),
		"messaging.message.body.size":        attribute.IntValue(6),
		"hookbridge.route":                   attribute.StringValue(traceRoute),
		"hookbridge.webhook.id":              attribute.StringValue("orders-3-42"),
	}
	got := attrMap(s.Attributes())
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("process span: attribute %s missing", k)
			continue
		}
		if g.Type() != v.Type() || g != v {
			t.Errorf("process span: %s = %v (%s), want %v (%s)", k, g.String(), g.Type(), v.String(), v.Type())
		}
	}
	if len(got) != len(want) {
		t.Errorf("process span attributes = %v, want exactly %v", s.Attributes(), want)
	}
}

// checkChild checks that s is a child of parent in the same trace.
func checkChild(t *testing.T, s, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %q: parent %s/%s, want %q %s/%s", s.Name(), s.Parent().TraceID(), s.Parent().SpanID(),
			parent.Name(), parent.SpanContext().TraceID(), parent.SpanContext().SpanID())
	}
}

func TestTraceDelivered(t *testing.T) {
	t.Parallel()
	tr, sr := newTracer(t)
	seen := &spanCtxSeen{}
	tg := seen.wrap(&script{})
	res, err := deliverNow(t, t.Context(), tracedChain(tr, tg, &producer{}, &recorder{}, 3), delivery(testRecord()))
	if err != nil || res != nil {
		t.Fatalf("Deliver = %v, %v; want nil, nil", res, err)
	}
	process, attempts := byName(t, sr.Ended())
	if len(sr.Ended()) != 2 || len(attempts) != 1 {
		t.Fatalf("ended spans = %d (%d attempts), want a process span and one attempt span", len(sr.Ended()), len(attempts))
	}

	if process.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("process span kind = %v, want consumer", process.SpanKind())
	}
	p := process.Parent()
	if p.TraceID().String() != producerTraceID || p.SpanID().String() != producerSpanID || !p.IsRemote() {
		t.Errorf("process span parent = %s/%s remote=%v, want the producer's %s/%s, remote",
			p.TraceID(), p.SpanID(), p.IsRemote(), producerTraceID, producerSpanID)
	}
	if process.SpanContext().TraceID().String() != producerTraceID {
		t.Errorf("process span trace = %s, want the producer's %s", process.SpanContext().TraceID(), producerTraceID)
	}
	if l := process.Links(); len(l) != 1 || !l[0].SpanContext.Equal(p) {
		t.Errorf("process span links = %+v, want one link to the producer's context", l)
	}
	if process.Status().Code != codes.Unset {
		t.Errorf("process span status = %+v, want unset", process.Status())
	}
	checkProcessAttrs(t, process)

	a := attempts[0]
	checkChild(t, a, process)
	if a.SpanKind() != trace.SpanKindInternal {
		t.Errorf("attempt span kind = %v, want internal", a.SpanKind())
	}
	if got := attrMap(a.Attributes())[telemetry.KeyAttempt]; got != attribute.IntValue(1) {
		t.Errorf("attempt span hookbridge.attempt = %v, want int 1", got.String())
	}
	if a.Status().Code != codes.Unset {
		t.Errorf("attempt span status = %+v, want unset", a.Status())
	}
	// The target runs inside the attempt span: its client span will be a child of it.
	if s := seen.all(); len(s) != 1 || !s[0].Equal(a.SpanContext()) {
		t.Errorf("target saw span contexts %v, want the attempt span's %v", s, a.SpanContext())
	}
}

func TestTraceRetriedThenDelivered(t *testing.T) {
	t.Parallel()
	tr, sr := newTracer(t)
	errs := numbered("webhook: 503", 3)
	tg := &script{steps: steps(0, nil, fail(&target.Error{Kind: target.Retryable, Status: 503, Err: errs[0]}),
		fail(errs[1]), fail(errs[2]), ok(nil))}
	ev := &recorder{}
	if _, err := deliverNow(t, t.Context(), tracedChain(tr, tg, &producer{}, ev, 10), delivery(testRecord())); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	process, attempts := byName(t, sr.Ended())
	if len(attempts) != 4 {
		t.Fatalf("attempt spans = %d, want 4", len(attempts))
	}
	for i, a := range attempts {
		checkChild(t, a, process)
		attrs := attrMap(a.Attributes())
		if got := attrs[telemetry.KeyAttempt]; got != attribute.IntValue(i+1) {
			t.Errorf("attempt span %d: hookbridge.attempt = %v, want %d", i, got.String(), i+1)
		}
		if i < 3 {
			if a.Status().Code != codes.Error || a.Status().Description != errs[i].Error() {
				t.Errorf("attempt %d status = %+v, want error %q", i+1, a.Status(), errs[i])
			}
			if got := attrs[telemetry.KeyErrorKind]; got != attribute.StringValue("retryable") {
				t.Errorf("attempt %d error kind = %v, want retryable", i+1, got.String())
			}
			if ev := a.Events(); len(ev) != 1 || ev[0].Name != "exception" {
				t.Errorf("attempt %d events = %v, want the recorded exception", i+1, ev)
			}
		} else if a.Status().Code != codes.Unset {
			t.Errorf("delivering attempt status = %+v, want unset", a.Status())
		}
	}
	if st, ok := attrMap(attempts[0].Attributes())[telemetry.KeyErrorStatus]; !ok || st != attribute.IntValue(503) {
		t.Errorf("first attempt hookbridge.error.status = %v, want 503", st.String())
	}
	if _, ok := attrMap(attempts[1].Attributes())[telemetry.KeyErrorStatus]; ok {
		t.Errorf("second attempt (no HTTP status) has hookbridge.error.status")
	}
	if process.Status().Code != codes.Unset {
		t.Errorf("process span status = %+v, want unset: the record was delivered", process.Status())
	}
	if got := ev.count(evRetrying); got != 3 {
		t.Errorf("Retrying events = %d, want 3", got)
	}
}

func TestTraceDeadLettered(t *testing.T) {
	t.Parallel()
	tr, sr := newTracer(t)
	var mu sync.Mutex
	var produceCtx trace.SpanContext
	prod := &producer{fail: func(ctx context.Context, _ int) error {
		mu.Lock()
		produceCtx = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		return nil
	}}
	perm := &target.Error{Kind: target.Permanent, Status: 422, Err: errors.New("webhook: 422 Unprocessable Entity")}
	tg := &script{steps: steps(0, nil, fail(perm))}
	res, err := deliverNow(t, t.Context(), tracedChain(tr, tg, prod, &recorder{}, 5), delivery(testRecord()))
	if err != nil || res != nil {
		t.Fatalf("Deliver = %v, %v; want nil, nil (dead-lettered)", res, err)
	}
	process, attempts := byName(t, sr.Ended())
	if len(attempts) != 1 {
		t.Fatalf("attempt spans = %d, want 1 (a permanent failure is not retried)", len(attempts))
	}
	if process.Status().Code != codes.Unset {
		t.Errorf("process span status = %+v, want unset: dead-lettering is a terminal outcome", process.Status())
	}
	a := attempts[0]
	if a.Status().Code != codes.Error {
		t.Errorf("attempt status = %+v, want error", a.Status())
	}
	attrs := attrMap(a.Attributes())
	if attrs[telemetry.KeyErrorKind] != attribute.StringValue("permanent") || attrs[telemetry.KeyErrorStatus] != attribute.IntValue(422) {
		t.Errorf("attempt attributes = %v, want error kind permanent and status 422", a.Attributes())
	}
	// The dead-letter write runs inside the process span, so the producer's
	// send span is its child (bridge/kafka tests that span).
	mu.Lock()
	defer mu.Unlock()
	if !produceCtx.Equal(process.SpanContext()) {
		t.Errorf("dead-letter write ran in span %v, want the process span %v", produceCtx, process.SpanContext())
	}
	if len(prod.acked()) != 1 {
		t.Errorf("dead-letter writes = %d, want 1", len(prod.acked()))
	}
}

func TestTraceAbandonedEndsAtReturn(t *testing.T) {
	t.Parallel()
	tr, sr := newTracer(t)
	entered := make(chan struct{})
	tg := target.Func(func(ctx context.Context, _ *target.Delivery) (*target.Result, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithCancel(t.Context())
	ch := start(ctx, tracedChain(tr, tg, &producer{}, &recorder{}, 3), delivery(testRecord()))
	select {
	case <-entered:
	case <-time.After(guard):
		t.Fatal("target not called")
	}
	// The record is with the target: both spans started, neither ended.
	if n, e := len(sr.Started()), len(sr.Ended()); n != 2 || e != 0 {
		t.Fatalf("while the target runs: %d spans started, %d ended; want 2 and 0", n, e)
	}
	cancel()
	if o := await(t, ch); !errors.Is(o.err, context.Canceled) {
		t.Fatalf("Deliver error = %v, want canceled", o.err)
	}
	process, attempts := byName(t, sr.Ended())
	if len(attempts) != 1 {
		t.Fatalf("attempt spans = %d, want 1", len(attempts))
	}
	if process.Status().Code != codes.Error {
		t.Errorf("process span status = %+v, want error: the record was abandoned", process.Status())
	}
	attrs := attrMap(process.Attributes())
	if attrs[telemetry.KeyOutcome] != attribute.StringValue(telemetry.OutcomeAbandoned) ||
		attrs[telemetry.KeyErrorKind] != attribute.StringValue("canceled") {
		t.Errorf("process span attributes = %v, want outcome abandoned, error kind canceled", process.Attributes())
	}
}

func TestTraceParentFromHeaders(t *testing.T) {
	t.Parallel()
	const (
		tpA = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		tpB = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	h := func(kv ...string) []target.Header {
		var hs []target.Header
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, target.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	tests := []struct {
		name      string
		headers   []target.Header
		wantTrace string // "" = a new root
		wantSpan  string
		wantState string
	}{
		{name: "no headers", headers: nil},
		{name: "malformed traceparent", headers: h("traceparent", "00-not-a-trace-01")},
		{name: "all-zero trace id", headers: h("traceparent", "00-00000000000000000000000000000000-b7ad6b7169203331-01")},
		{name: "traceparent", headers: h("traceparent", tpA, "tracestate", "vendor=a"),
			wantTrace: "0af7651916cd43dd8448eb211c80319c", wantSpan: "b7ad6b7169203331", wantState: "vendor=a"},
		{name: "header key in capitals", headers: h("Traceparent", tpA),
			wantTrace: "0af7651916cd43dd8448eb211c80319c", wantSpan: "b7ad6b7169203331"},
		{name: "ce_traceparent only", headers: h("ce_traceparent", tpB, "ce_tracestate", "vendor=ce"),
			wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantSpan: "00f067aa0ba902b7", wantState: "vendor=ce"},
		{name: "traceparent wins over ce_traceparent", headers: h("ce_traceparent", tpB, "traceparent", tpA),
			wantTrace: "0af7651916cd43dd8448eb211c80319c", wantSpan: "b7ad6b7169203331"},
		{name: "malformed traceparent, valid ce_traceparent", headers: h("traceparent", "garbage", "ce_traceparent", tpB),
			wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantSpan: "00f067aa0ba902b7"},
		{name: "malformed ce_traceparent only", headers: h("ce_traceparent", "00-zz")},
		{name: "last of repeated traceparents", headers: h("traceparent", tpB, "traceparent", tpA),
			wantTrace: "0af7651916cd43dd8448eb211c80319c", wantSpan: "b7ad6b7169203331"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, sr := newTracer(t)
			rec := testRecord()
			rec.Headers = tt.headers
			// A span already in ctx never becomes the parent: only the record decides.
			ctx, outer := tr.Start(t.Context(), "outer")
			defer outer.End()
			if _, err := deliverNow(t, ctx, tracedChain(tr, &script{}, &producer{}, &recorder{}, 1), delivery(rec)); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			var process sdktrace.ReadOnlySpan
			for _, s := range sr.Ended() {
				if s.Name() == "process orders" {
					process = s
				}
			}
			if process == nil {
				t.Fatal("no process span")
			}
			p := process.Parent()
			if tt.wantTrace == "" {
				if p.IsValid() {
					t.Errorf("parent = %s/%s, want none (a new root)", p.TraceID(), p.SpanID())
				}
				if len(process.Links()) != 0 {
					t.Errorf("links = %v, want none", process.Links())
				}
				if process.SpanContext().TraceID() == outer.SpanContext().TraceID() {
					t.Errorf("the process span joined the trace of the span in ctx")
				}
				return
			}
			if p.TraceID().String() != tt.wantTrace || p.SpanID().String() != tt.wantSpan || !p.IsRemote() {
				t.Errorf("parent = %s/%s remote=%v, want %s/%s remote", p.TraceID(), p.SpanID(), p.IsRemote(), tt.wantTrace, tt.wantSpan)
			}
			if got := p.TraceState().String(); got != tt.wantState {
				t.Errorf("parent tracestate = %q, want %q", got, tt.wantState)
			}
			if l := process.Links(); len(l) != 1 || !l[0].SpanContext.Equal(p) {
				t.Errorf("links = %v, want one to the parent", l)
			}
		})
	}
}

func TestTraceUnsampledProducer(t *testing.T) {
	t.Parallel()
	tr, sr := newTracer(t)
	rec := testRecord()
	rec.Headers = []target.Header{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")}}
	seen := &spanCtxSeen{}
	if _, err := deliverNow(t, t.Context(), tracedChain(tr, seen.wrap(&script{}), &producer{}, &recorder{}, 1), delivery(rec)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	// Parent-based sampling: nothing is recorded, but the trace id still
	// travels on to the target.
	if n := len(sr.Ended()); n != 0 {
		t.Errorf("recorded %d spans of an unsampled trace, want 0", n)
	}
	s := seen.all()
	if len(s) != 1 || s[0].TraceID().String() != producerTraceID || s[0].IsSampled() {
		t.Errorf("target saw %v, want the producer's trace id, not sampled", s)
	}
}

func TestTraceKeyAttribute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		key      []byte
		want     *attribute.Value // nil: absent
		encoding string
	}{
		{name: "null key", key: nil},
		{name: "empty key", key: []byte{}, want: new(attribute.StringValue(""))},
		{name: "utf-8 key", key: []byte("kunde-ä"), want: new(attribute.StringValue("kunde-ä"))},
		{name: "binary key", key: []byte{0xff, 0x00, 0xfe},
			want: new(attribute.StringValue(base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0xfe}))), encoding: "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, sr := newTracer(t)
			rec := testRecord()
			rec.Key = tt.key
			if _, err := deliverNow(t, t.Context(), tracedChain(tr, &script{}, &producer{}, &recorder{}, 1), delivery(rec)); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			process, _ := byName(t, sr.Ended())
			attrs := attrMap(process.Attributes())
			got, found := attrs[telemetry.KeyMessagingKafkaMessageKey]
			switch {
			case tt.want == nil && found:
				t.Errorf("messaging.kafka.message.key = %q, want absent", got.String())
			case tt.want != nil && (!found || got != *tt.want):
				t.Errorf("messaging.kafka.message.key = %q (found %v), want %q", got.String(), found, tt.want.String())
			}
			enc, found := attrs[telemetry.KeyKeyEncoding]
			if (tt.encoding == "") == found || (found && enc.AsString() != tt.encoding) {
				t.Errorf("key encoding attribute = %q (found %v), want %q", enc.String(), found, tt.encoding)
			}
		})
	}
}

// Span names follow each record's topic and route, also when they change
// from one record to the next (the names are kept for the last one).
func TestSpanNamesFollowTopicAndRoute(t *testing.T) {
	tr, sr := newTracer(t)
	chain := target.Chain(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return &target.Result{}, nil
	}), dispatch.Trace(tr, traceRoute, traceGroup), dispatch.AttemptTrace(tr))
	var want []string
	for _, topic := range []string{"orders", "refunds", "refunds", "orders"} {
		for _, route := range []string{"a", "b"} {
			rec := &target.Record{Topic: topic, Value: []byte("x")}
			if _, err := chain.Deliver(t.Context(), &target.Delivery{Route: route, Record: rec, Attempt: 1}); err != nil {
				t.Fatal(err)
			}
			want = append(want, "deliver "+route, "process "+topic) // ended inner first
		}
	}
	var got []string
	for _, s := range sr.Ended() {
		got = append(got, s.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("span names %q, want %q", got, want)
	}
}

// A process span whose record was abandoned failed: besides its status it
// has the semantic conventions' error.type (conditionally required on a
// messaging span whose operation failed), the failure's kind. A
// dead-lettered record's process span did not fail and has none.
func TestTraceFailedProcessSpanHasErrorType(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		err  error
		want string // "" = no error.type
	}{
		{"gone", &target.Error{Kind: target.Gone, Status: 410, Err: errors.New("gone")}, "gone"},
		{"canceled", context.Canceled, "canceled"},
		{"dead-lettered", target.NewPermanent(errors.New("refused")), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, sr := newTracer(t)
			tg := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) { return nil, c.err })
			_, _ = tracedChain(tr, tg, &producer{}, &recorder{}, 1).Deliver(t.Context(), delivery(testRecord()))
			process, _ := byName(t, sr.Ended())
			got, has := attrMap(process.Attributes())[telemetry.KeyErrorType]
			if c.want == "" {
				if has {
					t.Errorf("error.type = %q on a process span that did not fail", got.String())
				}
				return
			}
			if got.AsString() != c.want {
				t.Errorf("error.type = %q, want %q (attributes %v)", got.String(), c.want, process.Attributes())
			}
		})
	}
}
