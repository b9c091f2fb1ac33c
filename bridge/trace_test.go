package bridge

// The whole dispatch chain as buildChain assembles it, with its real
// webhook target, a real kafka.Producer on the embedded broker and the real
// routeEvents: the span tree of a record, the span events, the context
// injected into the dead-letter record and the trace ids in the log lines.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
	"github.com/hookbridge/hookbridge/bridge/webhook"
)

const traceDLQ = "orders.dlq"

var (
	spansOnce sync.Once
	spans     *tracetest.SpanRecorder
)

// recordSpans installs, once per test binary, a global TracerProvider whose
// spans go to a recorder, and the propagator SetupTracing installs. Tests
// tell their spans apart by trace id (every test record has its own).
func recordSpans() *tracetest.SpanRecorder {
	spansOnce.Do(func() {
		spans = tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
		otel.SetTextMapPropagator(telemetry.RecordPropagator)
	})
	return spans
}

// spansOf returns the ended spans of one trace.
func spansOf(id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range recordSpans().Ended() {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines whose msg is msg.
func (b *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// traceRig is one route's chain in front of an instrumented receiver.
type traceRig struct {
	chain  target.Target
	client sarama.Client
	logs   *syncBuffer
	// receiver
	mu          sync.Mutex
	traceparent []string
}

// newTraceRig builds the chain of a route whose webhook answers with the
// statuses in order (the last one repeated).
func newTraceRig(t *testing.T, statuses ...int) *traceRig {
	t.Helper()
	recordSpans()
	rig := &traceRig{logs: &syncBuffer{}}
	var calls atomic.Int64
	srv := httptest.NewServer(otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.mu.Lock()
		rig.traceparent = append(rig.traceparent, r.Header.Get("traceparent"))
		rig.mu.Unlock()
		n := int(calls.Add(1))
		w.WriteHeader(statuses[min(n, len(statuses))-1])
	}), "receive"))
	t.Cleanup(srv.Close)

	emb, err := kafka.StartEmbedded("", 1, traceDLQ)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	sc, err := kafka.NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	rig.client, err = sarama.NewClient(emb.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rig.client.Close() })
	prod, err := kafka.NewProducer(rig.client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })

	r := config.Route{Name: "orders-billing", Topics: []string{"orders"},
		Target:     config.RouteTarget{Webhook: &config.Webhook{URL: srv.URL}},
		Retry:      config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(2 * time.Millisecond)},
		DeadLetter: config.DeadLetter{Topic: traceDLQ}}
	tg, err := webhook.New(webhook.Options{Route: r.Name, Group: r.GroupID(), Config: *r.Target.Webhook, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tg.Close(context.WithoutCancel(t.Context())) })
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = metrics.Shutdown(context.WithoutCancel(t.Context())) })
	ev := &routeEvents{log: telemetry.NewLogger(rig.logs, "json", "debug").With("route", r.Name),
		metrics: metrics.Route(r.Name, r.GroupID(), nil)}
	br := dispatch.NewBreaker(dispatch.BreakerSettings{Name: srv.URL, FailureRatio: 1, MinRequests: 1000, OpenTimeout: time.Second})
	rig.chain = buildChain(r, tg, prod, ev, br)
	return rig
}

// producedRecord returns a record whose producer left a fresh sampled
// trace context in its traceparent header (and a stale tracestate).
func producedRecord(offset int64) (*target.Record, trace.SpanContext) {
	var tid trace.TraceID
	var sid trace.SpanID
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return &target.Record{Topic: "orders", Partition: 2, Offset: offset, Key: []byte("customer-7"), Value: []byte(`{"n":1}`),
		Headers: []target.Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "traceparent", Value: fmt.Appendf(nil, "00-%s-%s-01", tid, sid)},
			{Key: "tracestate", Value: []byte("producer=1")},
		}}, sc
}

func (rig *traceRig) deliver(t *testing.T, rec *target.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a hang guard only
	defer cancel()
	if _, err := rig.chain.Deliver(ctx, &target.Delivery{Route: "orders-billing", Record: rec, Attempt: 1}); err != nil {
		t.Fatalf("Deliver: %v (want a terminal outcome)", err)
	}
}

// tree is a trace's spans by role.
type tree struct {
	process  sdktrace.ReadOnlySpan
	attempts []sdktrace.ReadOnlySpan
	clients  []sdktrace.ReadOnlySpan
	servers  []sdktrace.ReadOnlySpan
	sends    []sdktrace.ReadOnlySpan
}

// waitTree waits until the trace holds want server spans (the receiver's
// span may end just after the client saw the answer) and sorts it by role.
func waitTree(t *testing.T, id trace.TraceID, servers int) tree {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // a hang guard only
	for {
		var tr tree
		for _, s := range spansOf(id) {
			switch {
			case s.Name() == "process orders":
				tr.process = s
			case s.Name() == "deliver orders-billing":
				tr.attempts = append(tr.attempts, s)
			case s.SpanKind() == trace.SpanKindClient:
				tr.clients = append(tr.clients, s)
			case s.SpanKind() == trace.SpanKindServer:
				tr.servers = append(tr.servers, s)
			case s.Name() == "send "+traceDLQ:
				tr.sends = append(tr.sends, s)
			default:
				t.Fatalf("unexpected span %q (%v)", s.Name(), s.SpanKind())
			}
		}
		if len(tr.servers) >= servers && tr.process != nil {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %d server spans, process span %v; want %d and one", id, len(tr.servers), tr.process != nil, servers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func parentIs(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("%q (%v): parent %s, want %q %s", child.Name(), child.SpanKind(), child.Parent().SpanID(),
			parent.Name(), parent.SpanContext().SpanID())
	}
}

func attrOf(s sdktrace.ReadOnlySpan, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func eventNames(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, e := range s.Events() {
		out = append(out, e.Name)
	}
	return out
}

// checkAttempts checks n attempts, each with one HTTP client span and one
// receiver span below it, and the traceparent the receiver got.
func (rig *traceRig) checkAttempts(t *testing.T, tr tree, n int) {
	t.Helper()
	if len(tr.attempts) != n || len(tr.clients) != n || len(tr.servers) != n {
		t.Fatalf("attempt/client/server spans = %d/%d/%d, want %d each", len(tr.attempts), len(tr.clients), len(tr.servers), n)
	}
	rig.mu.Lock()
	defer rig.mu.Unlock()
	for i := range n {
		a, c, s := tr.attempts[i], tr.clients[i], tr.servers[i]
		parentIs(t, a, tr.process)
		parentIs(t, c, a)
		parentIs(t, s, c)
		if got := attrOf(a, telemetry.KeyAttempt); got != attribute.IntValue(i+1) {
			t.Errorf("attempt span %d: hookbridge.attempt = %v", i, got.String())
		}
		want := fmt.Sprintf("00-%s-%s-01", c.SpanContext().TraceID(), c.SpanContext().SpanID())
		if rig.traceparent[i] != want {
			t.Errorf("receiver's traceparent %d = %q, want %q (the HTTP client span)", i, rig.traceparent[i], want)
		}
	}
}

func checkProcess(t *testing.T, tr tree, producer trace.SpanContext, outcome string, attempts int) {
	t.Helper()
	p := tr.process
	if p.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("process span kind = %v", p.SpanKind())
	}
	if p.Parent().SpanID() != producer.SpanID() || !p.Parent().IsRemote() {
		t.Errorf("process span parent = %v, want the producer's span %s", p.Parent(), producer.SpanID())
	}
	if l := p.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != producer.SpanID() {
		t.Errorf("process span links = %v, want one to the producer", l)
	}
	if p.Status().Code != codes.Unset {
		t.Errorf("process span status = %+v, want unset (terminal outcome)", p.Status())
	}
	if got := attrOf(p, telemetry.KeyOutcome); got.AsString() != outcome {
		t.Errorf("hookbridge.outcome = %q, want %q", got.String(), outcome)
	}
	if got := attrOf(p, telemetry.KeyAttempts); got != attribute.IntValue(attempts) {
		t.Errorf("hookbridge.attempts = %v, want %d", got.String(), attempts)
	}
	if got := attrOf(p, telemetry.KeyMessagingPartitionID); got != attribute.StringValue("2") {
		t.Errorf("partition id = %v (%s), want the string 2", got.String(), got.Type())
	}
	if got := attrOf(p, telemetry.KeyMessagingMessageID); got.AsString() != "orders-2-"+fmt.Sprint(attrOf(p, telemetry.KeyMessagingKafkaOffset).AsInt64()) {
		t.Errorf("messaging.message.id = %q, want the webhook-id", got.String())
	}
}

// checkLog checks that the log line msg carries the process span's ids.
func (rig *traceRig) checkLog(t *testing.T, msg string, process sdktrace.ReadOnlySpan) {
	t.Helper()
	lines := rig.logs.lines(t, msg)
	if len(lines) != 1 {
		t.Fatalf("log lines %q = %d, want 1", msg, len(lines))
	}
	l := lines[0]
	if l["trace_id"] != process.SpanContext().TraceID().String() || l["span_id"] != process.SpanContext().SpanID().String() {
		t.Errorf("log line %q: trace_id %v span_id %v, want the process span's %s %s", msg, l["trace_id"], l["span_id"],
			process.SpanContext().TraceID(), process.SpanContext().SpanID())
	}
}

func TestChainTraceDelivered(t *testing.T) {
	t.Parallel()
	rig := newTraceRig(t, http.StatusNoContent)
	rec, producer := producedRecord(7)
	rig.deliver(t, rec)
	tr := waitTree(t, producer.TraceID(), 1)
	checkProcess(t, tr, producer, telemetry.OutcomeDelivered, 1)
	rig.checkAttempts(t, tr, 1)
	if len(tr.sends) != 0 {
		t.Errorf("send spans = %d, want none", len(tr.sends))
	}
	if got := eventNames(tr.process); !slices.Equal(got, []string{telemetry.EventDelivered}) {
		t.Errorf("process span events = %q, want [delivered]", got)
	}
	rig.checkLog(t, "delivered", tr.process)
}

func TestChainTraceRetriedThenDelivered(t *testing.T) {
	t.Parallel()
	rig := newTraceRig(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK)
	rec, producer := producedRecord(8)
	rig.deliver(t, rec)
	tr := waitTree(t, producer.TraceID(), 3)
	checkProcess(t, tr, producer, telemetry.OutcomeDelivered, 3)
	rig.checkAttempts(t, tr, 3)
	for i, a := range tr.attempts {
		failed := i < 2
		if (a.Status().Code == codes.Error) != failed {
			t.Errorf("attempt %d status = %+v, want error %v", i+1, a.Status(), failed)
		}
		if failed && attrOf(a, telemetry.KeyErrorStatus) != attribute.IntValue(503) {
			t.Errorf("attempt %d hookbridge.error.status = %v, want 503", i+1, attrOf(a, telemetry.KeyErrorStatus).String())
		}
	}
	want := []string{telemetry.EventRetry, telemetry.EventRetry, telemetry.EventDelivered}
	if got := eventNames(tr.process); !slices.Equal(got, want) {
		t.Fatalf("process span events = %q, want %q", got, want)
	}
	for i, e := range tr.process.Events()[:2] {
		attrs := attribute.NewSet(e.Attributes...)
		if v, _ := attrs.Value(telemetry.KeyAttempt); v != attribute.IntValue(i+1) {
			t.Errorf("retry event %d: attempt = %v", i, v.String())
		}
		if v, _ := attrs.Value(telemetry.KeyErrorStatus); v != attribute.IntValue(503) {
			t.Errorf("retry event %d: status = %v", i, v.String())
		}
		if v, ok := attrs.Value(telemetry.KeyRetryWait); !ok || v.Type() != attribute.FLOAT64 {
			t.Errorf("retry event %d: wait = %v, want seconds as a double", i, v.String())
		}
	}
	if n := len(rig.logs.lines(t, "retrying")); n != 2 {
		t.Errorf("retrying log lines = %d, want 2", n)
	}
}

func TestChainTraceDeadLettered(t *testing.T) {
	t.Parallel()
	rig := newTraceRig(t, http.StatusUnprocessableEntity)
	rec, producer := producedRecord(9)
	rig.deliver(t, rec)
	tr := waitTree(t, producer.TraceID(), 1)
	checkProcess(t, tr, producer, telemetry.OutcomeDeadLettered, 1)
	rig.checkAttempts(t, tr, 1)
	if tr.attempts[0].Status().Code != codes.Error {
		t.Errorf("attempt status = %+v, want error", tr.attempts[0].Status())
	}
	if got := eventNames(tr.process); !slices.Equal(got, []string{telemetry.EventDeadLettered}) {
		t.Errorf("process span events = %q, want [dead_lettered]", got)
	}
	if len(tr.sends) != 1 {
		t.Fatalf("send spans = %d, want one dead-letter write", len(tr.sends))
	}
	send := tr.sends[0]
	parentIs(t, send, tr.process)
	if send.SpanKind() != trace.SpanKindProducer {
		t.Errorf("send span kind = %v, want producer", send.SpanKind())
	}
	// The dead-letter record carries the send span's context, not the
	// original producer's; its tracestate is the send span's (inherited
	// along the trace), once.
	c, err := sarama.NewConsumerFromClient(rig.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(traceDLQ, 0, attrOf(send, telemetry.KeyMessagingKafkaOffset).AsInt64())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var m *sarama.ConsumerMessage
	select {
	case m = <-pc.Messages():
	case <-time.After(20 * time.Second):
		t.Fatal("no dead-letter record")
	}
	var tps, states []string
	for _, h := range m.Headers {
		switch string(h.Key) {
		case "traceparent":
			tps = append(tps, string(h.Value))
		case "tracestate":
			states = append(states, string(h.Value))
		}
	}
	want := fmt.Sprintf("00-%s-%s-01", producer.TraceID(), send.SpanContext().SpanID())
	if len(tps) != 1 || tps[0] != want || len(states) != 1 || states[0] != send.SpanContext().TraceState().String() {
		t.Errorf("dead-letter record traceparent %q tracestate %q; want [%q] and [%q]", tps, states, want, send.SpanContext().TraceState())
	}
	// A consumer of the dead-letter topic continues the same trace.
	_, got := telemetry.ExtractRecord(t.Context(), []target.Header{{Key: "traceparent", Value: []byte(tps[0])}})
	if got.TraceID() != producer.TraceID() || got.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("extracted from the dead-letter record: %v", got)
	}
	rig.checkLog(t, "dead-lettered", tr.process)
}

func TestRouteEventsSpanEvents(t *testing.T) {
	t.Parallel()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.WithoutCancel(t.Context())) }()
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = metrics.Shutdown(context.WithoutCancel(t.Context())) }()
	r := config.Route{Name: "orders-billing", Topics: []string{"orders"}}
	logs := &syncBuffer{}
	ev := &routeEvents{log: telemetry.NewLogger(logs, "json", "debug"), metrics: metrics.Route(r.Name, r.GroupID(), nil),
		consumer: kafka.NewConsumer(kafka.ConsumerOptions{Route: r, Logger: telemetry.NewLogger(logs, "json", "debug")})}

	rec, _ := producedRecord(11)
	d := &target.Delivery{Route: r.Name, Record: rec, Attempt: 2}
	ctx, span := tp.Tracer("t").Start(t.Context(), "process orders")
	ev.Waiting(ctx, d, &dispatch.BreakerOpenError{Target: "https://billing.example/hook", State: dispatch.BreakerOpen})
	ev.Stuck(ctx, rec, fmt.Errorf("kafka: produce to orders.dlq: %w", sarama.ErrNotEnoughReplicas))
	ev.Unstuck(ctx, rec)
	span.End()

	s := sr.Ended()[0]
	if got, want := eventNames(s), []string{telemetry.EventBreakerWait, telemetry.EventStuck, telemetry.EventUnstuck}; !slices.Equal(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	wait := attribute.NewSet(s.Events()[0].Attributes...)
	if v, _ := wait.Value(telemetry.KeyBreakerState); v.AsString() != "open" {
		t.Errorf("breaker_wait state = %q, want open", v.String())
	}
	if v, _ := wait.Value(telemetry.KeyBreakerTarget); v.AsString() != "https://billing.example/hook" {
		t.Errorf("breaker_wait target = %q", v.String())
	}
	stuck := attribute.NewSet(s.Events()[1].Attributes...)
	if v, _ := stuck.Value(telemetry.KeyExceptionMessage); !strings.Contains(v.AsString(), "orders.dlq") {
		t.Errorf("stuck exception.message = %q", v.String())
	}
	for _, msg := range []string{"waiting for the target's breaker",
		"record cannot reach a terminal outcome; its partition will not commit past it", "stuck record moved on"} {
		lines := logs.lines(t, msg)
		if len(lines) != 1 || lines[0]["trace_id"] != s.SpanContext().TraceID().String() {
			t.Errorf("log line %q = %v, want one with the span's trace_id", msg, lines)
		}
	}
}
