package kafka

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// appCommit commits offset of partition 0 of topic for group as a client
// that is no member of it (the app after it stopped), with metadata and the
// leader epoch the app's client saw: what confluent-kafka and the Java
// client leave behind.
func appCommit(t *testing.T, addrs []string, group, topic string, offset int64, epoch int32, metadata string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = 0, offset, epoch, &metadata
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("app commit: %v", err)
	}
}

// committedEpoch is the leader epoch group committed with its offset of
// partition 0 of topic.
func committedEpoch(t *testing.T, addrs []string, group, topic string) (int64, int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, p.LeaderEpoch
}

// A team moves its consumer of orders, group orders-api, to the bridge: the
// app committed offset 10 with its metadata at leader epoch 0, then the
// partition's leader changed (epoch 1) and records 10-19 were produced. The
// bridge resumes at 10, delivers 10-19 and commits 20. Rolled back, the app
// must resume at 20: the bridge's commit must not carry the app's old epoch,
// which a client that checks epochs (franz-go, the Java client, librdkafka)
// takes for a log truncation at the end of epoch 0, rewinding to 10 and
// delivering 10-19 again, for as long as the group runs.
func TestTakeoverRollbackResumesAtTheBridgesCommit(t *testing.T) {
	t.Parallel()
	const topic, group = "orders", "orders-api"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	var kvs []string
	for i := range 10 {
		kvs = append(kvs, "k", fmt.Sprint(i))
	}
	produce(t, addrs, topic, kvs...)
	appCommit(t, addrs, group, topic, 10, 0, "app-meta")
	if err := cluster.MoveTopicPartition(topic, 0, cluster.LeaderFor(topic, 0)); err != nil {
		t.Fatal(err)
	}
	produce(t, addrs, topic, kvs...) // offsets 10-19, epoch 1

	route := testRoute("orders", topic)
	route.Group = group
	tg := &offsetRecorder{}
	_, stop := runStoppable(t, addrs, route, tg, groupConfigWith(t, config.Kafka{InitialOffset: "newest"}))
	want := []int64{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}
	waitFor(t, "offsets 10-19 delivered", func() bool { return slices.Equal(tg.seen(), want) },
		func() string { return fmt.Sprintf("delivered %v", tg.seen()) })
	stop() // SIGTERM: drain and commit
	if off, epoch := committedEpoch(t, addrs, group, topic); off != 20 || epoch != -1 {
		t.Errorf("the bridge committed offset %d at leader epoch %d, want 20 at -1 (no epoch)", off, epoch)
	}

	// Rollback: the app consumes the group again.
	produce(t, addrs, topic, "k", "20")
	app, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.RangeBalancer()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	pctx, pcancel := context.WithTimeout(t.Context(), patience)
	defer pcancel()
	var first []int64
	for len(first) == 0 && pctx.Err() == nil {
		app.PollFetches(pctx).EachRecord(func(r *kgo.Record) { first = append(first, r.Offset) })
	}
	if len(first) == 0 || first[0] != 20 {
		t.Errorf("the app, rolled back, read %v first; want offset 20 (nothing the bridge delivered again)", first)
	}
}

// The cutover while the app still runs in orders-api with range assignment
// (and consumes payments in it too): the bridge, on cooperative-sticky,
// cannot join. It says why and what to do, is not ready, and commits
// nothing; once the app stops it joins without a restart, resumes orders
// at the app's offset and leaves the payments offset alone.
func TestTakeoverWhileTheAppStillRuns(t *testing.T) {
	t.Parallel()
	const topic, group = "orders", "orders-api"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic, "payments"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addrs := cluster.ListenAddrs()
	produce(t, addrs, topic, "k", "0", "k", "1", "k", "2", "k", "3")
	produce(t, addrs, "payments", "p", "0", "p", "1")

	// The app has delivered orders 0-1 and payments 0-1.
	app := runningApp(t, addrs, group, []string{topic, "payments"}, 4,
		map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: 0, Offset: 2}}, "payments": {0: {Epoch: 0, Offset: 2}}})

	route := testRoute("orders", topic)
	route.Group = group
	tg := &offsetRecorder{}
	c, _ := runRouteWith(t, addrs, route, tg, &deadLetters{}, groupConfig(t))
	waitFor(t, "the route to say why it cannot join", func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), "an application whose group this route takes over") &&
			strings.Contains(err.Error(), "this route joins by itself")
	}, func() string { return fmt.Sprint(c.Ready()) })
	admin := newAdmin(t, addrs)
	if got, off := tg.seen(), committed(t, admin, group, topic); len(got) != 0 || off != 2 {
		t.Fatalf("delivered %v and committed %d while the app owns the group, want nothing and the app's 2", got, off)
	}
	app.Close() // the app stops: it leaves the group

	waitFor(t, "orders 2 and 3 delivered", func() bool { return slices.Equal(tg.seen(), []int64{2, 3}) },
		func() string { return fmt.Sprintf("delivered %v; ready: %v", tg.seen(), c.Ready()) })
	waitFor(t, "orders committed at 4", func() bool { return committed(t, admin, group, topic) == 4 },
		func() string { return fmt.Sprintf("committed %d", committed(t, admin, group, topic)) })
	if got := committed(t, admin, group, "payments"); got != 2 {
		t.Errorf("payments committed at %d, want the app's 2", got)
	}
	st := c.Stats()
	for _, p := range st.Partitions {
		if p.Topic != topic {
			t.Errorf("the route reports %s/%d, a topic it does not consume", p.Topic, p.Partition)
		}
	}
}

// runningApp is the app in group: a member consuming topics with the range
// assignor, which has read n records and committed commits (with the leader
// epochs they carry, as the Java client does). It stays in the group until
// the test closes it.
func runningApp(t *testing.T, addrs []string, group string, topics []string, n int,
	commits map[string]map[int32]kgo.EpochOffset) *kgo.Client {
	t.Helper()
	app, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topics...),
		kgo.Balancers(kgo.RangeBalancer()), kgo.DisableAutoCommit(), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	pctx, pcancel := context.WithTimeout(t.Context(), patience)
	defer pcancel()
	for read := 0; read < n && pctx.Err() == nil; {
		read += app.PollFetches(pctx).NumRecords()
	}
	var commitErr error
	app.CommitOffsetsSync(t.Context(), commits,
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
		})
	if commitErr != nil {
		t.Fatal(commitErr)
	}
	return app
}

// runStoppable runs a consumer of route delivering straight to tg, and
// returns it with stop, which ends its run as SIGTERM does (drain, commit,
// leave) and fails the test when Run returns an error.
func runStoppable(t *testing.T, addrs []string, route config.Route, tg target.Target, sc *sarama.Config) (*Consumer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: tg, ShutdownTimeout: 5 * time.Second})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return c, func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
