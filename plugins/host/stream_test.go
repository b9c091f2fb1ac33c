package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/plugins/host"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// deliverConcurrently makes n calls at once, each with its own value, and
// checks that every call got back its own value (the test plugin echoes
// it): no answer went to the wrong caller.
func deliverConcurrently(t *testing.T, p *host.Pool, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			want := fmt.Appendf(nil, "record-%d", i)
			res, err := p.Deliver(t.Context(), delivery(int64(i), "ack", want))
			switch {
			case err != nil:
				errs <- fmt.Errorf("call %d: %w", i, err)
			case len(res.Outputs) != 1 || !bytes.Equal(res.Outputs[0].Value, want):
				errs <- fmt.Errorf("call %d: got %+v, want one output %q", i, res.Outputs, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCallsGoOverOneStreamPerProcess(t *testing.T) {
	p, _ := startOne(t, func(cfg *config.Plugin) {
		cfg.ConcurrencyPerInstance = 32
	})
	deliverConcurrently(t, p, 300)
	if s := p.Stats(); s.Instances != 1 || s.Streams != 1 || s.Restarts != 0 {
		t.Errorf("stats = %+v, want the one process on its stream, no restart", s)
	}
}

// With many calls in flight on a stream, the host packs the calls that wait
// for the stream into one message, and every call still gets its own answer.
func TestCallsArePackedWhenThePluginTakesThem(t *testing.T) {
	p, _ := startOne(t, func(cfg *config.Plugin) {
		cfg.ConcurrencyPerInstance = 64
	})
	// Whether calls queue up behind a send is up to the scheduler; a few
	// rounds of 300 calls make it certain in practice.
	for round := 0; ; round++ {
		deliverConcurrently(t, p, 300)
		if msgs, calls := p.Packed(); msgs > 0 {
			if calls < 2*msgs {
				t.Errorf("%d packed messages carried %d calls; each carries two or more", msgs, calls)
			}
			break
		}
		if round == 20 {
			t.Fatal("6,300 calls, 64 at a time, and not one packed message")
		}
	}
	if s := p.Stats(); s.Instances != 1 || s.Streams != 1 || s.Restarts != 0 {
		t.Errorf("stats = %+v, want the one process on its stream, no restart", s)
	}
}

// A plugin whose ready message does not offer to take packed calls (one
// built before packing) gets one call per message; it ends its stream if it
// gets a packed one, which would show as a restart or a failed call.
func TestPluginThatDoesNotPackGetsOneCallPerMessage(t *testing.T) {
	p, _ := startOne(t, func(cfg *config.Plugin) {
		cfg.ConcurrencyPerInstance = 64
		cfg.Env = map[string]string{"TESTPLUGIN_NO_PACKING": "1"}
	})
	for range 3 {
		deliverConcurrently(t, p, 300)
	}
	if msgs, _ := p.Packed(); msgs != 0 {
		t.Errorf("%d packed messages to a plugin that did not offer to take them", msgs)
	}
	if s := p.Stats(); s.Instances != 1 || s.Streams != 1 || s.Restarts != 0 {
		t.Errorf("stats = %+v, want the one process on its stream, no restart", s)
	}
}

func TestPluginWithoutHandleStreamGetsHandleCalls(t *testing.T) {
	p, logs := startOne(t, func(cfg *config.Plugin) {
		cfg.ConcurrencyPerInstance = 16
		cfg.Env = map[string]string{"TESTPLUGIN_UNARY_ONLY": "1"}
	})
	deliverConcurrently(t, p, 100)
	_, err := p.Deliver(t.Context(), delivery(1000, "permanent", nil))
	if target.KindOf(err) != target.Permanent {
		t.Errorf("permanent handler error: err = %v (kind %v)", err, target.KindOf(err))
	}
	if s := p.Stats(); s.Instances != 1 || s.Streams != 0 || s.Restarts != 0 {
		t.Errorf("stats = %+v, want one process without a stream, no restart", s)
	}
	if want := "plugin has no HandleStream"; !bytes.Contains([]byte(logs.String()), []byte(want)) {
		t.Errorf("the pool log does not say %q", want)
	}
}

// The handler's context has the call's deadline on the stream as in a Handle
// call, so that it stops on time even if the host's cancel message never
// reaches it.
func TestHandlerGetsTheCallsDeadline(t *testing.T) {
	for name, env := range map[string]map[string]string{"stream": nil, "handle": {"TESTPLUGIN_UNARY_ONLY": "1"}} {
		t.Run(name, func(t *testing.T) {
			p, _ := startOne(t, func(cfg *config.Plugin) {
				cfg.Env = env
				cfg.Timeout = config.Duration(7 * time.Second)
			})
			res, err := p.Deliver(t.Context(), delivery(1, "deadline", nil))
			if err != nil {
				t.Fatal(err)
			}
			left, err := strconv.Atoi(string(res.Outputs[0].Value))
			if err != nil || left <= 0 || left > 7000 {
				t.Fatalf("the handler saw %q ms left, want a deadline within the 7s timeout", res.Outputs[0].Value)
			}
			if s := p.Stats(); (s.Streams == 1) != (name == "stream") {
				t.Fatalf("stats = %+v: the call did not take the %s path", s, name)
			}
		})
	}
}

// A record that fits the message limit on its own but not in the stream's
// envelope goes as a Handle call, and the stream carries on.
func TestRecordTooLargeForTheStreamEnvelopeGoesAsAHandleCall(t *testing.T) {
	p, _ := startOne(t, func(cfg *config.Plugin) {
		cfg.MaxMessageBytes = 1 << 20
	})
	// A request 2 bytes under the limit: the envelope (field tag, length, call id) adds more.
	d := delivery(1, "ack", bytes.Repeat([]byte("x"), 1<<20-200))
	d.Record.Value = bytes.Repeat([]byte("x"), len(d.Record.Value)+(1<<20-2)-host.RequestSize(d))
	if n := host.RequestSize(d); n != 1<<20-2 {
		t.Fatalf("request of %d bytes, want %d", n, 1<<20-2)
	}
	big := d.Record.Value
	res, err := p.Deliver(t.Context(), d)
	if err != nil {
		t.Fatalf("record just under the limit: %v", err)
	}
	if len(res.Outputs) != 1 || !bytes.Equal(res.Outputs[0].Value, big) {
		t.Fatalf("the reply is not the record's value")
	}
	deliverConcurrently(t, p, 20)
	if s := p.Stats(); s.Streams != 1 || s.Restarts != 0 {
		t.Errorf("stats = %+v, want the stream still in use, no restart", s)
	}
}

// A record that fits the limit with the stream's usual envelope, but not
// with the baggage of its trace context in the call's metadata (baggage comes
// from the record's headers and may take kilobytes), goes as a Handle call:
// on the stream its message would exceed the limit, and gRPC would end the
// stream with every call on it, again in every process the call was retried
// on.
func TestCallWithLargeBaggageGoesAsAHandleCall(t *testing.T) {
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { otel.SetTextMapPropagator(prevProp) })
	const limit = 64 << 10
	p, _ := startOne(t, func(cfg *config.Plugin) {
		cfg.MaxMessageBytes = limit
	})
	var members []baggage.Member
	for i := range 10 {
		m, err := baggage.NewMember(fmt.Sprintf("key%d", i), strings.Repeat("v", 150))
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
	}
	bag, err := baggage.New(members...)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(bag.String()); n < 1500 {
		t.Fatalf("baggage of %d bytes, want about 1.5 KB", n)
	}
	ctx := baggage.ContextWithBaggage(t.Context(), bag)

	// A request 600 bytes under the limit: within the 512 bytes the
	// stream's envelope was once taken to add, not with the baggage.
	d := delivery(1, "ack", make([]byte, limit-1000))
	d.Record.Value = make([]byte, len(d.Record.Value)+(limit-600)-host.RequestSize(d))
	if n := host.RequestSize(d); n != limit-600 {
		t.Fatalf("request of %d bytes, want %d", n, limit-600)
	}
	res, err := p.Deliver(ctx, d)
	if err != nil {
		t.Fatalf("record 600 bytes under the limit, with %d bytes of baggage: %v", len(bag.String()), err)
	}
	if len(res.Outputs) != 1 || !bytes.Equal(res.Outputs[0].Value, d.Record.Value) {
		t.Fatalf("the reply is not the record's value")
	}
	pid := replyPID(t, res)

	// The stream still carries the calls, baggage and all, in the same
	// process.
	res, err = p.Deliver(ctx, delivery(2, "ack", []byte("small")))
	if err != nil {
		t.Fatalf("the next call: %v", err)
	}
	if got := replyPID(t, res); got != pid {
		t.Errorf("the next call was answered by process %d, want %d (the same)", got, pid)
	}
	deliverConcurrently(t, p, 20)
	if s := p.Stats(); s.Streams != 1 || s.Restarts != 0 {
		t.Errorf("stats = %+v, want the stream still in use, no restart", s)
	}
}

// A call on the stream has a client span of its own under the caller's span,
// named and attributed like the gRPC instrumentation's span of a Handle
// call, and its context reaches the plugin (which continues it; the e2e
// tier checks the plugin's server span in Jaeger).
// recordSpans makes a recording tracer provider and the W3C propagator the
// global ones until the test ends.
func recordSpans(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})
	return rec, tp
}

func TestStreamCallSpan(t *testing.T) {
	rec, tp := recordSpans(t)

	p, _ := startOne(t, nil)
	ctx, parent := tp.Tracer("test").Start(t.Context(), "deliver")
	_, err := p.Deliver(ctx, delivery(1, "ack", nil))
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Deliver(t.Context(), delivery(2, "permanent", nil)); target.KindOf(err) != target.Permanent {
		t.Fatalf("err = %v, want permanent", err)
	}
	var calls []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == protocol.CallSpanName {
			calls = append(calls, s)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("%d spans named %s, want 2 (one per call)", len(calls), protocol.CallSpanName)
	}
	s := calls[0]
	if s.SpanKind() != trace.SpanKindClient {
		t.Errorf("kind %v, want client", s.SpanKind())
	}
	if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("call span's parent %v, want the caller's span %v", s.Parent(), parent.SpanContext())
	}
	attrs := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		attrs[kv.Key] = kv.Value.String()
	}
	for k, want := range map[attribute.Key]string{"rpc.system.name": "grpc", "rpc.method": protocol.CallSpanName, "rpc.response.status_code": "OK"} {
		if attrs[k] != want {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
		}
	}
	// A handler's error is an answer, not a failed call: the call span of
	// the permanent failure is OK too, as a Handle call's would be.
	if got := calls[1].Status().Code; got != codes.Unset {
		t.Errorf("span of a call the handler failed: status %v, want unset", got)
	}
}

// go-plugin's own calls (the health check, the stdio and broker streams,
// shutdown) make no spans: they would be traces of their own, about no
// record. Only the calls of records do.
func TestNoSpansForGoPluginsOwnCalls(t *testing.T) {
	rec, tp := recordSpans(t)
	for name, env := range map[string]map[string]string{"stream": nil, "handle": {"TESTPLUGIN_UNARY_ONLY": "1"}} {
		p, _ := startOne(t, func(cfg *config.Plugin) { cfg.Env = env })
		ctx, parent := tp.Tracer("test").Start(t.Context(), "deliver")
		if _, err := p.Deliver(ctx, delivery(1, "ack", nil)); err != nil {
			t.Fatal(err)
		}
		parent.End()
		closeCtx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		if err := p.Close(closeCtx); err != nil {
			t.Fatal(err)
		}
		cancel()
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
				t.Errorf("%s: span %q (%v) is in a trace of its own", name, s.Name(), s.SpanKind())
			}
		}
		rec.Reset()
	}
}

// A plugin that stops reading its stream (HTTP/2 flow control then holds
// the host's sends) makes calls time out, as a hung Handle call would; it
// must not hold them past their timeout.
func TestCallsTimeOutWhenThePluginStopsReadingItsStream(t *testing.T) {
	p, _ := startOne(t, func(cfg *config.Plugin) {
		cfg.ConcurrencyPerInstance = 8
		cfg.Timeout = config.Duration(300 * time.Millisecond)
		cfg.Env = map[string]string{"TESTPLUGIN_STREAM_STALL": "1"}
	})
	if s := p.Stats(); s.Streams != 1 {
		t.Fatalf("stats = %+v, want the process on its stream", s)
	}
	// 256 KB records: a few fill the stream's flow-control window.
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			_, err := p.Deliver(t.Context(), delivery(int64(i), "ack", make([]byte, 256<<10)))
			errs <- err
		}()
	}
	hang := time.After(30 * time.Second) // a hang guard, not a timing assertion
	for range 16 {
		select {
		case err := <-errs:
			if target.KindOf(err) != target.Retryable || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v (kind %v), want a retryable timeout", err, target.KindOf(err))
			}
		case <-hang:
			t.Fatal("calls to a plugin that stopped reading its stream did not return")
		}
	}
}

// A plugin that serves HandleStream itself (not through sdk.Serve) and
// answers a call above the message limit has its stream ended by its own
// gRPC, with RESOURCE_EXHAUSTED. That is the call's failure, not the
// process's: the call fails permanently, as it does as a Handle call, the
// calls that were waiting on the stream are answered by the same process,
// and the process carries on, with a Handle call per record.
func TestAnswerAboveTheLimitOnAPluginsOwnStreamFailsOnlyItsCall(t *testing.T) {
	p, logs := startOne(t, func(cfg *config.Plugin) {
		cfg.Env = map[string]string{"TESTPLUGIN_OWN_STREAM": "1"}
	})
	if s := p.Stats(); s.Streams != 1 {
		t.Fatalf("stats = %+v, want the process on its stream", s)
	}
	pid := p.PIDs()[0]

	// Calls in the plugin's handler when the stream ends: their first
	// attempt is canceled with the stream.
	const waiting = 2
	type outcome struct {
		res *target.Result
		err error
	}
	outcomes := make(chan outcome, waiting)
	for i := range waiting {
		go func() {
			res, err := p.Deliver(t.Context(), delivery(int64(10+i), "sleep:2s", nil))
			outcomes <- outcome{res, err}
		}()
	}
	waitFor(t, "the calls in the handler", func() bool {
		return strings.Count(logs.String(), "testplugin sleeping") == waiting
	})

	_, err := p.Deliver(t.Context(), delivery(1, "big-reply:5000000", nil))
	if target.KindOf(err) != target.Permanent || !strings.Contains(err.Error(), "plugins.enrich.max_message_bytes") {
		t.Fatalf("answer of 5 MB over the 4 MiB limit: err = %v (kind %v), want a permanent error naming the limit", err, target.KindOf(err))
	}
	for range waiting {
		o := <-outcomes
		if o.err != nil {
			t.Fatalf("a call waiting on the stream: %v", o.err)
		}
		if got := replyPID(t, o.res); got != pid {
			t.Errorf("a call waiting on the stream was answered by process %d, want %d (the same)", got, pid)
		}
	}

	res, err := p.Deliver(t.Context(), delivery(2, "ack", []byte("after")))
	if err != nil {
		t.Fatalf("the next call: %v", err)
	}
	if got := replyPID(t, res); got != pid {
		t.Errorf("the next call was answered by process %d, want %d (the same)", got, pid)
	}
	if s := p.Stats(); s.Restarts != 0 || s.Started != 1 || s.Instances != 1 || s.Streams != 0 {
		t.Errorf("stats = %+v, want the one process, without its stream, and no restart", s)
	}
	if want := "making a Handle call per record to this process"; !strings.Contains(logs.String(), want) {
		t.Errorf("the pool log does not say %q", want)
	}
}
