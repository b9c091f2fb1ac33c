package scenario

import (
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// Scale-out: three bridges share one group over 12 partitions. Mid-stream one
// is killed with SIGKILL, a fourth joins, and another is stopped with
// SIGTERM. Every record is delivered, first deliveries keep per-key order,
// and the duplicates (records in flight at the kill or delivered in its
// last second, before a commit; or in flight on a partition a rebalance
// moved) are counted and reported. 100,000 records against a real
// broker; 20,000 against the in-process one.
func TestScaleOutKillJoinStop(t *testing.T) {
	b := newBroker(t)
	n := 20000
	if b.Real {
		n = 100000
	}
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 12)
	rcv := newReceiver(t, func(d delivery, i int) int { time.Sleep(200 * time.Microsecond); return 200 })
	spec := routeSpec{Topic: topic, Group: group, URL: rcv.url(), Concurrency: 16}
	start := func() *testkit.Bridge {
		return startBridge(t, b.config(t, spec))
	}
	p1, p2, p3 := start(), start(), start()

	recs := keyed(n, 1000)
	produced := b.produce(t, topic, recs) // the bridges consume while it runs

	waitFor(t, 3*time.Minute, "a quarter delivered", func() bool { return rcv.uniqueAccepted() >= n/4 })
	p1.Kill()
	t.Logf("SIGKILL of instance 1 after %d delivered", rcv.uniqueAccepted())
	waitFor(t, 3*time.Minute, "half delivered", func() bool { return rcv.uniqueAccepted() >= n/2 })
	p4 := start()
	t.Logf("instance 4 joined after %d delivered", rcv.uniqueAccepted())
	waitFor(t, 3*time.Minute, "three quarters delivered", func() bool { return rcv.uniqueAccepted() >= 3*n/4 })
	if code := p2.Stop(); code != 0 {
		t.Fatalf("instance 2 exit code %d after SIGTERM", code)
	}
	t.Logf("SIGTERM of instance 2 after %d delivered", rcv.uniqueAccepted())
	waitFor(t, 5*time.Minute, "every record", func() bool { return rcv.uniqueAccepted() >= n })
	for i, p := range []*testkit.Bridge{p3, p4} {
		if code := p.Stop(); code != 0 {
			t.Fatalf("instance %d exit code %d", i+3, code)
		}
	}
	dup := checkDelivered(t, rcv, recs)
	t.Logf("scale-out with %d records over 12 partitions: every record delivered, %d duplicate deliveries (%.2f%%)",
		n, dup, 100*float64(dup)/float64(n))
	end := map[int32]int64{}
	for _, m := range produced {
		end[m.Partition] = max(end[m.Partition], m.Offset+1)
	}
	got := b.Committed(t, group, topic, 12)
	for p, want := range end {
		if got[p] != want {
			t.Fatalf("partition %d committed at %d, want %d", p, got[p], want)
		}
	}
}
