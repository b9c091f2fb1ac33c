package bridge

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// A dead-letter topic created with cleanup.policy=compact loses dead
// letters: compaction keeps only each key's last one, and the broker refuses
// the dead letter of a record without a key. run started with one and said
// ready; it fails at start instead, naming the topic and the setting. A
// compacted reply topic is the operator's choice (replies keyed as a
// changelog) and is accepted.
func TestRunRefusesACompactedDeadLetterTopic(t *testing.T) {
	for _, tc := range []struct {
		name        string
		dlqPolicy   string
		replyPolicy string
		wantRefusal bool
	}{
		{"compacted dead-letter topic", "compact", "delete", true},
		{"compacted and deleted dead-letter topic", "compact,delete", "delete", true},
		{"compacted reply topic", "delete", "compact", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			if err := cluster.CreateTopic("orders.dlq", 1, map[string]string{"cleanup.policy": tc.dlqPolicy}); err != nil {
				t.Fatal(err)
			}
			if err := cluster.CreateTopic("orders.replies", 1, map[string]string{"cleanup.policy": tc.replyPolicy}); err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{
				Kafka: config.Kafka{Brokers: cluster.ListenAddrs()},
				Admin: config.Admin{Listen: config.AdminOff},
				Routes: []config.Route{{Name: "orders-billing", Topics: []string{"orders"},
					Target:     config.RouteTarget{Webhook: &config.Webhook{URL: "http://127.0.0.1:1/hook"}},
					DeadLetter: config.DeadLetter{Topic: "orders.dlq"},
					Reply:      config.Reply{Topic: "orders.replies"}}},
			}
			cfg.ApplyDefaults()
			m, err := telemetry.NewMetrics()
			if err != nil {
				t.Fatal(err)
			}
			_, ended, runErr := runUntilReadyOrEnded(t, cfg, m)
			if !tc.wantRefusal {
				if ended {
					t.Fatalf("run with a compacted reply topic: %v; want it to start", runErr)
				}
				return
			}
			if !ended {
				t.Fatal("run started and the bridge is ready; want it to fail at start naming orders.dlq and its cleanup.policy")
			}
			if runErr == nil || !strings.Contains(runErr.Error(), "orders.dlq") || !strings.Contains(runErr.Error(), "cleanup.policy=delete") ||
				strings.Contains(runErr.Error(), "orders.replies") {
				t.Fatalf("run: %v; want it to fail at start naming orders.dlq (only) and cleanup.policy=delete", runErr)
			}
		})
	}
}
