package kafka

import (
	"slices"
	"testing"

	"github.com/IBM/sarama"
)

// The records of a transaction still open are not delivered yet, but they
// are coming: until its producer commits, they (and every record written
// after them) are lag, as kafka-consumer-groups counts it from the
// committed offset. A partition that holds nothing else must not report a
// lag of 0 for them, which would hide a transaction left open (a hung
// producer) from an alert on hookbridge_consumer_lag. Once it commits,
// every record is delivered and the commit reaches the partition's end.
func TestConsumerLagCountsOpenTransaction(t *testing.T) {
	const topic = "txn-open"
	addrs := startCluster(t, topic).ListenAddrs()
	produce(t, addrs, topic, "k", "plain") // 0
	c, rec, waitCommitted := tailRoute(t, addrs, topic)
	waitCommitted(1)

	p := openTxn(t, addrs, topic, "tx-open", "open-0", "open-1", "open-2") // 1-3, open
	part := func() *partition {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.parts[topicPartition{topic, 0}]
	}
	waitFor(t, "the latest offset 4", func() bool { pt := part(); return pt != nil && pt.latest.Load() == 4 },
		func() string { return describe(c, topic) })
	// One more look at the partition's tail, as watchOffsets takes every
	// few seconds: the open transaction's records are still to come.
	client, err := sarama.NewClient(addrs, groupConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c.checkEmptyTails(client, c.owned())
	if ps, _ := partitionStats(c, topic); ps.Lag != 3 {
		t.Errorf("lag %d while a transaction holds 3 records not delivered yet, want 3", ps.Lag)
	}

	if err := p.CommitTxn(); err != nil { // commit marker 4
		t.Fatal(err)
	}
	waitCommitted(5)
	waitForLag(t, c, topic, 0)
	if got, want := rec.seen(), []string{"plain", "open-0", "open-1", "open-2"}; !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}
