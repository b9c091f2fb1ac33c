package bridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// /readyz turns 503 as soon as the shutdown starts (docs/operations.md,
// Health), so that Kubernetes stops counting the pod. A SIGTERM that comes
// while a reload drains a changed route (its receiver still working on a
// request) found the bridge's loop inside the reload: the bridge said it was
// ready for as long as that drain took, up to shutdown_timeout, while it was
// stopping.
func TestReadyzSaysShuttingDownDuringAReload(t *testing.T) {
	arrived, release := make(chan struct{}, 16), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	var once bool
	unblock := func() {
		if !once {
			once = true
			close(release)
		}
	}
	t.Cleanup(unblock)

	// The request outlasts the test's waits: the drain, and the reload,
	// end only when the test lets the receiver answer.
	hold := config.Duration(5 * time.Minute)
	cfg := &config.Config{Kafka: config.Kafka{Embedded: true}, Admin: config.Admin{Listen: config.AdminOff},
		ShutdownTimeout: hold, Routes: []config.Route{{Name: "orders", Topics: []string{"orders"},
			Target: config.RouteTarget{Webhook: &config.Webhook{URL: srv.URL, Timeout: hold}}}}}
	cfg.ApplyDefaults()
	logs := &syncBuffer{}
	b := New(cfg, Options{Version: "test", Logger: telemetry.NewLogger(logs, "json", "debug")})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); unblock(); <-done })

	addrs := embeddedAddrs(t, logs)
	waitUntil(t, "the route ready", func() bool { return b.Ready() == nil })
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "orders", Value: []byte("o1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatal("the record never reached the receiver")
	}

	// A reload that changes the route drains it first: the drain waits
	// for the request the receiver holds.
	next := *cfg
	next.Routes = slices.Clone(cfg.Routes)
	next.Routes[0].Concurrency = cfg.Routes[0].Concurrency + 1
	reloaded := make(chan error, 1)
	go func() { reloaded <- b.Reload(context.WithoutCancel(ctx), &next) }()
	waitUntil(t, "the reload applying", func() bool { return len(logs.lines(t, "applying a new configuration")) > 0 })

	cancel() // SIGTERM
	waitUntil(t, "/readyz to say shutting down while the reload drains", func() bool {
		err := b.Ready()
		return err != nil && strings.Contains(err.Error(), "shutting down")
	})
	if n := len(logs.lines(t, "reload: routes restarted")); n != 0 {
		t.Fatal("the reload ended while the receiver held its request")
	}
	unblock()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	// The reload does not start the drained route again only for the
	// shutdown to drain it once more.
	if err := <-reloaded; err == nil {
		t.Error("the reload interrupted by the shutdown reported success")
	}
	if n := len(logs.lines(t, "reload: routes restarted")); n != 0 {
		t.Error("the reload restarted the route after the shutdown began")
	}
	if n := len(logs.lines(t, "reload: shutting down; the changed routes drained and stay stopped")); n != 1 {
		t.Errorf("the reload logged its end under the shutdown %d times, want once", n)
	}
	done <- nil // for the cleanup
}
