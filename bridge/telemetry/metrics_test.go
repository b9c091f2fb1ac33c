package telemetry

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// recordEveryMetric returns metrics in which every metric the bridge exports
// has a value: a route with a paused and a stuck partition and a count of
// each record outcome, a breaker, a rate limiter and a plugin.
func recordEveryMetric(t *testing.T) *Metrics {
	t.Helper()
	m := newTestMetrics(t)
	r := m.Route("orders-billing", "hookbridge.orders-billing", func() RouteStats {
		return RouteStats{InFlightRecords: 3, InFlightBytes: 900, Partitions: []PartitionStats{
			{Topic: "orders", Partition: 0, Lag: 7, OldestAge: 2 * time.Second, Paused: true},
			{Topic: "orders", Partition: 1, Stuck: true},
		}}
	})
	ctx := t.Context()
	r.Consumed(ctx, "orders")
	r.Delivered(ctx, "orders")
	r.Retried(ctx, "orders")
	r.DeadLettered(ctx, "orders")
	r.Filtered(ctx, "orders")
	r.Attempt(ctx, "orders", 30*time.Millisecond, "")
	r.Attempt(ctx, "orders", 10*time.Millisecond, "retryable")
	m.Breaker("https://billing.internal/hooks", func() int64 { return 2 })
	m.BreakerTransition(ctx, "https://billing.internal/hooks", "open")
	m.RateLimited(ctx, "https://billing.internal/hooks", 40*time.Millisecond)
	m.Plugin("enrich", func() PluginStats { return PluginStats{Instances: 2, Started: 3, ColdStarts: 1, Restarts: 1} })
	m.SetReadiness(func() Readiness {
		return Readiness{Routes: []RouteReadiness{{Route: "orders-billing", Group: "hookbridge.orders-billing"}}}
	})
	return m
}

// Every metric the bridge exports passes client_golang's linter (the
// README's metric table is checked against them in readme_metrics_test.go).
func TestMetricsPassPrometheusLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(recordEveryMetric(t).Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "hookbridge_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// The record counters are exported per route, group and topic with the
// counts added, all five at once (at 0 until they count), and a route built again
// for the same name and group (a reload) counts up from where it was.
func TestRecordCountersPerTopicAcrossReload(t *testing.T) {
	m := newTestMetrics(t)
	ctx := t.Context()
	r := m.Route("orders", "hookbridge.orders", nil)
	for range 3 {
		r.Consumed(ctx, "orders")
	}
	r.Consumed(ctx, "refunds")
	r.Delivered(ctx, "orders")
	r.Delivered(ctx, "orders")
	r.Retried(ctx, "refunds")
	r.Filtered(ctx, "refunds")
	r.Close()
	again := m.Route("orders", "hookbridge.orders", nil)
	again.Consumed(ctx, "orders")
	again.DeadLettered(ctx, "orders")
	m.Route("other", "hookbridge.other", nil).Delivered(ctx, "orders")

	const labels = `group="hookbridge.orders",route="orders"`
	want := `
# HELP hookbridge_records_consumed_total Records read from Kafka.
# TYPE hookbridge_records_consumed_total counter
hookbridge_records_consumed_total{` + labels + `,topic="orders"} 4
hookbridge_records_consumed_total{` + labels + `,topic="refunds"} 1
hookbridge_records_consumed_total{group="hookbridge.other",route="other",topic="orders"} 0
# HELP hookbridge_records_dead_lettered_total Records written to the dead-letter topic.
# TYPE hookbridge_records_dead_lettered_total counter
hookbridge_records_dead_lettered_total{` + labels + `,topic="orders"} 1
hookbridge_records_dead_lettered_total{` + labels + `,topic="refunds"} 0
hookbridge_records_dead_lettered_total{group="hookbridge.other",route="other",topic="orders"} 0
# HELP hookbridge_records_delivered_total Records the target accepted.
# TYPE hookbridge_records_delivered_total counter
hookbridge_records_delivered_total{` + labels + `,topic="orders"} 2
hookbridge_records_delivered_total{` + labels + `,topic="refunds"} 0
hookbridge_records_delivered_total{group="hookbridge.other",route="other",topic="orders"} 1
# HELP hookbridge_records_filtered_total Records acknowledged without delivery because the route filter did not match.
# TYPE hookbridge_records_filtered_total counter
hookbridge_records_filtered_total{` + labels + `,topic="orders"} 0
hookbridge_records_filtered_total{` + labels + `,topic="refunds"} 1
hookbridge_records_filtered_total{group="hookbridge.other",route="other",topic="orders"} 0
# HELP hookbridge_records_retried_total Retries scheduled after a retryable failure.
# TYPE hookbridge_records_retried_total counter
hookbridge_records_retried_total{` + labels + `,topic="orders"} 0
hookbridge_records_retried_total{` + labels + `,topic="refunds"} 1
hookbridge_records_retried_total{group="hookbridge.other",route="other",topic="orders"} 0
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want),
		"hookbridge_records_consumed_total", "hookbridge_records_dead_lettered_total", "hookbridge_records_delivered_total",
		"hookbridge_records_filtered_total", "hookbridge_records_retried_total"); err != nil {
		t.Error(err)
	}
}

// Attempt durations are kept per route, group, topic and outcome; a failed
// attempt is also counted by its outcome.
func TestAttemptDurationsByOutcome(t *testing.T) {
	m := newTestMetrics(t)
	ctx := t.Context()
	r := m.Route("orders", "hookbridge.orders", nil)
	r.Attempt(ctx, "orders", 20*time.Millisecond, "")
	r.Attempt(ctx, "orders", 30*time.Millisecond, "")
	r.Attempt(ctx, "orders", 5*time.Millisecond, "retryable")
	r.Attempt(ctx, "refunds", time.Millisecond, "")

	want := `
# HELP hookbridge_records_failed_total Failed delivery attempts, by outcome.
# TYPE hookbridge_records_failed_total counter
hookbridge_records_failed_total{group="hookbridge.orders",outcome="retryable",route="orders",topic="orders"} 1
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "hookbridge_records_failed_total"); err != nil {
		t.Error(err)
	}
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "hookbridge_delivery_duration_seconds" {
			continue
		}
		for _, mt := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range mt.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["route"]+" "+l["group"]+" "+l["topic"]+" "+l["outcome"]] = mt.GetHistogram().GetSampleCount()
		}
	}
	wantCounts := map[string]uint64{
		"orders hookbridge.orders orders success":   2,
		"orders hookbridge.orders orders retryable": 1,
		"orders hookbridge.orders refunds success":  1,
	}
	if !maps.Equal(got, wantCounts) {
		t.Errorf("delivery duration sample counts %v, want %v", got, wantCounts)
	}
}

// What the metrics of one delivered record cost: counting it consumed and
// delivered, and its attempt's duration. The topic is a string built at run
// time, as a record's is.
func BenchmarkRecordMetrics(b *testing.B) {
	m := newTestMetrics(b)
	r := m.Route("orders", "hookbridge.orders", nil)
	topic := strings.Clone("orders")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		r.Consumed(ctx, topic)
		r.Delivered(ctx, topic)
		r.Attempt(ctx, topic, time.Millisecond, "")
	}
}

// newTestMetrics returns metrics that are shut down when tb ends.
func newTestMetrics(tb testing.TB) *Metrics {
	tb.Helper()
	m, err := NewMetrics()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	return m
}

// A plugin whose pool a reload rebuilt keeps counting up from its earlier
// pools' counts, as the per-record counters do: a counter that went down
// would read as a reset.
func TestPluginCountersGoOnAcrossAReload(t *testing.T) {
	m := newTestMetrics(t)
	m.Plugin("enrich", func() PluginStats { return PluginStats{Instances: 2, Started: 5, ColdStarts: 3, Restarts: 2} })
	m.Plugin("enrich", nil)                                                                                // the reload closes the pool...
	m.Plugin("enrich", func() PluginStats { return PluginStats{Instances: 1, Started: 1, ColdStarts: 1} }) // ...and starts another
	want := `
# HELP hookbridge_plugin_instances Plugin processes running, per plugin.
# TYPE hookbridge_plugin_instances gauge
hookbridge_plugin_instances{plugin="enrich"} 1
# HELP hookbridge_plugin_restarts_total Plugin processes found dead (crashed, killed, unreachable) and replaced.
# TYPE hookbridge_plugin_restarts_total counter
hookbridge_plugin_restarts_total{plugin="enrich"} 2
# HELP hookbridge_plugin_starts_total Plugin processes started.
# TYPE hookbridge_plugin_starts_total counter
hookbridge_plugin_starts_total{plugin="enrich"} 6
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want),
		"hookbridge_plugin_instances", "hookbridge_plugin_restarts_total", "hookbridge_plugin_starts_total"); err != nil {
		t.Error(err)
	}
}
