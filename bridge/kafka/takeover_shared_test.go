package kafka

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// The takeover of docs/operations.md with the bridge's kafka.balance the
// app's assignor (range): the bridge joins while the app still consumes and
// shares the group, so its take-out of the app's leader epoch before the
// join is refused, and every join after is its own member's. The app stops,
// the bridge delivers and commits, and is stopped in turn: the rollback must
// find plain offsets (no epoch), as for a bridge started after the app
// stopped. It kept the app's epoch 0 for good.
func TestSharedTakeoverLeavesNoEpoch(t *testing.T) {
	t.Parallel()
	const topic, group = "orders", "orders-api"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addrs := cluster.ListenAddrs()
	produce(t, addrs, topic, "k", "0", "k", "1")

	app := runningApp(t, addrs, group, []string{topic}, 2, map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: 0, Offset: 2}}})

	route := testRoute("orders", topic)
	route.Group = group
	tg := &offsetRecorder{}
	c, stop := runStoppable(t, addrs, route, tg, groupConfigWith(t, config.Kafka{Balance: "range"}))
	waitFor(t, "the route to join the app's group", func() bool { return c.joined.Load() },
		func() string { return fmt.Sprint(c.Ready()) })
	if _, epoch := committedEpoch(t, addrs, group, topic); epoch != 0 {
		t.Fatalf("the app's epoch is %d while the app is in the group, want its 0 (the route shares the group)", epoch)
	}
	app.Close() // the app stops

	produce(t, addrs, topic, "k", "2", "k", "3")
	waitFor(t, "offsets 2 and 3 delivered", func() bool { return slices.Equal(tg.seen(), []int64{2, 3}) },
		func() string { return fmt.Sprintf("delivered %v; ready: %v", tg.seen(), c.Ready()) })
	stop() // SIGTERM: drain, commit, leave
	if off, epoch := committedEpoch(t, addrs, group, topic); off != 4 || epoch != -1 {
		t.Errorf("the bridge left offset %d at leader epoch %d, want 4 at -1 (no epoch)", off, epoch)
	}
}
