package kafka

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// kafka.client_rack goes out on every fetch (KIP-392): a broker whose
// replica.selector.class is rack-aware then points the route at a replica
// in that rack. Without it the fetches name no rack, and go to the leader.
func TestFetchesNameTheClientRack(t *testing.T) {
	for _, rack := range []string{"eu-west-1a", ""} {
		t.Run("rack="+rack, func(t *testing.T) {
			const topic = "racked"
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			var mu sync.Mutex
			racks := map[string]int{} // the rack of each fetch that can name one, and how many
			cluster.Control(func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				cluster.KeepControl()
				// The consumers' fetches; not the bridge's own look at
				// one offset from the leader (RecordBefore, v4, no rack).
				if f, ok := kreq.(*kmsg.FetchRequest); ok && f.Version >= 11 {
					mu.Lock()
					racks[f.Rack]++
					mu.Unlock()
				}
				return nil, nil, false
			})
			addrs := cluster.ListenAddrs()
			sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "rack-test", ClientRack: rack,
				SessionTimeout: config.Duration(6 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			tg := &valueRecorder{}
			c := NewConsumer(ConsumerOptions{Route: testRoute(topic, topic), Brokers: addrs, Sarama: sc, Target: tg,
				Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
			startRun(t, c, patience)
			produce(t, addrs, topic, "k", "v")
			waitFor(t, "the record delivered", func() bool {
				tg.mu.Lock()
				defer tg.mu.Unlock()
				return len(tg.values) == 1
			}, nil)
			mu.Lock()
			defer mu.Unlock()
			if len(racks) != 1 || racks[rack] == 0 {
				t.Errorf("fetches by rack %v, want every one from rack %q", racks, rack)
			}
		})
	}
}
