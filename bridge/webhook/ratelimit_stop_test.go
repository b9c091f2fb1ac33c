package webhook

import (
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A delivery waiting for the rate limiter has sent nothing yet: when the
// bridge starts shutting down (the stop channel of dispatch.WithStop closes),
// it ends at once, as a retry backoff does, canceled (not a failure the
// breaker counts), and the record is redelivered after the restart. Before,
// it waited out the limiter, holding the shutdown for up to
// shutdown_timeout (with rate_limit 1 and 64 records in flight, a minute of
// reservations), and then was abandoned anyway. In batch mode too.
func TestRateLimitWaitEndsOnStop(t *testing.T) {
	for _, batch := range []bool{false, true} {
		name := "single"
		if batch {
			name = "batch"
		}
		t.Run(name, func(t *testing.T) {
			srv, reqs := receiver(t, nil)
			// One request per hour: the first goes at once, the second waits.
			limiter := rate.NewLimiter(rate.Every(time.Hour), 1)
			tg := newTarget(t, srv.URL, func(o *Options) {
				o.Limiter = limiter
				if batch {
					o.Config.Batch = config.Batch{MaxMessages: 1}
				}
			})
			stop := make(chan struct{})
			ctx := dispatch.WithStop(t.Context(), stop)
			if _, err := tg.Deliver(ctx, &target.Delivery{Record: record(), Attempt: 1}); err != nil {
				t.Fatal(err)
			}
			next(t, reqs)

			waited := make(chan time.Duration, 1)
			tg.rateLimited = func(d time.Duration) { waited <- d }
			done := make(chan error, 1)
			go func() {
				rec := record()
				rec.Offset++
				_, err := tg.Deliver(ctx, &target.Delivery{Record: rec, Attempt: 1})
				done <- err
			}()
			select {
			case <-waited: // the second delivery waits for the limiter
			case <-time.After(10 * time.Second):
				t.Fatal("the second delivery did not wait for the limiter")
			}
			close(stop)
			select {
			case err := <-done:
				if k := target.KindOf(err); k != target.Canceled {
					t.Fatalf("KindOf(%v) = %s, want canceled", err, k)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the delivery waiting for the rate limiter did not end when the bridge began to stop")
			}
			select {
			case r := <-reqs:
				t.Fatalf("the receiver got a request after the stop: %s", r.header.Get(HeaderWebhookID))
			default:
			}
		})
	}
}
