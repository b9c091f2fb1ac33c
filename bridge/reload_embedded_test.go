package bridge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// A route that a reload adds on topics the embedded broker does not have:
// the broker creates them (the source and the dead-letter topic) as it
// would have at start, and the route delivers. Before, the reload failed on
// the missing dead-letter topic, and a route without one never joined its
// group (not ready, "consume failed; rejoining" in a loop).
func TestReloadCreatesNewTopicsInTheEmbeddedBroker(t *testing.T) {
	bodies := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		bodies <- string(body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	route := func(topic string, dlq bool) config.Route {
		r := config.Route{Name: topic, Topics: []string{topic}, Target: config.RouteTarget{Webhook: &config.Webhook{URL: srv.URL}}}
		if dlq {
			r.DeadLetter.Topic = topic + ".dlq"
		}
		return r
	}
	cfg := &config.Config{Kafka: config.Kafka{Embedded: true}, Admin: config.Admin{Listen: config.AdminOff},
		Routes: []config.Route{route("orders", true)}}
	cfg.ApplyDefaults()
	logs := &syncBuffer{}
	b := New(cfg, Options{Version: "test", Logger: telemetry.NewLogger(logs, "json", "debug")})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	addrs := embeddedAddrs(t, logs)
	next := *cfg
	next.Routes = append(slices.Clone(cfg.Routes), route("payments", true), route("refunds", false))
	next.ApplyDefaults()
	if err := b.Reload(t.Context(), &next); err != nil {
		t.Fatalf("reload: %v", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "payments", Value: []byte("p1")},
		&kgo.Record{Topic: "refunds", Value: []byte("r1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	waitUntil(t, "the records of the new routes delivered", func() bool {
		for {
			select {
			case body := <-bodies:
				got[body] = true
			default:
				return got["p1"] && got["r1"]
			}
		}
	})
}

// embeddedAddrs waits for the embedded broker's start line in logs and
// returns its addresses.
func embeddedAddrs(t *testing.T, logs *syncBuffer) []string {
	t.Helper()
	var addrs []string
	waitUntil(t, "the embedded broker's address in the log", func() bool {
		logs.mu.Lock()
		empty := logs.buf.Len() == 0
		logs.mu.Unlock()
		if empty {
			return false
		}
		for _, l := range logs.lines(t, "embedded Kafka broker started: in memory, for demos and tests only") {
			for _, a := range l["addrs"].([]any) {
				addrs = append(addrs, a.(string))
			}
		}
		return len(addrs) > 0
	})
	return addrs
}
