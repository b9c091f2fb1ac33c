package bridge

import (
	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// buildChain wraps a route's target in the dispatch layers, outermost first.
func buildChain(r config.Route, tg target.Target, prod dispatch.Producer, ev dispatch.Events) target.Target {
	return target.Chain(tg,
		dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: r.Name, Group: r.GroupID(), Topic: r.DeadLetter.Topic,
			Backoff: r.Retry.MaxBackoff.D()}, prod, ev),
		dispatch.Reply(r.Reply.Topic, prod, ev, r.Retry.MaxBackoff.D()),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: r.Retry.MaxAttempts, InitialBackoff: r.Retry.InitialBackoff.D(),
			MaxBackoff: r.Retry.MaxBackoff.D(), MaxAge: r.Retry.MaxAge.D()}, ev),
	)
}
