package scenario

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// The migration docs/operations.md describes ("Taking over an application's
// consumer group"), on the broker of the run (the real Kafka in make e2e):
// an application consumes in its group with range assignment and commits
// with leader epochs, as the Java client and librdkafka do; the bridge,
// started with `group:` set to it while the application still runs, cannot
// join and says why, delivering nothing; once the application stops, the
// bridge joins without a restart, delivers exactly what the application had
// not committed, and commits plain offsets (no epoch); rolled back, the
// application resumes where the bridge stopped.
func TestTakeoverOfAnApplicationsGroup(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "orders"), topicName(t, "orders-api")
	const partitions = 3
	b.CreateTopic(t, topic, partitions)
	produced := b.produce(t, topic, keyed(60, 12))

	// The application reads everything and commits half of each partition.
	app := newApp(t, b.Addrs, group, topic)
	ends := map[int32]int64{}
	for _, m := range produced {
		ends[m.Partition] = max(ends[m.Partition], m.Offset+1)
	}
	appConsume(t, app, len(produced))
	commits := map[int32]int64{}
	toCommit := map[string]map[int32]kgo.EpochOffset{topic: {}}
	for p, end := range ends {
		commits[p] = end / 2
		toCommit[topic][p] = kgo.EpochOffset{Epoch: 0, Offset: end / 2}
	}
	var commitErr error
	app.CommitOffsetsSync(t.Context(), toCommit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
	})
	if commitErr != nil {
		t.Fatalf("the application's commit: %v", commitErr)
	}

	rcv := newReceiver(t, nil)
	bridge := testkit.LaunchBridge(t, bridgeBin, b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url()}))
	waitFor(t, 60*time.Second, "the bridge to say why it cannot join", func() bool {
		err := bridge.Ready()
		return err != nil && strings.Contains(err.Error(), "an application whose group this route takes over")
	})
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("%d requests while the application owns the group, want none", n)
	}

	app.Close() // the application stops: it leaves the group
	var want []string
	for _, m := range produced {
		if m.Offset >= commits[m.Partition] {
			want = append(want, fmt.Sprintf("%s-%d-%d", topic, m.Partition, m.Offset))
		}
	}
	slices.Sort(want)
	waitFor(t, 60*time.Second, "what the application had not committed", func() bool { return len(uniqueIDs(rcv)) >= len(want) })
	if got := uniqueIDs(rcv); !slices.Equal(got, want) {
		t.Errorf("delivered %v,\nwant exactly the records from the application's offsets on: %v", got, want)
	}
	if code := bridge.Stop(); code != 0 {
		t.Fatalf("hookbridge exited with %d", code)
	}
	for p, end := range ends {
		off, epoch := committedWithEpoch(t, b.Addrs, group, topic, p)
		if off != end || epoch != -1 {
			t.Errorf("partition %d: the bridge left offset %d at leader epoch %d, want %d without an epoch (-1)", p, off, epoch, end)
		}
	}

	// Rolled back: the application resumes where the bridge stopped.
	more := b.produce(t, topic, keyed(12, 12))
	app = newApp(t, b.Addrs, group, topic)
	got := appConsume(t, app, len(more))
	for _, m := range got {
		if m.Offset < ends[m.Partition] {
			t.Errorf("the application, rolled back, read %d/%d again (the bridge committed %d)", m.Partition, m.Offset, ends[m.Partition])
		}
	}
}

// newApp is the application's consumer: a member of group with the range
// assignor, committing by hand.
func newApp(t *testing.T, addrs []string, group, topic string) *kgo.Client {
	t.Helper()
	app, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.RangeBalancer()), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	return app
}

// appConsume polls app until it read n records, and returns them.
func appConsume(t *testing.T, app *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := app.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the application read %d records, want %d", len(got), n)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

// committedWithEpoch is group's committed offset of topic's partition p and
// the leader epoch committed with it.
func committedWithEpoch(t *testing.T, addrs []string, group, topic string, p int32) (int64, int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{p}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("offset fetch of %s/%d: %+v", topic, p, resp)
	}
	rp := resp.Topics[0].Partitions[0]
	return rp.Offset, rp.LeaderEpoch
}

// uniqueIDs returns the webhook-ids rcv accepted, each once, sorted.
func uniqueIDs(rcv *receiver) []string {
	var ids []string
	for _, d := range rcv.accepted() {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
