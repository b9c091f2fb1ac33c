package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// Every route of a process shares one producer for its dead letters and
// replies, and sarama hands every record, whatever its topic, through one
// goroutine into a channel per topic and one per partition. A topic without
// a leader drains its channels a few records a second: once more of its
// records were in flight than those channels hold, that goroutine waited on
// it, and a dead letter for a healthy topic waited behind the whole backlog
// (tens of seconds a write, for as long as the other topic had no leader),
// holding its route's partition. The producer now lets only so many records
// of one topic into sarama at once; the others wait for room on their own
// context, and a healthy topic's writes go through.
func TestProduceToAHealthyTopicWhileAnotherHasNoLeader(t *testing.T) {
	const leaderless, healthy = "a.dlq", "b.dlq"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(1, leaderless, healthy))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	if err := cluster.MoveTopicPartition(leaderless, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := cluster.MoveTopicPartition(healthy, 0, 0); err != nil {
		t.Fatal(err)
	}
	addrs := cluster.ListenAddrs()
	// The bridge's own settings: the bound depends on its channel sizes,
	// and the retry budget is what a healthy write is given below.
	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	// Leaderless as Kafka says it: the partition, not the topic, has no
	// leader, so the producer keeps partitioning records to it, and its
	// partition producer, finding no leader, fails them one every
	// Retry.Backoff. From before the producer starts: one that knew the
	// leader first fails the records it had sent in bulk, through its
	// retries, and reaches that state only later, at a time that varies.
	fault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata, kmsg.Produce}, Topic: leaderless, Partitions: []int32{0},
		Err: kerr.LeaderNotAvailable, Count: -1})
	p, client := newProducerOn(t, addrs, sc)
	if err := p.Produce(t.Context(), []target.Output{{Topic: healthy, Value: []byte("warm")}}); err != nil {
		t.Fatal(err)
	}
	before := fault.Hits()

	// More writers of the leaderless topic than sarama's two channels of it
	// hold, each retrying until its record is acknowledged, as a route's
	// dead-letter layer does.
	writers := 3 * sc.ChannelBufferSize
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var written, started atomic.Int64
	t.Cleanup(func() {
		// Before the producer closes (cleanups run last in, first out),
		// which waits for the sends in flight.
		fault.Remove()
		cancel()
		wg.Wait()
	})
	for i := range writers {
		wg.Go(func() {
			rec := target.Output{Topic: leaderless, Key: []byte(strconv.Itoa(i)), Value: []byte("a-" + strconv.Itoa(i))}
			started.Add(1)
			if writeUntilAcknowledged(ctx, p, rec) {
				written.Add(1)
			}
		})
	}
	waitFor(t, "the producer to meet the leaderless topic", func() bool { return started.Load() == int64(writers) && fault.Hits() > before },
		func() string { return fmt.Sprintf("%d requests faulted", fault.Hits()) })

	// A write's context of a few times what sarama takes to give up on a
	// record: a write that has not been answered by then waits for
	// something other than its own topic.
	patienceOfAWrite := 3 * retryBudget(sc)
	const healthyWrites = 3
	for j := range healthyWrites {
		wctx, wcancel := context.WithTimeout(t.Context(), patienceOfAWrite)
		err := p.Produce(wctx, []target.Output{{Topic: healthy, Value: []byte("b-" + strconv.Itoa(j))}})
		wcancel()
		if err != nil {
			t.Fatalf("write %d to %s, a healthy topic, failed while %s had no leader (%d of its writes waiting): %v",
				j, healthy, leaderless, int64(writers)-written.Load(), err)
		}
	}
	if n := written.Load(); n != 0 {
		t.Fatalf("%d writes to %s were acknowledged while it had no leader", n, leaderless)
	}

	fault.Remove()
	deadline := time.Now().Add(2 * time.Minute)
	for written.Load() < int64(writers) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes to %s acknowledged 2 minutes after it had a leader again", written.Load(), writers, leaderless)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Every write landed once: none lost, none written twice.
	var want []string
	for i := range writers {
		want = append(want, "a-"+strconv.Itoa(i))
	}
	checkWrittenOnce(t, client, leaderless, want)
	checkWrittenOnce(t, client, healthy, []string{"warm", "b-0", "b-1", "b-2"})
}

// writeUntilAcknowledged produces rec until the producer acknowledges it,
// waiting a little longer after each failure, and reports whether it did
// before ctx ended.
func writeUntilAcknowledged(ctx context.Context, p *Producer, rec target.Output) bool {
	wait := 100 * time.Millisecond
	for {
		if p.Produce(ctx, []target.Output{rec}) == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// retryBudget is about the longest sarama tries to write a record before it
// gives up on it: its produce retries, and a metadata refresh with its own.
func retryBudget(sc *sarama.Config) time.Duration {
	return time.Duration(sc.Producer.Retry.Max+1)*sc.Producer.Retry.Backoff +
		time.Duration(sc.Metadata.Retry.Max+1)*sc.Metadata.Retry.Backoff
}

// checkWrittenOnce fails the test unless topic's only partition holds each
// value of want exactly once, and nothing else.
func checkWrittenOnce(t *testing.T, client sarama.Client, topic string, want []string) {
	t.Helper()
	seen := make(map[string]int)
	for _, v := range readValues(t, client, topic) {
		seen[v]++
	}
	for _, v := range want {
		if seen[v] != 1 {
			t.Errorf("%s: %q written %d times, want once", topic, v, seen[v])
		}
	}
	for v, n := range seen {
		if !slices.Contains(want, v) {
			t.Errorf("%s: %q written %d times, want none", topic, v, n)
		}
	}
}

// A call with more records of one topic than the producer lets into sarama
// at once sends them in chunks, one after another: every record is written
// once, in its order, and the other topic's records of the call go too.
func TestProduceMoreRecordsOfATopicThanItsRoom(t *testing.T) {
	const many, few = "replies", "other"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, many, few))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	sc.ChannelBufferSize = 8
	p, client := newProducerOn(t, cluster.ListenAddrs(), sc)
	if p.roomSize >= 10 {
		t.Fatalf("room of %d records a topic: the call below fits in one chunk", p.roomSize)
	}
	var recs []target.Output
	var wantMany, wantFew []string
	for i := range 10 {
		v := "m-" + strconv.Itoa(i)
		recs = append(recs, target.Output{Topic: many, Key: []byte("k"), Value: []byte(v)})
		wantMany = append(wantMany, v)
		if i%4 == 0 {
			v := "f-" + strconv.Itoa(i)
			recs = append(recs, target.Output{Topic: few, Value: []byte(v)})
			wantFew = append(wantFew, v)
		}
	}
	if err := p.Produce(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if got := readValues(t, client, many); !slices.Equal(got, wantMany) {
		t.Errorf("%s holds %q, want %q", many, got, wantMany)
	}
	if got := readValues(t, client, few); !slices.Equal(got, wantFew) {
		t.Errorf("%s holds %q, want %q", few, got, wantFew)
	}
}

// readValues returns the values topic's only partition holds, in order.
func readValues(t *testing.T, client sarama.Client, topic string) []string {
	t.Helper()
	end, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var vs []string
	for next := int64(0); next < end; {
		select {
		case m := <-pc.Messages():
			vs = append(vs, string(m.Value))
			next = m.Offset + 1
		case <-time.After(patience):
			t.Fatalf("%s: read up to offset %d of %d", topic, next, end)
		}
	}
	return vs
}

// A record that waits for room when its context ends (a rebalance, a
// shutdown) was not written, and the call says so; a record of another
// topic does not wait for that room.
func TestProduceThatGetsNoRoomWritesNothing(t *testing.T) {
	const full, other = "full", "other"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, full, other))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	p, client := newTestProducer(t, cluster.ListenAddrs())
	// The room of the topic taken, as by records in flight that sarama has
	// not answered yet.
	tr := p.enterRoom(full)
	room := tr.sem
	if err := room.Acquire(t.Context(), int64(p.roomSize)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Produce(ctx, []target.Output{{Topic: full, Value: []byte("late")}}) }()
	if err := p.Produce(t.Context(), []target.Output{{Topic: other, Value: []byte("on time")}}); err != nil {
		t.Fatalf("a record of another topic waited for %s's room: %v", full, err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Produce with no room and its context ended = %v, want context.Canceled", err)
	}
	room.Release(int64(p.roomSize))
	p.leaveRoom(full, tr)
	if err := p.Produce(t.Context(), []target.Output{{Topic: full, Value: []byte("next")}}); err != nil {
		t.Fatal(err)
	}
	// A topic's room lasts as long as calls use it: a plugin writing to
	// topics of its own choosing does not grow the producer for good.
	p.mu.Lock()
	left := len(p.room)
	p.mu.Unlock()
	if left != 0 {
		t.Errorf("%d topics' room kept with no call using it", left)
	}
	if got := readValues(t, client, full); !slices.Equal(got, []string{"next"}) {
		t.Errorf("%s holds %q, want only the record written after the room came back", full, got)
	}
}
