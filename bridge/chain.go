package bridge

import (
	"go.opentelemetry.io/otel"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// buildChain wraps a route's target in the dispatch layers, outermost first.
// The breaker sits below Retry, so an open breaker is waited for without
// spending the record's attempts.
func buildChain(r config.Route, tg target.Target, prod dispatch.Producer, ev dispatch.Events, br *dispatch.Breaker) target.Target {
	// Spans come from the global TracerProvider (telemetry.SetupTracing).
	tr := otel.Tracer(telemetry.ScopeName)
	return target.Chain(tg,
		dispatch.Trace(tr, r.Name, r.GroupID()), // outermost: the span ends at the record's outcome
		dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: r.Name, Group: r.GroupID(), Topic: r.DeadLetter.Topic,
			Backoff: r.Retry.MaxBackoff.D()}, prod, ev),
		dispatch.Reply(r.Reply.Topic, prod, ev, r.Retry.MaxBackoff.D()),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: r.Retry.MaxAttempts, InitialBackoff: r.Retry.InitialBackoff.D(),
			MaxBackoff: r.Retry.MaxBackoff.D(), MaxAge: r.Retry.MaxAge.D()}, ev),
		dispatch.BreakerLayer(br),
		// Innermost: one span per call that reached the target; a call the
		// breaker refused made no attempt and gets none.
		dispatch.AttemptTrace(tr),
	)
}
