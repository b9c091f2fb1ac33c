package kafka

import (
	"fmt"
	"slices"
	"testing"
)

// tailRoute runs a route of topic that records what it delivers, once its
// partition is claimed.
func tailRoute(t *testing.T, addrs []string, topic string) (*Consumer, *valueRecorder, func(want int64)) {
	t.Helper()
	route := testRoute(topic, topic)
	rec := &valueRecorder{}
	c, _ := runRoute(t, addrs, route, rec, &deadLetters{})
	admin := newAdmin(t, addrs)
	waitFor(t, "the partition's claim", func() bool { _, owned := partitionStats(c, topic); return owned },
		func() string { return describe(c, topic) })
	// waitCommitted waits until the group's committed offset is want.
	waitCommitted := func(want int64) {
		t.Helper()
		waitFor(t, fmt.Sprintf("offset %d committed", want), func() bool { return committed(t, admin, route.GroupID(), topic) == want },
			func() string {
				return fmt.Sprintf("committed %d; delivered %q; %s", committed(t, admin, route.GroupID(), topic), rec.seen(), describe(c, topic))
			})
	}
	return c, rec, waitCommitted
}

// A partition whose last offsets hold only transaction markers and the
// records of an aborted transaction has nothing left to deliver once the
// records before them are done. The group's committed offset must reach the
// partition's end, as a Java read_committed consumer's does: lag tools and
// KEDA read the lag from the committed offset, and one or two offsets short
// for good (every transactional producer leaves a marker last) is a lag
// that never clears and a deployment that never scales to zero.
func TestConsumerCommitsPastTransactionTail(t *testing.T) {
	const topic = "txn-tail"
	addrs := startCluster(t, topic).ListenAddrs()
	produceTxn(t, addrs, topic, "tx-a", false, "committed-0", "committed-1") // 0-1, commit marker 2
	produceTxn(t, addrs, topic, "tx-b", true, "aborted-0")                   // 3, abort marker 4
	c, rec, waitCommitted := tailRoute(t, addrs, topic)
	waitCommitted(5) // the partition's end
	waitForLag(t, c, topic, 0)
	if got, want := rec.seen(), []string{"committed-0", "committed-1"}; !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

// A group whose committed offset lies before a transaction's markers (left
// so by a bridge that committed only up to its last record) starts its
// claim there and receives nothing: its lag is 0, not the count of the
// markers for good, and the commit moves on to the end.
func TestConsumerLagFromCommittedBeforeMarkers(t *testing.T) {
	const topic = "txn-restart"
	addrs := startCluster(t, topic).ListenAddrs()
	produceTxn(t, addrs, topic, "tx-a", false, "committed-0", "committed-1") // 0-1, commit marker 2
	produceTxn(t, addrs, topic, "tx-b", true, "aborted-0")                   // 3, abort marker 4
	route := testRoute("txn-restart", topic)
	commitOffset(t, addrs, route.GroupID(), topic, 2)
	rec := &valueRecorder{}
	c, _ := runRoute(t, addrs, route, rec, &deadLetters{})
	admin := newAdmin(t, addrs)
	waitFor(t, "the latest offset 5", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		p := c.parts[topicPartition{topic, 0}]
		return p != nil && p.latest.Load() == 5
	}, func() string { return describe(c, topic) })
	waitForLag(t, c, topic, 0)
	waitFor(t, "offset 5 committed", func() bool { return committed(t, admin, route.GroupID(), topic) == 5 },
		func() string {
			return fmt.Sprintf("committed %d; %s", committed(t, admin, route.GroupID(), topic), describe(c, topic))
		})
	if got := rec.seen(); len(got) != 0 {
		t.Errorf("delivered %q, want nothing: the records before offset 2 were committed", got)
	}
}

// A transaction that aborts after writing many records (a batch job that
// failed) leaves a tail of them that no consumer receives: the lag is 0
// once the records before them are done, and the commit reaches the end,
// however long the aborted tail is.
func TestConsumerCommitsPastLongAbortedTail(t *testing.T) {
	const topic = "txn-long-abort"
	addrs := startCluster(t, topic).ListenAddrs()
	produce(t, addrs, topic, "k", "plain") // 0
	aborted := make([]string, 50)
	for i := range aborted {
		aborted[i] = fmt.Sprintf("aborted-%d", i)
	}
	produceTxn(t, addrs, topic, "tx-a", true, aborted...) // 1-50, abort marker 51
	c, rec, waitCommitted := tailRoute(t, addrs, topic)
	waitCommitted(52) // the partition's end
	waitForLag(t, c, topic, 0)
	if got, want := rec.seen(), []string{"plain"}; !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

// TestConsumerCommitsPastTransactionTail against Apache Kafka, whose
// transaction markers and last stable offset kfake only imitates: a
// partition ending in a committed transaction's marker, then in an aborted
// transaction, commits to its end, and nothing aborted is delivered.
func TestRealKafkaCommitsPastTransactionTail(t *testing.T) {
	addrs := realBroker(t)
	topic := createRealTopic(t, addrs, 1, 1<<10)
	produceTxn(t, addrs, topic, topic+"-a", false, "committed-0", "committed-1") // 0-1, commit marker 2
	c, rec, waitCommitted := tailRoute(t, addrs, topic)
	waitCommitted(3)
	produceTxn(t, addrs, topic, topic+"-b", true, "aborted-0", "aborted-1") // 3-4, abort marker 5
	waitCommitted(6)
	waitForLag(t, c, topic, 0)
	if got, want := rec.seen(), []string{"committed-0", "committed-1"}; !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}
