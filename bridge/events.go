package bridge

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/internal/logevery"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// routeEvents turns dispatch events into metrics, logs, events on the
// record's process span (the span in ctx) and the consumer's stuck state.
// Log lines use the *Context methods, so they carry trace_id and span_id.
type routeEvents struct {
	log      *slog.Logger
	metrics  *telemetry.Route
	consumer *kafka.Consumer

	// deadLetters throttles the route's "dead-lettered" lines. A receiver
	// that refuses every record (a schema it no longer accepts, a handler
	// that fails them all permanently) gets each one dead-lettered,
	// thousands a second, and a line each would flood the log. Each is
	// still counted in hookbridge_records_dead_lettered_total and is an
	// event on its trace, and the dead-letter topic holds them all.
	deadLetters logevery.Throttle
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
	spanEvent(ctx, telemetry.EventRetry, append(errorAttrs(err), telemetry.KeyAttempt.Int(d.Attempt),
		telemetry.KeyRetryWait.Float64(wait.Seconds()))...)
	e.log.DebugContext(ctx, "retrying", "record", d.Record.ID(), "attempt", d.Attempt, "wait", wait, "error", err)
}

func (e *routeEvents) Waiting(ctx context.Context, d *target.Delivery, open *dispatch.BreakerOpenError) {
	spanEvent(ctx, telemetry.EventBreakerWait, telemetry.KeyBreakerTarget.String(open.Target),
		telemetry.KeyBreakerState.String(open.State.String()))
	e.log.DebugContext(ctx, "waiting for the target's breaker", "record", d.Record.ID(), "state", open.State.String())
}

func (e *routeEvents) Delivered(ctx context.Context, d *target.Delivery) {
	e.metrics.Delivered(ctx, d.Record.Topic)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(telemetry.EventDelivered, trace.WithAttributes(telemetry.KeyAttempt.Int(d.Attempt)))
		span.SetAttributes(telemetry.KeyOutcome.String(telemetry.OutcomeDelivered), telemetry.KeyAttempts.Int(d.Attempt))
	}
	if e.log.Enabled(ctx, slog.LevelDebug) {
		e.log.DebugContext(ctx, "delivered", "record", d.Record.ID(), "attempt", d.Attempt)
	}
}

func (e *routeEvents) DeadLettered(ctx context.Context, rec *target.Record, f *dispatch.Failure) {
	e.metrics.DeadLettered(ctx, rec.Topic)
	span := trace.SpanFromContext(ctx)
	span.AddEvent(telemetry.EventDeadLettered, trace.WithAttributes(
		append(errorAttrs(f.Err), telemetry.KeyAttempts.Int(f.Attempts))...))
	span.SetAttributes(telemetry.KeyOutcome.String(telemetry.OutcomeDeadLettered), telemetry.KeyAttempts.Int(f.Attempts))
	id, attempts, err := rec.ID(), f.Attempts, f.Err
	lctx := context.WithoutCancel(ctx) // a held line is logged after the delivery ended
	e.deadLetters.Note(func(repeated int, within time.Duration) {
		if repeated == 0 {
			e.log.WarnContext(lctx, "dead-lettered", "record", id, "attempts", attempts, "error", err)
			return
		}
		e.log.WarnContext(lctx, "dead-lettered", "record", id, "attempts", attempts, "error", err,
			"repeated", repeated, "within", within.String())
	})
}

// close logs the dead letters counted and not logged yet. The route calls it
// once its consumer has stopped.
func (e *routeEvents) close() { e.deadLetters.Close() }

func (e *routeEvents) Stuck(ctx context.Context, rec *target.Record, err error) {
	spanEvent(ctx, telemetry.EventStuck, errorAttrs(err)...)
	if e.consumer == nil { // dlq replay: no consumer to pause
		e.log.ErrorContext(ctx, "record cannot reach a terminal outcome", "record", rec.ID(), "error", err)
		return
	}
	e.consumer.Stuck(ctx, rec, err)
}

func (e *routeEvents) Unstuck(ctx context.Context, rec *target.Record) {
	spanEvent(ctx, telemetry.EventUnstuck)
	if e.consumer != nil {
		e.consumer.Unstuck(ctx, rec)
	}
}

// spanEvent adds an event to the span in ctx (the record's process span).
func spanEvent(ctx context.Context, name string, attrs ...attribute.KeyValue) {
	trace.SpanFromContext(ctx).AddEvent(name, trace.WithAttributes(attrs...))
}

// errorAttrs describe a failure on a span event: its kind, its HTTP status
// when it had one, and its message.
func errorAttrs(err error) []attribute.KeyValue {
	if err == nil {
		return nil
	}
	attrs := []attribute.KeyValue{telemetry.KeyErrorKind.String(target.KindOf(err).String()),
		telemetry.KeyExceptionMessage.String(err.Error())}
	if st := target.StatusOf(err); st != 0 {
		attrs = append(attrs, telemetry.KeyErrorStatus.Int(st))
	}
	return attrs
}
