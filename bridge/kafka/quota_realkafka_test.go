package kafka

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// TestRealKafkaConsumerQuota: a route whose client id has a consumer quota
// (consumer_byte_rate) far below the topic's backlog. The broker answers its
// fetches at once with a throttle time of up to several seconds (KIP-219),
// which sarama waits out before its next request on that connection. The
// route must stay in its group while it catches up at the quota's pace:
// one join, every record delivered once, committed to the end. Before the
// group's coordinator had connections of its own, heartbeats waited behind
// the throttled fetches: the session expired and the route rebalanced again
// and again, delivering next to nothing. The route says that it is throttled.
func TestRealKafkaConsumerQuota(t *testing.T) {
	const (
		partitions = 4
		perPart    = 192
		recSize    = 1 << 10
		rate       = 8 << 10 // bytes per second
	)
	addrs := realBroker(t)
	topic := createRealTopic(t, addrs, partitions, 64<<10)
	clientID := fmt.Sprintf("quota-test-%d", rand.IntN(1e6))
	setConsumerQuota(t, addrs, clientID, rate)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(16<<10)) // small batches: the broker bounds a fetch's size by the quota
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := range int32(partitions) {
		for i := range perPart {
			v := fmt.Sprintf("%d/%d/", p, i)
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v + strings.Repeat("x", recSize-len(v)))})
		}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: clientID,
		SessionTimeout: config.Duration(6 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	d := &deliveries{by: make(map[string]string)}
	var log lockedLog
	route := config.Route{Name: topic, Topics: []string{topic}, Ordering: config.OrderingPartition, Concurrency: 4,
		MaxInFlightBytes: 64 << 20}
	_, _ = runReplica(t, addrs, route, d.target("r"), sc, slog.New(slog.NewJSONHandler(&log, nil)))

	delivered := func() int {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.by)
	}
	joins := func() int { return strings.Count(log.String(), `"msg":"joined group"`) }
	// A hang guard: at the quota's pace the backlog takes about
	// partitions*perPart*recSize/rate seconds; the broker lets more through.
	deadline := time.Now().Add(2 * partitions * perPart * recSize / rate * time.Second)
	for delivered() < partitions*perPart && joins() <= 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := joins(); n != 1 {
		t.Errorf("the route joined its group %d times, want once (no rebalance); delivered %d of %d records; log:\n%s",
			n, delivered(), partitions*perPart, lastLines(log.String(), 10))
	}
	if n := delivered(); n != partitions*perPart {
		t.Fatalf("delivered %d of %d records", n, partitions*perPart)
	}
	// The operator learns why the route reads slowly.
	if !strings.Contains(log.String(), `"msg":"broker throttles this client (client quota)"`) {
		t.Errorf("no line says that the broker throttles the route; log:\n%s", lastLines(log.String(), 10))
	}
	admin := newAdmin(t, addrs)
	waitFor(t, "offsets committed to the end", func() bool {
		for p := range int32(partitions) {
			if committedOf(t, admin, route.GroupID(), topic, p) != perPart {
				return false
			}
		}
		return true
	}, func() string { return "" })
}

// setConsumerQuota sets consumer_byte_rate for clientID on the broker until
// the test ends.
func setConsumerQuota(t *testing.T, addrs []string, clientID string, rate float64) {
	t.Helper()
	a, err := sarama.NewClusterAdmin(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	entity := []sarama.QuotaEntityComponent{{EntityType: sarama.QuotaEntityClientID, MatchType: sarama.QuotaMatchExact, Name: clientID}}
	if err := a.AlterClientQuotas(entity, sarama.ClientQuotasOp{Key: "consumer_byte_rate", Value: rate}, false); err != nil {
		_ = a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer a.Close()
		if err := a.AlterClientQuotas(entity, sarama.ClientQuotasOp{Key: "consumer_byte_rate", Remove: true}, false); err != nil {
			t.Errorf("remove the quota of %s: %v", clientID, err)
		}
	})
	// The broker applies the quota once it reads it from the metadata log;
	// a route that fetched before that read the whole backlog unthrottled,
	// and the test checked nothing. The broker answers DescribeClientQuotas
	// from the quotas it applies.
	filter := []sarama.QuotaFilterComponent{{EntityType: sarama.QuotaEntityClientID, MatchType: sarama.QuotaMatchExact, Match: clientID}}
	waitFor(t, "the broker to apply the quota of "+clientID, func() bool {
		entries, err := a.DescribeClientQuotas(filter, true)
		return err == nil && len(entries) == 1 && entries[0].Values["consumer_byte_rate"] == rate
	}, func() string { return "" })
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
