package webhook

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	sdk "github.com/hookbridge/hookbridge/sdk/webhook"
)

type dlqRecorder struct {
	mu   sync.Mutex
	outs []target.Output
}

func (p *dlqRecorder) Produce(_ context.Context, outs []target.Output) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outs = append(p.outs, outs...)
	return nil
}

func (p *dlqRecorder) n() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.outs)
}

type downStore struct{}

func (downStore) Seen(context.Context, string) (bool, error) {
	return false, errors.New("store down")
}
func (downStore) Mark(context.Context, string) error { return errors.New("store down") }

// The project's own receiver toolkit (sdk/webhook.Handler) in front of a
// receiver that is down: its Store is down, or every call of Func fails (its
// database is down). In single-record mode and in batch mode alike the
// breaker opens and the route pauses; nothing is dead-lettered. Before, in
// batch mode it answered 200 {"failed": [every id]}, which the bridge reads
// as "the receiver is up, these records failed": the breaker never counted
// it, and every record spent its max_attempts and was dead-lettered during
// the outage.
func TestBatchReceiverToolkitDownPausesTheRoute(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v, err := sdk.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	handlers := map[string]*sdk.Handler{
		"store down":    {Verifier: v, Store: downStore{}, Func: func(context.Context, *sdk.Delivery) error { return nil }},
		"database down": {Verifier: v, Func: func(context.Context, *sdk.Delivery) error { return errors.New("db: connection refused") }},
	}
	for hname, h := range handlers {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		for _, batch := range []bool{false, true} {
			name := hname + "/" + map[bool]string{false: "single", true: "batch"}[batch]
			t.Run(name, func(t *testing.T) {
				tg := newTarget(t, srv.URL, func(o *Options) {
					o.Now = time.Now
					o.Config.SigningSecrets = []string{secret}
					if batch {
						o.Config.Batch = config.Batch{MaxMessages: 2, MaxWait: config.Duration(5 * time.Millisecond)}
					}
				})
				br := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "t", FailureRatio: 1, MinRequests: 100,
					ConsecutiveFailures: 3, OpenTimeout: time.Hour})
				prod := &dlqRecorder{}
				chain := target.Chain(tg,
					dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: "r", Topic: "dlq", Backoff: time.Millisecond}, prod, dispatch.NopEvents{}),
					dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, dispatch.NopEvents{}),
					dispatch.BreakerLayer(br),
				)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				var wg sync.WaitGroup
				for i := range 2 {
					rec := &target.Record{Topic: "orders", Partition: int32(i), Offset: 1, Key: []byte("k"), Value: []byte(`{}`),
						Headers: []target.Header{{Key: "content-type", Value: []byte("application/json")}}}
					wg.Go(func() { _, _ = chain.Deliver(ctx, &target.Delivery{Route: "r", Record: rec, Attempt: 1}) })
				}
				deadline := time.Now().Add(20 * time.Second)
				for prod.n() < 2 && br.State() != dispatch.BreakerOpen && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				cancel()
				wg.Wait()
				if n := prod.n(); n > 0 {
					t.Errorf("%s: %d record(s) dead-lettered while the receiver was down (breaker %s); want the breaker to open and the records held", name, n, br.State())
				} else if br.State() != dispatch.BreakerOpen {
					t.Errorf("%s: breaker %s, want open", name, br.State())
				}
			})
		}
	}
}
