package bridge

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// routeEvents turns dispatch events into metrics, logs and the consumer's
// stuck state.
type routeEvents struct {
	log      *slog.Logger
	metrics  *telemetry.Route
	consumer *kafka.Consumer
}

func (e *routeEvents) Attempted(ctx context.Context, d *target.Delivery, took time.Duration, err error) {
	failure := ""
	if err != nil {
		failure = target.KindOf(err).String()
	}
	e.metrics.Attempt(ctx, d.Record.Topic, took, failure)
}

func (e *routeEvents) Retrying(ctx context.Context, d *target.Delivery, wait time.Duration, err error) {
	e.metrics.Retried(ctx, d.Record.Topic)
	e.log.Debug("retrying", "record", d.Record.ID(), "attempt", d.Attempt, "wait", wait, "error", err)
}

func (e *routeEvents) Delivered(ctx context.Context, d *target.Delivery) {
	e.metrics.Delivered(ctx, d.Record.Topic)
	e.log.Debug("delivered", "record", d.Record.ID(), "attempt", d.Attempt)
}

func (e *routeEvents) DeadLettered(ctx context.Context, rec *target.Record, f *dispatch.Failure) {
	e.metrics.DeadLettered(ctx, rec.Topic)
	e.log.Warn("dead-lettered", "record", rec.ID(), "attempts", f.Attempts, "error", f.Err)
}

func (e *routeEvents) Stuck(_ context.Context, rec *target.Record, err error) {
	e.consumer.Stuck(rec, err)
}

func (e *routeEvents) Unstuck(_ context.Context, rec *target.Record) { e.consumer.Unstuck(rec) }
