package bridge

import (
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// seriesOf returns the value of the route's series of a counter or gauge on
// topic (any topic when topic is empty), and whether the scrape has it.
func seriesOf(t *testing.T, m *telemetry.Metrics, name, route, topic string) (float64, bool) {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			if labelOf(mt, "route") != route || (topic != "" && labelOf(mt, "topic") != topic) {
				continue
			}
			if mt.Counter != nil {
				return mt.Counter.GetValue(), true
			}
			return mt.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// The dead-letter alert of docs/operations.md,
// `sum by (route) (rate(hookbridge_records_dead_lettered_total[5m])) > 0`,
// fires for a route's first dead letter. rate() sees an increase only
// between two samples of a series: a counter that first shows up in the
// scrape after the record was dead-lettered (at 1, or at 100 for a burst)
// reads as no increase at all, and the alert stayed silent. So the scrape
// before the route's first record already has the route's record counters,
// at 0, and its failed attempts by outcome.
func TestRecordCountersExistBeforeTheFirstRecord(t *testing.T) {
	rig := newAccountingRig(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}, nil, nil)
	waitUntil(t, "the route owns its partitions", func() bool {
		_, ok := seriesOf(t, rig.m, "hookbridge_consumer_lag", "orders-billing", "orders")
		return ok
	})
	for _, name := range []string{"hookbridge_records_consumed_total", "hookbridge_records_delivered_total",
		"hookbridge_records_retried_total", "hookbridge_records_dead_lettered_total", "hookbridge_records_filtered_total"} {
		v, ok := seriesOf(t, rig.m, name, "orders-billing", "orders")
		if !ok || v != 0 {
			t.Errorf("before the first record: %s{route=orders-billing,topic=orders} = %v (present %v), want a series at 0", name, v, ok)
		}
	}
	for _, outcome := range []string{"retryable", "permanent", "gone", "canceled"} {
		v, ok := failedOf(t, rig.m, outcome)
		if !ok || v != 0 {
			t.Errorf("before the first record: hookbridge_records_failed_total{route=orders-billing,topic=orders,outcome=%s} = %v (present %v), want a series at 0",
				outcome, v, ok)
		}
	}

	rig.produce(t, &kgo.Record{Topic: "orders", Key: []byte("k1"), Value: []byte("bad-1")})
	waitUntil(t, "the record dead-lettered", func() bool {
		v, _ := seriesOf(t, rig.m, "hookbridge_records_dead_lettered_total", "orders-billing", "orders")
		return v == 1
	})
	if v, _ := failedOf(t, rig.m, "permanent"); v != 1 {
		t.Errorf("after one 422: hookbridge_records_failed_total{outcome=permanent} = %v, want 1", v)
	}
}

// failedOf is the value of hookbridge_records_failed_total of the route
// orders-billing on topic orders with outcome, and whether it is there.
func failedOf(t *testing.T, m *telemetry.Metrics, outcome string) (float64, bool) {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "hookbridge_records_failed_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			if labelOf(mt, "route") == "orders-billing" && labelOf(mt, "topic") == "orders" && labelOf(mt, "outcome") == outcome {
				return mt.Counter.GetValue(), true
			}
		}
	}
	return 0, false
}
