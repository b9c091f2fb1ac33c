package scenario

import (
	"testing"
	"time"
)

// A route whose receiver is slower than the topic fills its budget: its
// partitions wait in line for room, pause while they wait, and resume; every
// record is still delivered once, in order per key, and committed.
func TestBackpressurePausesAndLosesNothing(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	// One request at a time (the receiver holds its lock while it sleeps),
	// 20 ms each; the route holds about 20 records (4 KiB), so six claim
	// loops wait for room far longer than the 50 ms that pauses a partition.
	rcv := newReceiver(t, func(delivery, int) int {
		time.Sleep(20 * time.Millisecond)
		return 200
	})
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url(),
		Concurrency: 4, Extra: "    max_in_flight_bytes: 4KiB\n"}))

	recs := keyed(240, 12)
	produced := b.produce(t, topic, recs)
	maxPaused := 0.0
	waitFor(t, 3*time.Minute, "every record delivered", func() bool {
		maxPaused = max(maxPaused, metricSum(t, p.Admin(), "hookbridge_partitions_paused"))
		return rcv.uniqueAccepted() >= len(recs)
	})
	if maxPaused == 0 {
		t.Fatal("no partition was ever paused: the route never ran out of room")
	}
	waitFor(t, time.Minute, "no partition paused once drained", func() bool {
		return metricSum(t, p.Admin(), "hookbridge_partitions_paused") == 0
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if dup := checkDelivered(t, rcv, recs); dup != 0 {
		t.Fatalf("%d duplicate deliveries", dup)
	}
	assertCommittedToEnd(t, b, group, topic, produced)
	t.Logf("up to %.0f partitions paused at once", maxPaused)
}
