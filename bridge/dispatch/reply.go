package dispatch

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// Reply header names: every reply record carries them, so that a consumer of
// the reply topic can tell which record it answers and drop a reply written
// twice (a record handled again after a crash, or a write the producer
// retried). Headers of these names that the handler set are replaced.
const (
	HeaderReplyRoute  = "hookbridge-route"
	HeaderReplySource = "hookbridge-source-id"    // the record's ID, as webhook-id
	HeaderReplyIndex  = "hookbridge-output-index" // its place in the handler's answer, from 0
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
			var source []byte
			for i, o := range res.Outputs {
				if o.Topic == "" {
					o.Topic = topic
				}
				if o.Topic == "" {
					continue
				}
				if o.Key == nil {
					o.Key = d.Record.Key
				}
				if source == nil {
					source = []byte(d.Record.ID())
				}
				o.Headers = replyHeaders(o.Headers, d.Route, source, i)
				outs = append(outs, o)
			}
			if len(outs) == 0 {
				return res, nil
			}
			if err := produce(ctx, prod, outs, d.Record, ev, maxWait, false, true); err != nil {
				if target.KindOf(err) == target.Permanent {
					now := time.Now()
					attempt := max(res.Attempt, d.Attempt, 1)
					attempts := attempt
					if res.Attempts > 0 { // from Retry: failed probes not counted
						attempts = res.Attempts
					}
					return nil, &Failure{Attempts: attempts, LastAttempt: attempt, FirstFailed: now, LastFailed: now,
						Err: fmt.Errorf("writing its replies: %w", err)}
				}
				return nil, err
			}
			return res, nil
		})
	}
}

// replyHeaders is hs without headers of the reply header names, followed by
// them: the route, the source record's ID and the output's index. hs itself,
// the handler's, is left as it was.
func replyHeaders(hs []target.Header, route string, source []byte, index int) []target.Header {
	out := make([]target.Header, 0, len(hs)+3)
	for _, h := range hs {
		switch h.Key {
		case HeaderReplyRoute, HeaderReplySource, HeaderReplyIndex:
			continue
		}
		out = append(out, h)
	}
	return append(out,
		target.Header{Key: HeaderReplyRoute, Value: []byte(route)},
		target.Header{Key: HeaderReplySource, Value: source},
		target.Header{Key: HeaderReplyIndex, Value: strconv.AppendInt(nil, int64(index), 10)})
}
