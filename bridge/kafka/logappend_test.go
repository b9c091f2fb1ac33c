package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// timeRecorder is a target that keeps the timestamp of every record.
type timeRecorder struct {
	mu    sync.Mutex
	times []time.Time
}

func (r *timeRecorder) Deliver(_ context.Context, d *target.Delivery) (*target.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, d.Record.Timestamp)
	return nil, nil
}

func (r *timeRecorder) seen() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times...)
}

// On a topic with message.timestamp.type=LogAppendTime the broker replaces
// the producer's timestamp with the time it appended the batch: that is the
// record's timestamp (ce-time, hookbridge-error-timestamp), not the one
// the producer set.
func TestRealKafkaLogAppendTime(t *testing.T) {
	addrs := realBroker(t)
	topic := fmt.Sprintf("logappend-%d", rand.IntN(1e6))
	a, err := sarama.NewClusterAdmin(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	logAppend := "LogAppendTime"
	if err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"message.timestamp.type": &logAppend}}, false); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Minute)
	p, err := sarama.NewSyncProducer(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("v"), Timestamp: created}); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	rec := &timeRecorder{}
	route := testRoute(topic, topic)
	c, _ := runRoute(t, addrs, route, rec, &deadLetters{})
	waitFor(t, "the record delivered", func() bool { return len(rec.seen()) == 1 }, func() string { return describe(c, topic) })
	if got := rec.seen()[0]; got.Before(before) {
		t.Errorf("record timestamp %s, want the broker's append time (after %s), not the producer's %s", got, before, created)
	}
}
