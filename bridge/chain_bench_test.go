package bridge

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// BenchmarkChain is what the dispatch chain adds to one record that its
// target accepts at the first attempt: the process and attempt spans (as
// without an exporter), the dead-letter, reply, retry and breaker layers,
// and the route's events and metrics. The target does nothing.
func BenchmarkChain(b *testing.B) {
	shutdown, err := telemetry.SetupTracing(b.Context(), config.Telemetry{}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = shutdown(context.WithoutCancel(b.Context())) })
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = metrics.Shutdown(context.WithoutCancel(b.Context())) })
	r := config.Route{Name: "orders", Topics: []string{"orders"},
		Retry: config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(time.Second)}}
	ev := &routeEvents{log: telemetry.NewLogger(io.Discard, "json", "info"), metrics: metrics.Route(r.Name, r.GroupID(), nil)}
	br := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "t", FailureRatio: 0.5, MinRequests: 20, OpenTimeout: time.Second})
	noop := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) { return nil, nil })
	chain := buildChain(r, noop, nil, ev, br)
	rec := &target.Record{Topic: "orders", Partition: 1, Offset: 42, Key: []byte("k"), Value: make([]byte, 256),
		Timestamp: time.Now()}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chain.Deliver(ctx, &target.Delivery{Route: r.Name, Record: rec, Attempt: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
