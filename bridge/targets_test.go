package bridge

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// A reload that changes a target's breaker or rate limit gets a target built
// from the new settings once the routes that used the old one have stopped;
// a target a running route still uses is kept as it is.
func TestSharedTargetsRebuiltAfterReload(t *testing.T) {
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = metrics.Shutdown(context.WithoutCancel(t.Context())) })
	s := &sharedTargets{m: map[string]*shared{}, metrics: metrics, log: telemetry.NewLogger(io.Discard, "json", "info")}
	route := func(name, url string, limit float64) config.Route {
		return config.Route{Name: name, Breaker: config.Breaker{OpenTimeout: config.Duration(time.Second)},
			Target: config.RouteTarget{Webhook: &config.Webhook{URL: url, RateLimit: limit}}}
	}
	a, b := route("a", "http://h/a", 10), route("b", "http://h/b", 0)
	oldA, oldB := s.get(t.Context(), a), s.get(t.Context(), b)
	if again := s.get(t.Context(), route("a2", "http://h/a?x=1", 99)); again != oldA {
		t.Fatal("a second route on the same URL got a target of its own")
	}

	s.dropUnused([]config.Route{b}, nil) // route a stopped to restart with new settings; b runs on
	newA := s.get(t.Context(), route("a", "http://h/a", 1000))
	if newA == oldA || newA.limiter == nil || newA.limiter.Limit() != 1000 {
		t.Fatalf("after the reload the target of a has limit %v, want a new target with 1000", newA.limiter.Limit())
	}
	if s.get(t.Context(), b) != oldB {
		t.Fatal("the target of a running route was rebuilt")
	}
}
