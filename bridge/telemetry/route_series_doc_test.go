package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docsRouteSeries reads what docs/operations.md ("Many routes in one
// replica") says one route costs in /metrics: so many series plus 2 a
// partition while idle, and so many plus 2 a partition once it delivered.
// An operator sizes Prometheus for 60 routes from those two figures.
func docsRouteSeries(t *testing.T) (idle, delivered int) {
	t.Helper()
	raw, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(\d+) series plus 2 a partition of its topics; (\d+) plus 2 a partition once it delivered`).
		FindSubmatch(raw)
	if m == nil {
		t.Fatal("docs/operations.md no longer states the series of a route in /metrics")
	}
	idle, _ = strconv.Atoi(string(m[1]))
	delivered, _ = strconv.Atoi(string(m[2]))
	return idle, delivered
}

// routeSeries counts the lines of a scrape of /metrics that carry route's
// label: what Prometheus stores as series (a histogram's buckets, _sum and
// _count each).
func routeSeries(t *testing.T, m *Metrics, route string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	n := 0
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, LabelRoute+`="`+route+`"`) {
			n++
		}
	}
	return n
}

// The per-route figures of the operations guide are what a route adds to
// /metrics, counted the way a scrape shows them (each histogram bucket, its
// _sum and _count apart): the readiness gauge per route came after the
// figures were measured, and the guide went on saying one series fewer.
func TestRouteSeriesMatchTheOperationsGuide(t *testing.T) {
	wantIdle, wantDelivered := docsRouteSeries(t)
	m := newTestMetrics(t)
	const partitions = 3
	parts := make([]PartitionStats, partitions)
	for p := range parts {
		parts[p] = PartitionStats{Topic: "orders", Partition: int32(p)}
	}
	r := m.Route("billing", "hookbridge.billing", func() RouteStats { return RouteStats{Partitions: parts} })
	r.Topics([]string{"orders"})
	m.SetReadiness(func() Readiness {
		return Readiness{Ready: true, Routes: []RouteReadiness{{Route: "billing", Group: "hookbridge.billing", Ready: true}}}
	})

	if got, want := routeSeries(t, m, "billing"), wantIdle+2*partitions; got != want {
		t.Errorf("an idle route on %d partitions has %d series; docs/operations.md says %d plus 2 a partition: %d",
			partitions, got, wantIdle, want)
	}
	r.Attempt(context.Background(), "orders", 5*time.Millisecond, "")
	r.Delivered(context.Background(), "orders")
	if got, want := routeSeries(t, m, "billing"), wantDelivered+2*partitions; got != want {
		t.Errorf("a route on %d partitions that delivered has %d series; docs/operations.md says %d plus 2 a partition: %d",
			partitions, got, wantDelivered, want)
	}
}
