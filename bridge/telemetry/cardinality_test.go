package telemetry

import (
	"testing"
)

// The lag and oldest-age gauges have a series per partition a route owns.
// The OpenTelemetry SDK keeps at most 2000 series per instrument by default
// and folds the rest into one series without labels (otel_metric_overflow):
// a replica owning 2000 partitions or more, over its routes (four routes on
// a topic of 500, one route on a few large topics), lost the lag of the
// partitions past that, and `sum by (route) (hookbridge_consumer_lag)` read
// low for their routes.
func TestPerPartitionGaugesKeepEveryPartition(t *testing.T) {
	m := newTestMetrics(t)
	const routes, partitions = 3, 1000
	for i := range routes {
		name := string(rune('a' + i))
		parts := make([]PartitionStats, partitions)
		for p := range parts {
			parts[p] = PartitionStats{Topic: "orders", Partition: int32(p), Lag: 1}
		}
		m.Route(name, "hookbridge."+name, func() RouteStats { return RouteStats{Partitions: parts} })
	}
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		switch f.GetName() {
		case "hookbridge_consumer_lag", "hookbridge_consumer_oldest_unacked_age_seconds":
		default:
			continue
		}
		found[f.GetName()] = true
		var series, lag float64
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "otel_metric_overflow" {
					t.Errorf("%s: series folded into an overflow series: %v", f.GetName(), s)
				}
			}
			series++
			lag += s.GetGauge().GetValue()
		}
		if series != routes*partitions {
			t.Errorf("%s: %v series, want one per partition: %d", f.GetName(), series, routes*partitions)
		}
		if f.GetName() == "hookbridge_consumer_lag" && lag != routes*partitions {
			t.Errorf("%s sums to %v, want %d", f.GetName(), lag, routes*partitions)
		}
	}
	if len(found) != 2 {
		t.Errorf("gauges found: %v", found)
	}
}
