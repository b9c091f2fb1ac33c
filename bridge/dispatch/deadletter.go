package dispatch

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// Dead-letter header names. The original headers are kept and these are added.
const (
	HeaderErrorRoute       = "hookbridge-error-route"
	HeaderErrorGroup       = "hookbridge-error-group"
	HeaderErrorTopic       = "hookbridge-error-topic"
	HeaderErrorPartition   = "hookbridge-error-partition"
	HeaderErrorOffset      = "hookbridge-error-offset"
	HeaderErrorAttempts    = "hookbridge-error-attempts"
	HeaderErrorStatus      = "hookbridge-error-status"
	HeaderErrorKind        = "hookbridge-error-kind"
	HeaderErrorMessage     = "hookbridge-error-message"
	HeaderErrorFirstFailed = "hookbridge-error-first-failure"
	HeaderErrorLastFailed  = "hookbridge-error-last-failure"
	// HeaderErrorTimestamp is the failed record's own timestamp. The dead
	// letter's Kafka timestamp is when it was written, so that the
	// dead-letter topic's retention counts from then, not from an old
	// record's time; a replay restores the record's from this header.
	HeaderErrorTimestamp = "hookbridge-error-timestamp"
)

// FormatRecordTime renders a record's timestamp for HeaderErrorTimestamp:
// RFC 3339, or, for a time RFC 3339 cannot write (a producer may set one
// past year 9999), its Unix milliseconds. ParseRecordTime reads either.
func FormatRecordTime(t time.Time) string {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ParseRecordTime reads a time FormatRecordTime wrote.
func ParseRecordTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), true
	}
	return time.Time{}, false
}

// maxErrorHeader bounds the error text copied into a dead-letter header.
const maxErrorHeader = 1024

// DeadLetterPolicy says where failed records go.
type DeadLetterPolicy struct {
	Route string
	Group string
	// Topic receives failed records. Empty means there is no dead-letter
	// topic: a failed record is parked (its partition cannot commit past it)
	// and delivered again every Backoff until it succeeds.
	Topic string
	// Backoff caps the wait between tries of a failed dead-letter write
	// (which start at 100ms and double, never below 100ms), and is the wait
	// between cycles of a parked record.
	Backoff time.Duration
}

// DeadLetter turns a *Failure from the layers below into a terminal outcome by
// writing the record to the dead-letter topic. It returns nil only after the
// write was acknowledged. A write that fails is retried until it succeeds or
// ctx ends; meanwhile the record is reported Stuck. Errors that are not a
// *Failure pass through unchanged.
func DeadLetter(p DeadLetterPolicy, prod Producer, ev Events) target.Layer {
	return func(next target.Target) target.Target {
		return target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
			stuck := false
			for {
				res, err := next.Deliver(ctx, d)
				f, failed := errors.AsType[*Failure](err)
				if !failed {
					if err == nil && stuck {
						ev.Unstuck(ctx, d.Record)
					}
					return res, err
				}
				if p.Topic != "" {
					out := []target.Output{deadLetterRecord(p, d.Record, f)}
					// A dead-letter write is never given up: a record that
					// cannot be dead-lettered holds its partition.
					if err := produce(ctx, prod, out, d.Record, ev, p.Backoff, stuck, false); err != nil {
						return nil, err
					}
					ev.DeadLettered(ctx, d.Record, f)
					return nil, nil
				}
				// No dead-letter topic: park the record and try it again,
				// once a cycle, its attempts numbered on.
				if !stuck {
					ev.Stuck(ctx, d.Record, f)
					stuck = true
					ctx = context.WithValue(ctx, parkedKey{}, true)
				}
				if err := sleep(ctx, p.Backoff); err != nil {
					return nil, err
				}
				again := *d
				again.Attempt = max(f.LastAttempt, d.Attempt-1, 0) + 1
				d = &again
			}
		})
	}
}

func deadLetterRecord(p DeadLetterPolicy, rec *target.Record, f *Failure) target.Output {
	msg := f.Error()
	if f.Err != nil {
		msg = f.Err.Error()
	}
	if len(msg) > maxErrorHeader {
		msg = strings.ToValidUTF8(msg[:maxErrorHeader], "")
	}
	h := make([]target.Header, 0, len(rec.Headers)+12)
	h = append(h, rec.Headers...)
	add := func(k, v string) { h = append(h, target.Header{Key: k, Value: []byte(v)}) }
	add(HeaderErrorRoute, p.Route)
	add(HeaderErrorGroup, p.Group)
	add(HeaderErrorTopic, rec.Topic)
	add(HeaderErrorPartition, strconv.FormatInt(int64(rec.Partition), 10))
	add(HeaderErrorOffset, strconv.FormatInt(rec.Offset, 10))
	add(HeaderErrorAttempts, strconv.Itoa(f.Attempts))
	add(HeaderErrorStatus, strconv.Itoa(target.StatusOf(f.Err)))
	add(HeaderErrorKind, target.KindOf(f.Err).String())
	add(HeaderErrorMessage, msg)
	add(HeaderErrorFirstFailed, f.FirstFailed.UTC().Format(time.RFC3339Nano))
	add(HeaderErrorLastFailed, f.LastFailed.UTC().Format(time.RFC3339Nano))
	if !rec.Timestamp.IsZero() {
		add(HeaderErrorTimestamp, FormatRecordTime(rec.Timestamp))
	}
	return target.Output{Topic: p.Topic, Key: rec.Key, Value: rec.Value, Headers: h}
}

// parkedKey marks the context of a record DeadLetter parked and reported
// Stuck, for the cycles that try it again: the layers below (Reply) then
// leave reporting it to DeadLetter, which reports it moved on when it does.
type parkedKey struct{}

// produce writes outs until the producer acknowledges them or ctx ends, or,
// when giveUp, until the producer says they were refused for good
// (target.Permanent), which it returns. While it fails the record is
// reported Stuck (once); success reports Unstuck when the record was stuck,
// here or in the caller (wasStuck), and so does giving up. A record that
// DeadLetter parked is DeadLetter's to report: it is stuck already, and
// DeadLetter reports it moved on, or parks it again. A try after a failure
// writes only the records the producer did not acknowledge (*ProduceError).
func produce(ctx context.Context, prod Producer, outs []target.Output, rec *target.Record, ev Events, maxWait time.Duration, wasStuck, giveUp bool) error {
	wait := 100 * time.Millisecond
	parked := ctx.Value(parkedKey{}) != nil
	wasStuck = wasStuck || parked
	stuck := wasStuck
	for {
		err := prod.Produce(ctx, outs)
		if err == nil {
			if stuck && !parked {
				ev.Unstuck(ctx, rec)
			}
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if giveUp && target.KindOf(err) == target.Permanent {
			if stuck && !parked {
				ev.Unstuck(ctx, rec)
			}
			return err
		}
		if !stuck {
			ev.Stuck(ctx, rec, err)
			stuck = true
		}
		if pe, ok := errors.AsType[*ProduceError](err); ok && len(pe.Unwritten) > 0 {
			// The others were acknowledged: only these are written again.
			left := make([]target.Output, 0, len(pe.Unwritten))
			for _, i := range pe.Unwritten {
				if i >= 0 && i < len(outs) {
					left = append(left, outs[i])
				}
			}
			if len(left) > 0 {
				outs = left
			}
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, max(maxWait, 100*time.Millisecond))
	}
}
