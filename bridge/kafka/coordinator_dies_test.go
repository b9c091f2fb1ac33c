package kafka

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// A broker of three dies (kill -9, a lost host) while it is the group's
// coordinator and leads partitions the route reads; the cluster moves both
// to the brokers left. The route must find the new coordinator and go on:
// sarama's join, failing to reach the coordinator it has cached, drops the
// connection but keeps the broker as the coordinator, so every later join
// went to the dead broker again until the client's next metadata refresh
// forgot it (a minute, or never while the dead broker is still listed).
func TestRouteFindsNewCoordinatorWhenItsBrokerDies(t *testing.T) {
	const topic, parts = "orders", 3
	var mu sync.Mutex
	var lns []*downListener
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(parts, topic),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			dl := &downListener{Listener: l}
			lns = append(lns, dl)
			return dl, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addrs := cluster.ListenAddrs()
	route := testRoute("coordinator-dies", topic)
	group := route.GroupID()

	counter := &deliveryCounter{}
	c, _ := runRoute(t, addrs, route, counter, &deadLetters{})
	for p := range int32(parts) {
		produceTo(t, addrs, topic, p, "k", "before")
	}
	waitFor(t, "the first records delivered", func() bool { return counter.distinct() == parts },
		func() string { return describe(c, topic) })

	// The coordinator's broker goes down; as Kafka does once it fences it,
	// its partitions and the group move to the brokers left.
	dead := cluster.CoordinatorFor(group)
	alive := (dead + 1) % 3
	mu.Lock()
	lns[dead].refuse()
	mu.Unlock()
	for p := range int32(parts) {
		if cluster.LeaderFor(topic, p) == dead {
			if err := cluster.MoveTopicPartition(topic, p, alive); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Kafka moves the group only once it fenced the dead broker, seconds
	// later: by then the route's session ended, and its first tries to
	// join again failed against the dead broker.
	waitFor(t, "the route to fail to join again", func() bool { return c.joinErr.Load() != nil },
		func() string { return describe(c, topic) })
	for cluster.CoordinatorFor(group) == dead {
		cluster.RehashCoordinators()
	}
	for p := range int32(parts) {
		produceTo(t, []string{addrs[alive]}, topic, p, "k", "after")
	}
	waitFor(t, "the records produced after the coordinator died delivered", func() bool { return counter.distinct() == 2*parts },
		func() string {
			return fmt.Sprintf("delivered %d of %d; Ready() = %v", counter.distinct(), 2*parts, c.Ready())
		})
}
