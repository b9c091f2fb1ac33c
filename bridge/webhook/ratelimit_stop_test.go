package webhook

import (
	"net/http"
	"path/filepath"
	"sync"
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
			// The second delivery reserved the next token, an hour ahead.
			waitFor(t, 10*time.Second, "the second delivery to wait for the limiter", func() bool { return limiter.Tokens() < 0 })
			close(stop)
			select {
			case err := <-done:
				if k := target.KindOf(err); k != target.Canceled {
					t.Fatalf("KindOf(%v) = %s, want canceled", err, k)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the delivery waiting for the rate limiter did not end when the bridge began to stop")
			}
			// The wait counted (hookbridge_ratelimit_wait_seconds_total) is
			// the one that took place, not the hour it was reserved for.
			select {
			case d := <-waited:
				if d >= time.Hour/2 {
					t.Errorf("a wait cut short by the stop counted %s, the reservation's length", d)
				}
			default:
				t.Error("the wait cut short by the stop was not counted")
			}
			select {
			case r := <-reqs:
				t.Fatalf("the receiver got a request after the stop: %s", r.header.Get(HeaderWebhookID))
			default:
			}
		})
	}
}

// The request sent again after a 401 with a renewed credential is a request
// to the receiver like any other: it waits for its turn under rate_limit
// rather than going at once, one request more per 401 than the limit allows.
func TestRequestSentAgainAfter401WaitsForTheRateLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeSecret(t, path, "token-old\n")
	var once sync.Once
	srv, reqs := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer token-rotated" {
			// Rotated now: the 401 makes the target read the file again,
			// and it would send the request again at once.
			once.Do(func() { writeSecret(t, path, "token-rotated\n") })
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	limiter := rate.NewLimiter(rate.Every(time.Hour), 1)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.BearerTokenFile = path
		o.Config.Timeout = config.Duration(2 * time.Second)
		o.Limiter = limiter
	})
	_, err := deliver(t, t.Context(), tg, record())
	if err == nil {
		t.Fatal("delivered: the request sent again did not wait for the rate limit (one per hour, spent by the first)")
	}
	if k := target.KindOf(err); k != target.Retryable && k != target.Canceled {
		t.Errorf("KindOf(%v) = %s, want a failure that is not the record's", err, k)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer token-old" {
		t.Fatalf("first request Authorization = %q", got)
	}
	select {
	case r := <-reqs:
		t.Fatalf("a second request (Authorization %q) went past the rate limit", r.header.Get("Authorization"))
	default:
	}
}
