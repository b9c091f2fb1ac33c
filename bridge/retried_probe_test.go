package bridge

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// TestRetriedCountsTheRetriesAfterAFailedProbe: a record whose failure
// trips its target's breaker is then the half-open probe, and its probes fail
// twice before the target accepts it. The receiver sees three retries
// (hookbridge-attempt 2, 3 and 4); hookbridge_records_retried_total must say
// three too, not only the one that followed the failure with the breaker
// closed.
func TestRetriedCountsTheRetriesAfterAFailedProbe(t *testing.T) {
	const failures = 3
	var calls, retries atomic.Int32
	rig := newAccountingRig(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if r.Header.Get("hookbridge-attempt") != "1" {
			retries.Add(1)
		}
		if calls.Add(1) <= failures {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}, nil, func(r *config.Route) {
		r.Retry.MaxAttempts = 100
		r.Breaker = config.Breaker{ConsecutiveFailures: 1, FailureRatio: 1, MinRequests: 1000, OpenTimeout: config.Duration(20 * time.Millisecond)}
	})
	rig.produce(t, &kgo.Record{Topic: "orders", Key: []byte("k1"), Value: []byte("v")})
	waitUntil(t, "the record delivered", func() bool {
		return rig.sum(t, "hookbridge_records_delivered_total") == 1 && rig.sum(t, "hookbridge_inflight_records") == 0
	})
	if got := retries.Load(); got != failures {
		t.Fatalf("receiver saw %d retries, want %d (the scenario did not run as planned)", got, failures)
	}
	if n := metricSum(t, rig.m, "hookbridge_breaker_transitions_total", map[string]string{"state": "open"}); n != failures {
		t.Fatalf("breaker opened %v times, want %d (the first failure and each failed probe)", n, failures)
	}
	rig.check(t, map[string]float64{
		"hookbridge_records_consumed_total":      1,
		"hookbridge_records_delivered_total":     1,
		"hookbridge_records_retried_total":       failures,
		"hookbridge_records_failed_total":        failures,
		"hookbridge_delivery_duration_seconds":   failures + 1,
		"hookbridge_records_dead_lettered_total": 0,
	})
}
