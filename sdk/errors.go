package sdk

import (
	"errors"
	"time"
)

// kind classifies a handler failure; a plain error is retryable.
type kind int

const (
	kindPermanent kind = iota + 1
	kindRetryAfter
)

// classified is an error Permanent or RetryAfter marked.
type classified struct {
	kind  kind
	after time.Duration
	err   error
}

func (e *classified) Error() string { return e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

// Permanent marks err as permanent: the record is not retried but
// dead-lettered at once (for a record that can never succeed: it does not
// parse, it fails validation). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &classified{kind: kindPermanent, err: err}
}

// RetryAfter marks err as retryable no sooner than d from now (for a
// downstream that said when to come back). The bridge caps d at the route's
// max_backoff. RetryAfter(d, nil) is nil.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &classified{kind: kindRetryAfter, after: max(d, 0), err: err}
}

// IsPermanent reports whether err, or an error it wraps (anywhere in its
// tree: behind a RetryAfter, in an errors.Join), was marked with Permanent.
// Permanent wins over RetryAfter.
func IsPermanent(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case *classified:
		if e.kind == kindPermanent {
			return true
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return IsPermanent(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if IsPermanent(e) {
				return true
			}
		}
	}
	return false
}

// RetryAfterOf returns the wait RetryAfter attached to err (or to an error
// it wraps), and whether there was one.
func RetryAfterOf(err error) (time.Duration, bool) {
	var c *classified
	if errors.As(err, &c) && c.kind == kindRetryAfter {
		return c.after, true
	}
	return 0, false
}
