package bridge

import (
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// What /readyz answers is a metric too, for the whole bridge and per route:
// an operator who alerts from Prometheus alone (no probe of /readyz) sees a
// route that stopped, here one its receiver disabled with 410 Gone, whose
// partitions stay paused while the lag it then shows may be small.
func TestReadinessGaugesFollowReadyz(t *testing.T) {
	rig := newAccountingRig(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusGone)
	}, nil, nil)
	gauges := func() (ready, route float64) {
		ready, okReady := seriesOf(t, rig.m, "hookbridge_ready", "", "")
		route, okRoute := seriesOf(t, rig.m, "hookbridge_route_ready", "orders-billing", "")
		if !okReady || !okRoute {
			t.Fatalf("the scrape has hookbridge_ready %v, hookbridge_route_ready{route=orders-billing} %v; want both", okReady, okRoute)
		}
		return ready, route
	}
	waitUntil(t, "the bridge ready", func() bool { return rig.b.Ready() == nil })
	if ready, route := gauges(); ready != 1 || route != 1 {
		t.Errorf("ready bridge: hookbridge_ready %v, hookbridge_route_ready %v; want 1 and 1", ready, route)
	}

	rig.produce(t, &kgo.Record{Topic: "orders", Key: []byte("k1"), Value: []byte("v1")})
	waitUntil(t, "the route disabled", func() bool { return rig.b.Ready() != nil })
	if ready, route := gauges(); ready != 0 || route != 0 {
		t.Errorf("route disabled (%v): hookbridge_ready %v, hookbridge_route_ready %v; want 0 and 0", rig.b.Ready(), ready, route)
	}
}
