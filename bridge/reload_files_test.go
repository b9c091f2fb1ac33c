package bridge

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// A reload re-reads the files a route's target reads only when it starts:
// after a second secret is added to signing_secrets_file (step 2 of a
// rotation) and the unchanged configuration is reloaded, the next request
// carries a signature of each secret.
func TestReloadRereadsTheSigningSecretsFile(t *testing.T) {
	const (
		oldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		newSecret = "whsec_c2Vjb25kIHNpZ25pbmcgc2VjcmV0IGJ5dGVz"
	)
	secrets := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(secrets, []byte(oldSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	signatures := map[string]string{} // body -> its webhook-signature header
	signed := func(body string) string {
		mu.Lock()
		defer mu.Unlock()
		return signatures[body]
	}
	rig := newAccountingRig(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		signatures[string(body)] = r.Header.Get("webhook-signature")
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}, nil, nil)
	// The rig's route, signed with the secrets of the file.
	rig.b.mu.Lock()
	first := *rig.b.cfg
	rig.b.mu.Unlock()
	first.Routes = slices.Clone(first.Routes)
	wh := *first.Routes[0].Target.Webhook
	wh.SigningSecretsFile = secrets
	first.Routes[0].Target.Webhook = &wh
	if err := rig.b.Reload(t.Context(), &first); err != nil {
		t.Fatal(err)
	}
	rig.produce(t, &kgo.Record{Topic: "orders", Key: []byte("k1"), Value: []byte("before")})
	waitUntil(t, "the first delivery", func() bool { return signed("before") != "" })
	if n := strings.Count(signed("before"), "v1,"); n != 1 {
		t.Fatalf("the first request carries %d signatures, want 1", n)
	}

	// Step 2 of a rotation: the new secret next to the old one, and a
	// reload of the configuration, which did not change.
	if err := os.WriteFile(secrets, []byte(oldSecret+"\n"+newSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	again := first
	again.Routes = slices.Clone(first.Routes)
	if err := rig.b.Reload(t.Context(), &again); err != nil {
		t.Fatal(err)
	}
	rig.produce(t, &kgo.Record{Topic: "orders", Key: []byte("k2"), Value: []byte("after")})
	waitUntil(t, "the second delivery", func() bool { return signed("after") != "" })
	if n := strings.Count(signed("after"), "v1,"); n != 2 {
		t.Fatalf("after the reload a request carries %d signature(s), want 2 (the file holds two secrets): %s",
			n, signed("after"))
	}
}

// A reload that restarts the only route of a target whose breaker is open,
// without changing the target's breaker or rate limit, keeps that breaker:
// the route starts paused, as the docs promise, instead of sending its
// records to the target that is down as if it were up.
func TestReloadKeepsAnOpenBreakerWhoseSettingsDidNotChange(t *testing.T) {
	var mu sync.Mutex
	hang := false // once set, requests wait for the test's end
	released := make(chan struct{})
	rig := newAccountingRig(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		mu.Lock()
		h := hang
		mu.Unlock()
		if h {
			<-released
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}, nil, func(r *config.Route) {
		r.Filter = config.Filter{}
		r.Retry.MaxAttempts = 1000
		r.Breaker = config.Breaker{ConsecutiveFailures: 2, FailureRatio: 1, MinRequests: 1000,
			OpenTimeout: config.Duration(time.Hour)}
		r.Target.Webhook.Timeout = config.Duration(time.Hour)
	})
	t.Cleanup(func() { close(released) }) // before the server closes
	breaker := func() float64 { return metricSum(t, rig.m, "hookbridge_breaker_state", nil) }
	rig.produce(t, &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("a")},
		&kgo.Record{Topic: "orders", Partition: 1, Value: []byte("b")})
	waitUntil(t, "the breaker to open", func() bool { return breaker() == 2 })
	mu.Lock()
	hang = true // from now on a request that reaches the target never fails
	mu.Unlock()

	rig.b.mu.Lock()
	next := *rig.b.cfg
	rig.b.mu.Unlock()
	next.Routes = slices.Clone(next.Routes)
	next.Routes[0].Concurrency++
	if err := rig.b.Reload(t.Context(), &next); err != nil {
		t.Fatal(err)
	}
	if got := breaker(); got != 2 {
		t.Fatalf("after the reload the target's breaker is in state %v, want 2 (open, as it was)", got)
	}
	waitUntil(t, "the restarted route to pause", func() bool { return rig.sum(t, "hookbridge_partitions_paused") == 2 })
}

// dropUnused keeps the target of a route that restarts with the same
// breaker and rate limit, and forgets one whose settings it changes.
func TestDropUnusedKeepsATargetRestartedWithItsSettings(t *testing.T) {
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = metrics.Shutdown(context.WithoutCancel(t.Context())) })
	s := &sharedTargets{m: map[string]*shared{}, metrics: metrics, log: telemetry.NewLogger(io.Discard, "json", "info")}
	route := func(limit float64, failures int) config.Route {
		return config.Route{Name: "a", Breaker: config.Breaker{ConsecutiveFailures: failures, OpenTimeout: config.Duration(time.Second)},
			Target: config.RouteTarget{Webhook: &config.Webhook{URL: "http://h/a", RateLimit: limit}}}
	}
	old := s.get(t.Context(), route(10, 5))
	s.dropUnused(nil, []config.Route{route(10, 5)}) // concurrency changed, say
	if s.get(t.Context(), route(10, 5)) != old {
		t.Fatal("a route restarted with the same breaker and rate limit got a new target")
	}
	for _, changed := range []config.Route{route(20, 5), route(10, 6)} {
		before := s.get(t.Context(), route(10, 5))
		s.dropUnused(nil, []config.Route{changed})
		if s.get(t.Context(), changed) == before {
			t.Fatalf("the target was kept for a route whose settings changed to %+v", settingsOf(changed))
		}
		s.dropUnused(nil, nil)
	}
}
