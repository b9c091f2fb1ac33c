package bridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// The ACLs docs/security.md lists for a route with a dead-letter topic
// (READ on its topic and on its group, WRITE on its dead-letter topic) are
// all the bridge needs: it starts, delivers, dead-letters and is ready.
// Without WRITE on the dead-letter topic (DESCRIBE only, so the topic is
// listed), run started and said ready, and the first record that failed
// stopped its partition on "not authorized to access this topic"; it fails
// at start instead, naming the topic and the grant.
func TestRunNeedsTheDocumentedACLsOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dlqOp kmsg.ACLOperation
	}{
		{"documented", kmsg.ACLOperationWrite},
		{"no WRITE on the dead-letter topic", kmsg.ACLOperationDescribe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allow := func(rt kmsg.ACLResourceType, name string, op kmsg.ACLOperation) kfake.ACL {
				return kfake.ACL{Resource: rt, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
			}
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders", "orders.dlq"),
				kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser("PLAIN", "admin", "admin"),
				kfake.User("PLAIN", "bridge", "secret",
					allow(kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationRead),
					allow(kmsg.ACLResourceTypeGroup, "hookbridge.orders-billing", kmsg.ACLOperationRead),
					allow(kmsg.ACLResourceTypeTopic, "orders.dlq", tc.dlqOp)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			var posts atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if posts.Add(1)%2 == 0 {
					w.WriteHeader(http.StatusUnprocessableEntity) // dead-letter every other record
				}
			}))
			t.Cleanup(srv.Close)
			cfg := &config.Config{
				Kafka: config.Kafka{Brokers: cluster.ListenAddrs(),
					SASL: config.SASL{Mechanism: config.SASLPlain, Username: "bridge", Password: "secret", AllowInsecure: true}},
				Admin: config.Admin{Listen: config.AdminOff},
				Routes: []config.Route{{Name: "orders-billing", Topics: []string{"orders"},
					Target:     config.RouteTarget{Webhook: &config.Webhook{URL: srv.URL}},
					DeadLetter: config.DeadLetter{Topic: "orders.dlq"}}},
			}
			cfg.ApplyDefaults()
			m, err := telemetry.NewMetrics()
			if err != nil {
				t.Fatal(err)
			}
			b, ended, err := runUntilReadyOrEnded(t, cfg, m)
			if tc.dlqOp != kmsg.ACLOperationWrite {
				if !ended {
					t.Fatal("run started and the bridge is ready; want it to fail at start naming orders.dlq and the WRITE it lacks")
				}
				if err == nil || !strings.Contains(err.Error(), "[orders.dlq]") || !strings.Contains(err.Error(), "WRITE") {
					t.Fatalf("run: %v; want it to fail at start naming orders.dlq and the WRITE it lacks", err)
				}
				return
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.SASL(plain.Auth{User: "admin", Pass: "admin"}.AsMechanism()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			for i := range 6 {
				if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "orders", Key: []byte{byte('a' + i)}, Value: []byte("v")}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			waitUntil(t, "6 records delivered or dead-lettered, the bridge ready", func() bool {
				return metricSum(t, m, "hookbridge_records_delivered_total", accountingRoute)+
					metricSum(t, m, "hookbridge_records_dead_lettered_total", accountingRoute) == 6 && b.Ready() == nil
			})
			if n := metricSum(t, m, "hookbridge_records_dead_lettered_total", accountingRoute); n != 3 {
				t.Errorf("%v records dead-lettered, want 3", n)
			}
		})
	}
}

// runUntilReadyOrEnded runs a bridge on cfg, with metrics m, until it is
// ready or Run returned (a start it refused), and reports which, with Run's
// error. The bridge stops at the end of the test.
func runUntilReadyOrEnded(t *testing.T, cfg *config.Config, m *telemetry.Metrics) (b *Bridge, ended bool, runErr error) {
	t.Helper()
	b = New(cfg, Options{Version: "test", Metrics: m, Logger: telemetry.NewLogger(&syncBuffer{}, "json", "debug")})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, "run to end, or the bridge to be ready", func() bool {
		select {
		case runErr = <-done:
			ended = true
			done <- runErr // for the cleanup
		default:
		}
		return ended || b.Ready() == nil
	})
	return b, ended, runErr
}
