package target

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind classifies a failed delivery.
type Kind int

const (
	// Retryable failures (connection errors, timeouts, 408, 429, 5xx) are
	// retried with backoff and count against the target's breaker.
	Retryable Kind = iota
	// Permanent failures (other 4xx, a handler's permanent error) are
	// dead-lettered at once.
	Permanent
	// Gone (HTTP 410) disables the route: its partitions pause until a restart
	// or a reload starts it again.
	Gone
	// Canceled means the delivery was abandoned because its context ended
	// (rebalance, shutdown). It is neither a success nor a failure.
	Canceled
)

func (k Kind) String() string {
	switch k {
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	case Gone:
		return "gone"
	case Canceled:
		return "canceled"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a classified delivery failure.
type Error struct {
	Kind       Kind
	Status     int           // HTTP status, 0 when there was none
	RetryAfter time.Duration // the target asked to wait this long; 0 = no hint
	// TargetUp says the target answered and reported this record alone as
	// failed (an id in a batch answer's "failed" list): the record is
	// retried, but the failure says nothing about the target's health and
	// does not count against its circuit breaker.
	TargetUp bool
	Err      error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Kind.String()
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// NewPermanent marks err as permanent: the record is dead-lettered at once.
func NewPermanent(err error) error { return &Error{Kind: Permanent, Err: err} }

// NewRetryAfter marks err as retryable after at least d.
func NewRetryAfter(d time.Duration, err error) error {
	return &Error{Kind: Retryable, RetryAfter: d, Err: err}
}

// KindOf classifies err. A nil error has no kind and reports Retryable; callers
// check for nil first. Context cancellation is Canceled, a plain error is
// Retryable.
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	return Retryable
}

// StatusOf returns the HTTP status carried by err, or 0.
func StatusOf(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status
	}
	return 0
}

// RetryAfterOf returns the wait the target asked for, or 0.
func RetryAfterOf(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}

// Shared marks err as the outcome of a request that carried other records
// too, which another of them reports to the circuit breaker (see
// Result.Shared). Every classification sees through it.
func Shared(err error) error {
	if err == nil {
		return nil
	}
	return &sharedError{err}
}

type sharedError struct{ error }

func (e *sharedError) Unwrap() error { return e.error }

// IsShared reports whether a delivery's outcome, res or err, is that of a
// request another record reports to the circuit breaker.
func IsShared(res *Result, err error) bool {
	if err != nil {
		_, ok := errors.AsType[*sharedError](err)
		return ok
	}
	return res != nil && res.Shared
}

// TargetDown reports whether err says the target itself is unhealthy: a
// retryable failure that the target did not answer as the record's own.
// Only such failures count against a circuit breaker.
func TargetDown(err error) bool {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind == Retryable && !e.TargetUp
	}
	return err != nil && KindOf(err) == Retryable
}
