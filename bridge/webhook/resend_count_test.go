package webhook

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A delivery attempt after the first sends the record's request again: its
// client span has http.request.resend_count (the attempts before it), which
// the HTTP semantic conventions require of a resent request and which
// dashboards count retries by; the first attempt's span has none. On each
// way a request goes: the direct path, the round tripper, and a batch request (whose hookbridge-attempt is its
// records' highest). The span had no resend count at any attempt.
func TestClientSpanResendCount(t *testing.T) {
	srv, reqs := receiver(t, nil)
	for _, c := range []struct {
		name   string
		change func(*Options)
	}{
		{"direct", nil},
		{"round tripper", func(o *Options) { o.Transport = http.DefaultTransport }},
		{"batch", func(o *Options) { o.Config.Batch = config.Batch{MaxMessages: 1, MaxWait: config.Duration(time.Hour)} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := newTarget(t, srv.URL, c.change)
			if c.name == "direct" && tg.direct == nil || c.name == "round tripper" && tg.direct != nil {
				t.Fatalf("direct path %v: the case does not test what it names", tg.direct != nil)
			}
			for _, attempt := range []int{1, 3} {
				rec := tracetest.NewSpanRecorder()
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
				ctx, parent := tp.Tracer("test").Start(t.Context(), "deliver orders-billing")
				_, err := tg.Deliver(ctx, &target.Delivery{Route: "orders-billing", Record: record(), Attempt: attempt})
				parent.End()
				if err != nil {
					t.Fatalf("attempt %d: %v", attempt, err)
				}
				next(t, reqs)
				client := clientSpan(rec)
				if client == nil {
					t.Fatalf("attempt %d: no client span", attempt)
				}
				got, has := attribute.Value{}, false
				for _, kv := range client.Attributes() {
					if kv.Key == "http.request.resend_count" {
						got, has = kv.Value, true
					}
				}
				switch {
				case attempt == 1 && has:
					t.Errorf("attempt 1: http.request.resend_count = %s on a request sent for the first time", got.Emit())
				case attempt > 1 && got != attribute.IntValue(attempt-1):
					t.Errorf("attempt %d: http.request.resend_count = %q (set %v), want the int %d", attempt, got.Emit(), has, attempt-1)
				}
				_ = tp.Shutdown(context.WithoutCancel(t.Context()))
			}
		})
	}
}
