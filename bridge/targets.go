package bridge

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// shared holds what belongs to a target rather than to a route: its breaker
// and its rate limiter. Routes that post to the same webhook URL, or call the
// same plugin, share them.
type shared struct {
	name    string
	breaker *dispatch.Breaker
	limiter *rate.Limiter
}

type sharedTargets struct {
	m       map[string]*shared
	metrics *telemetry.Metrics
	log     *slog.Logger
}

// targetName identifies a route's target in metrics and logs: the webhook URL
// without user info or query, or "plugin:<name>".
func targetName(r config.Route) string {
	if r.Target.Webhook == nil {
		return "plugin:" + r.Target.Plugin
	}
	return config.SafeURL(r.Target.Webhook.URL, "webhook")
}

// get returns the shared state of r's target, creating it from r's settings
// when r is the first route to use it.
func (s *sharedTargets) get(ctx context.Context, r config.Route) *shared {
	key := targetName(r)
	if t, ok := s.m[key]; ok {
		return t
	}
	t := &shared{name: key}
	t.breaker = dispatch.NewBreaker(dispatch.BreakerSettings{
		Name:                key,
		FailureRatio:        r.Breaker.FailureRatio,
		MinRequests:         r.Breaker.MinRequests,
		ConsecutiveFailures: r.Breaker.ConsecutiveFailures,
		OpenTimeout:         r.Breaker.OpenTimeout.D(),
	})
	log := s.log.With("target", key)
	t.breaker.Subscribe(func(to dispatch.BreakerState) {
		s.metrics.BreakerTransition(ctx, key, to.String())
		if to == dispatch.BreakerClosed {
			log.Info("circuit breaker closed; consumption resumes")
		} else {
			log.Warn("circuit breaker "+to.String()+"; consumption of routes using the target pauses", "state", to.String())
		}
	})
	s.metrics.Breaker(key, func() int64 { return int64(t.breaker.State()) })
	if w := r.Target.Webhook; w != nil && w.RateLimit > 0 {
		// Burst of 10% of the rate: no one-second window holds more than
		// rate_limit + 10% requests.
		t.limiter = rate.NewLimiter(rate.Limit(w.RateLimit), max(1, int(w.RateLimit/10)))
	}
	s.m[key] = t
	return t
}

func (t *shared) rateLimited(ctx context.Context, m *telemetry.Metrics) func(time.Duration) {
	return func(wait time.Duration) { m.RateLimited(ctx, t.name, wait) }
}
