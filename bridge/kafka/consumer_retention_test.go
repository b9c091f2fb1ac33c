package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// fetchHold holds the broker's answer to one fetch of a partition until
// released, so that a test can move the partition's log start past the
// offset that fetch asks for: the broker then answers OFFSET_OUT_OF_RANGE,
// as it does when retention deletes records a consumer has not fetched yet.
type fetchHold struct {
	armed   atomic.Bool
	held    chan int64 // the offset the held fetch asks for
	release chan struct{}
}

// holdFetches installs the hold on cluster for partition of topic; next
// holds the next fetch of it.
func holdFetches(cluster *kfake.Cluster, topic string, partition int32) *fetchHold {
	h := &fetchHold{held: make(chan int64, 1), release: make(chan struct{})}
	cluster.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := kreq.(*kmsg.FetchRequest)
		for _, rt := range req.Topics {
			if rt.Topic != topic {
				continue
			}
			for _, rp := range rt.Partitions {
				if rp.Partition == partition && h.armed.CompareAndSwap(true, false) {
					h.held <- rp.FetchOffset
					cluster.SleepControl(func() { <-h.release })
				}
			}
		}
		return nil, nil, false
	})
	return h
}

// next arms the hold and returns the offset of the fetch it holds.
func (h *fetchHold) next(t *testing.T) int64 {
	t.Helper()
	h.armed.Store(true)
	select {
	case off := <-h.held:
		return off
	case <-time.After(patience):
		t.Fatal("no fetch of the partition to hold")
		return 0
	}
}

// retentionRig is the consumer of a route of topic, one partition, under
// the given balance strategy, on a cluster whose fetches of it the test can
// hold. Its shutdown timeout is short.
type retentionRig struct {
	cluster *kfake.Cluster
	addrs   []string
	admin   sarama.ClusterAdmin
	hold    *fetchHold
	route   config.Route
	c       *Consumer
	logs    *logBuffer
}

func newRetentionRig(t *testing.T, topic, balance string, tg target.Target) *retentionRig {
	t.Helper()
	r := &retentionRig{cluster: startCluster(t, topic), logs: &logBuffer{}, route: testRoute(topic, topic)}
	r.addrs = r.cluster.ListenAddrs()
	r.admin = newAdmin(t, r.addrs)
	r.hold = holdFetches(r.cluster, topic, 0)
	r.c = NewConsumer(ConsumerOptions{Route: r.route, Brokers: r.addrs, Sarama: groupConfigWith(t, config.Kafka{Balance: balance}),
		Target: tg, Logger: slog.New(slog.NewTextHandler(r.logs, nil)), ShutdownTimeout: time.Second})
	r.c.offsetsEvery = 100 * time.Millisecond
	return r
}

func (r *retentionRig) committed() int64 {
	return committedNow(r.admin, r.route.GroupID(), r.route.Topics[0])
}

// skipped is the warning that names the records the broker deleted before
// the consumer read them.
func skipped(topic string, from, to int64) string {
	return `level=WARN msg="records were deleted by the broker before they were read (retention or kafka-delete-records ` +
		`moved the partition's log start past them); they are skipped: the records read already are delivered, then the ` +
		`partition is read on from its oldest record" ` +
		fmt.Sprintf("route=%s group=hookbridge.%s topic=%s partition=0 from_offset=%d to_offset=%d", topic, topic, topic, from, to)
}

// Records deleted (retention, kafka-delete-records) past the consumer's
// fetch position while it runs: sarama answers the fetch's
// OFFSET_OUT_OF_RANGE by shutting the partition's consumer down for good,
// and closes the claim's messages while the session goes on. The claim
// returns, which ends the session (sarama), and the next session reads the
// partition on from its oldest record: what is produced after the deletion
// is delivered and committed, under either kind of rebalancing, and a
// warning names the offsets skipped. Before, the only line said sarama's
// "kafka consumer error", without the offsets lost.
func TestConsumerReadsOnAfterRecordsAreDeletedPastItsPosition(t *testing.T) {
	for _, balance := range []string{"sticky", "cooperative-sticky"} {
		t.Run(balance, func(t *testing.T) {
			t.Parallel()
			topic := "retention-" + balance
			tg := &offsetRecorder{}
			r := newRetentionRig(t, topic, balance, tg)
			startRun(t, r.c, patience)
			produce(t, r.addrs, topic, "k", "0", "k", "1", "k", "2")
			waitFor(t, "offsets 0 to 2 delivered", func() bool { return slices.Equal(tg.seen(), []int64{0, 1, 2}) },
				func() string { return fmt.Sprintf("delivered %v", tg.seen()) })
			if off := r.hold.next(t); off != 3 {
				t.Fatalf("held a fetch at %d, want 3", off)
			}
			produce(t, r.addrs, topic, "k", "3", "k", "4", "k", "5", "k", "6", "k", "7")
			if err := r.admin.DeleteRecords(topic, map[int32]int64{0: 6}); err != nil {
				t.Fatal(err)
			}
			close(r.hold.release) // the broker answers the fetch at 3: out of range
			produce(t, r.addrs, topic, "k", "8")
			want := []int64{0, 1, 2, 6, 7, 8}
			waitFor(t, "offsets 6 to 8 delivered", func() bool { return slices.Equal(tg.seen(), want) },
				func() string { return fmt.Sprintf("delivered %v; %s", tg.seen(), describe(r.c, topic)) })
			waitFor(t, "offset 9 committed", func() bool { return r.committed() == 9 },
				func() string { return fmt.Sprintf("committed %d", r.committed()) })
			produce(t, r.addrs, topic, "k", "9")
			waitFor(t, "offset 9 delivered", func() bool { return slices.Equal(tg.seen(), append(want, 9)) },
				func() string { return fmt.Sprintf("delivered %v; %s", tg.seen(), describe(r.c, topic)) })
			waitFor(t, "offset 10 committed", func() bool { return r.committed() == 10 },
				func() string { return fmt.Sprintf("committed %d", r.committed()) })
			if line := skipped(topic, 3, 5); !r.logs.contains(line) {
				t.Errorf("no log line %q; the log:\n%s", line, r.logs.String())
			}
		})
	}
}

// heldFrom is a target that delivers the records below from at once and
// holds the others until open is closed; a delivery whose context ends first
// fails without a terminal outcome.
type heldFrom struct {
	offsetRecorder
	from int64
	open chan struct{}
}

func (h *heldFrom) Deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	if d.Record.Offset >= h.from {
		select {
		case <-h.open:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return h.offsetRecorder.Deliver(ctx, d)
}

// The same while the consumer holds records it read and has not
// delivered (its target is down): sarama's consumer of the partition stops,
// yet those records were read before the deletion reached them. The claim
// delivers them once the target is back, and only then ends; the next
// session reads on from the oldest record left. Before, the claim ended at
// once as if revoked: the records it held were canceled, never delivered and
// never named, since the next session started past them.
func TestConsumerDeliversWhatItReadBeforeRecordsAreDeleted(t *testing.T) {
	for _, balance := range []string{"sticky", "cooperative-sticky"} {
		t.Run(balance, func(t *testing.T) {
			t.Parallel()
			topic := "retention-held-" + balance
			tg := &heldFrom{from: 3, open: make(chan struct{})}
			r := newRetentionRig(t, topic, balance, tg)
			startRun(t, r.c, patience)
			produce(t, r.addrs, topic, "k", "0", "k", "1", "k", "2")
			waitFor(t, "offsets 0 to 2 delivered", func() bool { return slices.Equal(tg.seen(), []int64{0, 1, 2}) },
				func() string { return fmt.Sprintf("delivered %v", tg.seen()) })
			produce(t, r.addrs, topic, "k", "3", "k", "4", "k", "5")
			waitFor(t, "offsets 3 to 5 held", func() bool { return r.c.Stats().InFlightRecords == 3 },
				func() string { return fmt.Sprintf("in flight %d", r.c.Stats().InFlightRecords) })
			if off := r.hold.next(t); off != 6 {
				t.Fatalf("held a fetch at %d, want 6", off)
			}
			produce(t, r.addrs, topic, "k", "6", "k", "7", "k", "8", "k", "9")
			if err := r.admin.DeleteRecords(topic, map[int32]int64{0: 8}); err != nil {
				t.Fatal(err)
			}
			close(r.hold.release)
			line := skipped(topic, 6, 7)
			waitFor(t, "the warning that offsets 6 and 7 are skipped", func() bool { return r.logs.contains(line) },
				func() string { return fmt.Sprintf("delivered %v; the log:\n%s", tg.seen(), r.logs.String()) })
			close(tg.open) // the target is back
			produce(t, r.addrs, topic, "k", "10")
			want := []int64{0, 1, 2, 3, 4, 5, 8, 9, 10}
			waitFor(t, "offsets 3 to 5 and 8 to 10 delivered", func() bool { return slices.Equal(tg.seen(), want) },
				func() string { return fmt.Sprintf("delivered %v; %s", tg.seen(), describe(r.c, topic)) })
			waitFor(t, "offset 11 committed", func() bool { return r.committed() == 11 },
				func() string { return fmt.Sprintf("committed %d", r.committed()) })
		})
	}
}

// A shutdown while the claim still holds records the broker deleted since
// it read them: the records in flight get the shutdown timeout, the others
// are not started, and none of them can be read again after the restart. A
// warning names them, after the one naming those the claim never read.
func TestConsumerNamesTheReadRecordsAShutdownLeavesUndelivered(t *testing.T) {
	for _, balance := range []string{"sticky", "cooperative-sticky"} {
		t.Run(balance, func(t *testing.T) {
			t.Parallel()
			topic := "retention-stop-" + balance
			tg := &heldFrom{from: 3, open: make(chan struct{})}
			r := newRetentionRig(t, topic, balance, tg)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- r.c.Run(ctx) }()

			produce(t, r.addrs, topic, "k", "0", "k", "1", "k", "2", "k", "3", "k", "4", "k", "5")
			waitFor(t, "offsets 0 to 2 delivered and 3 to 5 held", func() bool {
				return slices.Equal(tg.seen(), []int64{0, 1, 2}) && r.c.Stats().InFlightRecords == 3
			}, func() string {
				return fmt.Sprintf("delivered %v, in flight %d", tg.seen(), r.c.Stats().InFlightRecords)
			})
			if off := r.hold.next(t); off != 6 {
				t.Fatalf("held a fetch at %d, want 6", off)
			}
			produce(t, r.addrs, topic, "k", "6", "k", "7", "k", "8")
			if err := r.admin.DeleteRecords(topic, map[int32]int64{0: 8}); err != nil {
				t.Fatal(err)
			}
			close(r.hold.release)
			waitFor(t, "the warning that offsets 6 and 7 are skipped", func() bool { return r.logs.contains(skipped(topic, 6, 7)) },
				func() string { return "the log:\n" + r.logs.String() })

			cancel()
			select {
			case <-done:
			case <-time.After(patience):
				t.Fatal("Run did not return")
			}
			if got := tg.seen(); !slices.Equal(got, []int64{0, 1, 2}) {
				t.Errorf("delivered %v, want [0 1 2]: the target never accepted more", got)
			}
			line := `level=WARN msg="records read before the broker deleted them were not delivered before the claim ended; they are skipped" ` +
				fmt.Sprintf("route=%s group=hookbridge.%s topic=%s partition=0 from_offset=3 to_offset=5", topic, topic, topic)
			if !r.logs.contains(line) {
				t.Errorf("no log line %q; the log:\n%s", line, r.logs.String())
			}
		})
	}
}
