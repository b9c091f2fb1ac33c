package bridge

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// shared holds what belongs to a target rather than to a route: its breaker
// and its rate limiter. Routes that post to the same webhook URL, or call the
// same plugin, share them.
type shared struct {
	name     string
	settings targetSettings // what breaker and limiter were built from
	breaker  *dispatch.Breaker
	limiter  *rate.Limiter
	forget   func() // ends the breaker's logging and metrics
}

// targetSettings are a route's settings that belong to its target.
type targetSettings struct {
	breaker   config.Breaker
	rateLimit float64
}

func settingsOf(r config.Route) targetSettings {
	s := targetSettings{breaker: r.Breaker}
	if w := r.Target.Webhook; w != nil {
		s.rateLimit = w.RateLimit
	}
	return s
}

type sharedTargets struct {
	m       map[string]*shared
	metrics *telemetry.Metrics
	log     *slog.Logger
}

// targetName identifies a route's target in metrics and logs: the webhook URL
// without user info or query, its path hidden when it is a secret
// (config.Webhook.ShownURL), or "plugin:<name>".
func targetName(r config.Route) string {
	if r.Target.Webhook == nil {
		return "plugin:" + r.Target.Plugin
	}
	return r.Target.Webhook.ShownURL()
}

// get returns the shared state of r's target, creating it from r's settings
// when r is the first route to use it.
func (s *sharedTargets) get(ctx context.Context, r config.Route) *shared {
	key := targetName(r)
	if t, ok := s.m[key]; ok {
		return t
	}
	t := &shared{name: key, settings: settingsOf(r)}
	t.breaker = dispatch.NewBreaker(dispatch.BreakerSettings{
		Name:                key,
		FailureRatio:        r.Breaker.FailureRatio,
		MinRequests:         r.Breaker.MinRequests,
		ConsecutiveFailures: r.Breaker.ConsecutiveFailures,
		OpenTimeout:         r.Breaker.OpenTimeout.D(),
		MaxRetryAfter:       r.Retry.MaxBackoff.D(),
	})
	log := s.log.With("target", key)
	unsubscribe := t.breaker.Subscribe(func(to dispatch.BreakerState) {
		s.metrics.BreakerTransition(ctx, key, to.String())
		switch to {
		case dispatch.BreakerClosed:
			log.Info("circuit breaker closed; consumption resumes")
		case dispatch.BreakerHalfOpen:
			log.Info("circuit breaker half-open; routes using the target fetch again and one record probes it", "state", to.String())
		default:
			args := []any{"state", to.String(), "half_open_in", t.breaker.OpenLeft().Round(time.Millisecond).String()}
			lctx := ctx
			if f := t.breaker.LastFailure(); f != nil {
				args = append(args, "record", f.Record, "error", f.Err)
				// The line carries the failed delivery's trace_id, to find
				// its trace from the log.
				lctx = trace.ContextWithSpanContext(ctx, f.Span)
			}
			log.WarnContext(lctx, "circuit breaker open; consumption of routes using the target pauses", args...)
		}
	})
	s.metrics.Breaker(key, func() int64 { return int64(t.breaker.State()) })
	t.forget = func() {
		unsubscribe()
		s.metrics.Breaker(key, nil)
	}
	if w := r.Target.Webhook; w != nil && w.RateLimit > 0 {
		// Burst of 10% of the rate: no one-second window holds more than
		// rate_limit + 10% requests.
		t.limiter = rate.NewLimiter(rate.Limit(w.RateLimit), max(1, int(w.RateLimit/10)))
	}
	s.m[key] = t
	return t
}

// dropUnused forgets the shared state of every target that none of running
// uses and none of starting uses with the same breaker and rate limit, so
// that a route started later builds it again from its own settings (a
// reload that changed a target's breaker or rate limit). A target that a
// restarted route uses with unchanged settings keeps its state: a breaker
// open before the reload stays open, and the route starts paused. Call it
// when the routes that used it have stopped.
func (s *sharedTargets) dropUnused(running, starting []config.Route) {
	used := make(map[string]bool, len(running))
	for _, r := range running {
		used[targetName(r)] = true
	}
	for _, r := range starting {
		if t, ok := s.m[targetName(r)]; ok && t.settings == settingsOf(r) {
			used[targetName(r)] = true
		}
	}
	for key, t := range s.m {
		if !used[key] {
			t.forget()
			delete(s.m, key)
		}
	}
}

func (t *shared) rateLimited(ctx context.Context, m *telemetry.Metrics) func(time.Duration) {
	return func(wait time.Duration) { m.RateLimited(ctx, t.name, wait) }
}
