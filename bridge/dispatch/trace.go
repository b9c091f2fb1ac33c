package dispatch

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/internal/memo"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// Trace is the outermost layer: it runs the whole chain for a record inside
// a CONSUMER span named "process <topic>". The span's parent is the trace
// context the producer left in the record's headers (traceparent, else
// ce_traceparent; see telemetry.ExtractRecord), and it links to that context
// too; a record without a valid one starts a new trace. It carries the
// messaging semantic-convention attributes of the record (telemetry.ProcessAttrs).
//
// The span ends when the chain returns, which is when the record reached a
// terminal outcome (delivered, or written to the dead-letter topic) or was
// abandoned (its context ended) — never when it is handed on. Only an
// abandoned record sets the span's status to Error (and error.type, the
// failure's kind, as the semantic conventions ask of a failed operation): a
// dead-lettered record is a terminal outcome, and its failed attempts carry
// their own errors.
// The layers below add span events to it (retry, dead-lettering, stuck)
// through the Events they are given, using trace.SpanFromContext.
func Trace(tr trace.Tracer, route, group string) target.Layer {
	var names memo.Last // "process <topic>"
	return func(next target.Target) target.Target {
		return target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
			rec := d.Record
			parent, producer := telemetry.ExtractRecord(ctx, rec.Headers)
			opts := consumerKind
			if producer.IsValid() {
				opts = []trace.SpanStartOption{consumerKind[0], trace.WithLinks(trace.Link{SpanContext: producer})}
			}
			ctx, span := tr.Start(parent, names.Get(rec.Topic, processName), opts...)
			defer span.End()
			// The attributes are built only for a span that keeps them (our
			// sampler does not look at them).
			if span.IsRecording() {
				span.SetAttributes(telemetry.ProcessAttrs(route, group, rec.Topic, rec.Partition, rec.Offset,
					rec.Key, len(rec.Value), rec.ID())...)
			}
			res, err := next.Deliver(ctx, d)
			if err != nil {
				kind := target.KindOf(err).String()
				span.SetAttributes(telemetry.KeyOutcome.String(telemetry.OutcomeAbandoned),
					telemetry.KeyErrorKind.String(kind), telemetry.KeyErrorType.String(kind))
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return res, err
		})
	}
}

// The span kinds of Trace and AttemptTrace, built once.
var (
	consumerKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	internalKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
)

// AttemptTrace is the innermost layer: every call to the target runs inside
// an INTERNAL span named "deliver <route>" with hookbridge.attempt, a child
// of the process span. The target's own client span (otelhttp for a webhook,
// the otelgrpc stats handler for a plugin) is a child of it. A failed attempt
// records its error and sets the status to Error, with hookbridge.error.kind
// (and hookbridge.error.status when the target answered with one).
func AttemptTrace(tr trace.Tracer) target.Layer {
	var names memo.Last // "deliver <route>"
	return func(next target.Target) target.Target {
		return target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
			ctx, span := tr.Start(ctx, names.Get(d.Route, attemptName), internalKind...)
			defer span.End()
			// Set after the start, and only on a span that keeps them, as
			// in Trace (our sampler does not look at them).
			if span.IsRecording() {
				span.SetAttributes(telemetry.KeyRoute.String(d.Route), telemetry.KeyAttempt.Int(d.Attempt))
			}
			res, err := next.Deliver(ctx, d)
			if err != nil {
				span.SetAttributes(telemetry.KeyErrorKind.String(target.KindOf(err).String()))
				if st := target.StatusOf(err); st != 0 {
					span.SetAttributes(telemetry.KeyErrorStatus.Int(st))
				}
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return res, err
		})
	}
}

// Span names, made once per topic or route (see memo.Last), not per record.
func processName(topic string) string { return telemetry.SpanProcessPrefix + topic }
func attemptName(route string) string { return telemetry.SpanAttemptPrefix + route }
