package dispatch

import (
	"context"
	"time"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// Events receives what the chain does to a record, for metrics, logs and span
// events. Implementations must be safe for concurrent use and must not block.
type Events interface {
	// Attempted reports one finished call to the target.
	Attempted(ctx context.Context, d *target.Delivery, took time.Duration, err error)
	// Retrying reports that the record waits before its next attempt.
	Retrying(ctx context.Context, d *target.Delivery, wait time.Duration, err error)
	// Waiting reports that the record waits for its target's open (or
	// half-open, probing) breaker; no attempt was made or spent.
	Waiting(ctx context.Context, d *target.Delivery, open *BreakerOpenError)
	// Delivered reports a record the target accepted.
	Delivered(ctx context.Context, d *target.Delivery)
	// DeadLettered reports a record written to the dead-letter topic.
	DeadLettered(ctx context.Context, rec *target.Record, f *Failure)
	// Stuck reports that a record cannot reach a terminal outcome (its
	// dead-letter or reply write failed, or it failed with no dead-letter
	// topic): its partition cannot be committed past it until Unstuck. A
	// stuck record that is abandoned instead (its context ended) gets no
	// Unstuck: the consumer clears the state when the claim ends.
	Stuck(ctx context.Context, rec *target.Record, err error)
	// Unstuck reports that a record reported Stuck moved on.
	Unstuck(ctx context.Context, rec *target.Record)
}

// NopEvents ignores every event.
type NopEvents struct{}

func (NopEvents) Attempted(context.Context, *target.Delivery, time.Duration, error) {}
func (NopEvents) Retrying(context.Context, *target.Delivery, time.Duration, error)  {}
func (NopEvents) Waiting(context.Context, *target.Delivery, *BreakerOpenError)      {}
func (NopEvents) Delivered(context.Context, *target.Delivery)                       {}
func (NopEvents) DeadLettered(context.Context, *target.Record, *Failure)            {}
func (NopEvents) Stuck(context.Context, *target.Record, error)                      {}
func (NopEvents) Unstuck(context.Context, *target.Record)                           {}

var _ Events = NopEvents{}

// Producer writes records to Kafka durably (acknowledged by all in-sync
// replicas) before returning nil. It is safe for concurrent use. When it
// knows that only some of recs failed, its error is (or wraps) a
// *ProduceError saying which: the others were acknowledged.
type Producer interface {
	Produce(ctx context.Context, recs []target.Output) error
}

// ProduceError is a Producer's error that says which of the records it was
// given were not acknowledged: a write tried again sends only those, since
// the others, written already, would be duplicates.
type ProduceError struct {
	Unwritten []int // indexes of the records not acknowledged, in order
	Err       error
}

func (e *ProduceError) Error() string { return e.Err.Error() }
func (e *ProduceError) Unwrap() error { return e.Err }
