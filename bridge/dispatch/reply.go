package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// Reply produces a delivered record's outputs to the reply topic (or to the
// topic an output names) before reporting success, so the record is
// acknowledged only once its outputs are durable. An output with a nil key
// takes the original record's key. With no reply topic, outputs that name no
// topic are discarded. A failing write is retried until ctx ends, the record
// reported Stuck meanwhile, unless the broker refused the outputs for what
// they are (target.Permanent from the producer: too large, say): writing them
// again cannot succeed, so the record fails (a *Failure) and the layer above
// dead-letters it.
func Reply(topic string, prod Producer, ev Events, maxWait time.Duration) target.Layer {
	return func(next target.Target) target.Target {
		return target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
			res, err := next.Deliver(ctx, d)
			if err != nil || res == nil || len(res.Outputs) == 0 {
				return res, err
			}
			outs := make([]target.Output, 0, len(res.Outputs))
			for _, o := range res.Outputs {
				if o.Topic == "" {
					o.Topic = topic
				}
				if o.Topic == "" {
					continue
				}
				if o.Key == nil {
					o.Key = d.Record.Key
				}
				outs = append(outs, o)
			}
			if len(outs) == 0 {
				return res, nil
			}
			if err := produce(ctx, prod, outs, d.Record, ev, maxWait, false, true); err != nil {
				if target.KindOf(err) == target.Permanent {
					now := time.Now()
					return nil, &Failure{Attempts: max(res.Attempt, d.Attempt, 1), FirstFailed: now, LastFailed: now,
						Err: fmt.Errorf("writing its replies: %w", err)}
				}
				return nil, err
			}
			return res, nil
		})
	}
}
