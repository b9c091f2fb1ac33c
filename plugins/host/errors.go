package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// ErrClosed is wrapped by the error of a Deliver that came after Close.
var ErrClosed = errors.New("plugin pool closed")

// maxCrashRetries bounds how often one call is retried on another instance
// after the instance handling it died: a record that crashes every process
// it reaches then fails as retryable, and counts against the plugin's
// breaker like a timeout. While other records are answered the breaker stays
// closed and the route's retry budget and dead-letter topic take over; a
// record that fails alone cannot be told from a plugin that is down, and
// the route pauses on it (the breaker's log line names it).
const maxCrashRetries = 3

// sizeError is the permanent error of a request above the message limit.
func (p *Pool) sizeError(n int) error {
	return target.NewPermanent(fmt.Errorf("plugin %s: record of %s exceeds the %s message limit (plugins.%s.max_message_bytes)",
		p.name, humanBytes(n), humanLimit(p.maxBytes), p.name))
}

// headerKeyError is the permanent error of a record whose header i has a key
// that is not UTF-8 (see badHeaderKey).
func (p *Pool) headerKeyError(i int) error {
	return target.NewPermanent(fmt.Errorf("plugin %s: the key of the record's header %d is not valid UTF-8, which the plugin protocol cannot carry", p.name, i))
}

// ctxError is the error of a call abandoned because the caller's context
// ended: target.KindOf reports Canceled for a cancellation.
func (p *Pool) ctxError(ctx context.Context) error {
	return fmt.Errorf("plugin %s: %w", p.name, ctx.Err())
}

// instanceFailed reports whether a failed call failed because its instance
// did (the process is gone or unreachable), as opposed to the call: such a
// call is retried on another instance. ctx is the caller's context; expired
// reports that the call's own deadline (the plugin's timeout) has passed.
func instanceFailed(ctx context.Context, expired bool, err error, inst *instance) bool {
	if instanceFailedStatus(ctx, expired, err, inst.closing()) {
		return true
	}
	return ctx.Err() == nil && !expired && inst.gone()
}

// instanceFailedStatus reports whether the status of a failed call, which
// neither the caller's context nor the call's deadline ended, says the
// connection failed: UNAVAILABLE, or CANCELED when the connection was
// closing under the call (closing: the process exited, or the host is
// stopping it). A CANCELED status the plugin sent itself, from a handler
// whose own downstream call was canceled, say, is the call's failure: the
// process is fine and is not replaced.
func instanceFailedStatus(ctx context.Context, expired bool, err error, closing bool) bool {
	if ctx.Err() != nil || expired {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	case codes.Canceled:
		return closing
	}
	return false
}

// callError classifies a failed call that was not an instance failure.
// deadline is the call's own, and expired reports that it has passed.
func (p *Pool) callError(ctx context.Context, expired bool, deadline time.Time, err error) error {
	if ctx.Err() != nil {
		return p.ctxError(ctx)
	}
	st := status.Convert(err)
	// The deadline travels with a Handle call: the plugin's side may end it
	// a moment before it has passed by this clock.
	if expired || st.Code() == codes.DeadlineExceeded {
		if dl, ok := ctx.Deadline(); ok && !dl.After(deadline) {
			return fmt.Errorf("plugin %s: %w", p.name, context.DeadlineExceeded) // the caller's deadline, not ours
		}
		return &target.Error{Kind: target.Retryable,
			Err: fmt.Errorf("plugin %s: no answer within %s (plugins.%s.timeout): %w", p.name, p.cfg.Timeout, p.name, context.DeadlineExceeded)}
	}
	if tooLarge(err) {
		return target.NewPermanent(fmt.Errorf("plugin %s: a message exceeds the %s message limit (plugins.%s.max_message_bytes, and the plugin's own): %s",
			p.name, humanLimit(p.maxBytes), p.name, st.Message()))
	}
	// The status is the plugin's when it failed the call itself (an
	// uncaught exception in a Python plugin is UNKNOWN with its text), and
	// gRPC takes a message of up to 16 MiB: keep it bounded (protocol.CutMessage).
	if msg := st.Message(); len(msg) > maxHandlerError {
		err = status.Error(st.Code(), protocol.CutMessage(msg, maxHandlerError))
	}
	return &target.Error{Kind: target.Retryable, Err: fmt.Errorf("plugin %s: call failed: %w", p.name, err)}
}

// tooLarge reports whether err is gRPC's refusal of a message above the
// limit, on either side: "trying to send message larger than max" from the
// sender, "received message larger than max" from the receiver.
func tooLarge(err error) bool {
	st := status.Convert(err)
	return st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "larger than max")
}

// undecodable reports whether err is gRPC's refusal of a message it
// received that does not decode (a string field that is not UTF-8, say).
func undecodable(err error) bool {
	st := status.Convert(err)
	return st.Code() == codes.Internal && strings.Contains(st.Message(), "failed to unmarshal")
}

// humanBytes renders a size in decimal units: "5.2 MB".
func humanBytes(n int) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// humanLimit renders a limit in the binary unit it is usually set in: "4 MiB".
func humanLimit(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
