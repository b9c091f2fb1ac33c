package kafka

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// A bridge runs one Kafka client per route. Each keeps the metadata of its
// route's topics only: with sarama's default (Metadata.Full) every one of
// them fetched the metadata of every topic of the cluster at its start and
// again every minute, and held it. On a cluster shared by many teams, 200
// routes held 200 copies of the cluster's metadata (2,000 other topics of
// 12 partitions: 883 MB of live heap instead of 52 MB, and 13 s instead of
// 1 s to start). The route's fetch size still follows its topics'
// partitions, which the client looks up before the group starts.
func TestConsumerKeepsOwnTopicsMetadata(t *testing.T) {
	t.Parallel()
	const topic = "own-topic"
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(4, topic)}
	var others []string
	for i := range 50 {
		others = append(others, fmt.Sprintf("another-team-%02d", i))
	}
	opts = append(opts, kfake.SeedTopics(3, others...))
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addrs := cluster.ListenAddrs()
	produceTo(t, addrs, topic, 2, "k", "0")

	route := testRoute("own-metadata", topic) // max_in_flight_bytes 1 MiB
	tg := &offsetRecorder{}
	sc := groupConfig(t)
	c, _ := runRouteWith(t, addrs, route, tg, &deadLetters{}, sc)
	waitFor(t, "the record delivered", func() bool { return slices.Equal(tg.seen(), []int64{0}) },
		func() string { return fmt.Sprintf("delivered %v", tg.seen()) })

	topics, err := c.client.Topics()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(topics, []string{topic}) {
		t.Errorf("the route's client holds the metadata of %d topics (%v...), want only its own, %s",
			len(topics), topics[:min(len(topics), 3)], topic)
	}
	// 1 MiB over the topic's 4 partitions.
	if got, want := sc.Consumer.Fetch.Default, int32(256<<10); got != want {
		t.Errorf("fetch size %d, want %d (max_in_flight_bytes / partitions)", got, want)
	}
}
