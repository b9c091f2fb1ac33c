package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// A cluster of three brokers whose partition leaders and group coordinator
// move again and again while records flow, some of them dead-lettered:
// every record is delivered or dead-lettered, the group commits the end of
// every partition, and the dead-letter topic holds each failed record.
func TestLeadersAndCoordinatorMoveWhileRecordsFlow(t *testing.T) {
	const topic, dlq, parts, perPart = "orders", "dead-letters", 3, 1000
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(parts, topic), kfake.SeedTopics(3, dlq))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addrs := cluster.ListenAddrs()

	var mu sync.Mutex
	delivered := map[string]int{}
	tg := target.Func(func(_ context.Context, d *target.Delivery) (*target.Result, error) {
		v := string(d.Record.Value)
		if strings.HasPrefix(v, "bad") {
			return nil, target.NewPermanent(errors.New("receiver: 422"))
		}
		time.Sleep(5 * time.Millisecond) // a receiver's work: keeps records in flight while leaders move
		mu.Lock()
		delivered[v]++
		mu.Unlock()
		return &target.Result{}, nil
	})
	prod, pclient := newProducerOn(t, addrs, mustConfig(t))
	route := testRoute("failover", topic)
	route.Concurrency = 8
	c, _ := runRoute(t, addrs, route, tg, prod)

	stop := make(chan struct{})
	var churned atomic.Int64
	var churn sync.WaitGroup
	churn.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(churnEvery):
			}
			cluster.ShufflePartitionLeaders()
			if churned.Add(1)%2 == 0 {
				cluster.RehashCoordinators()
			}
		}
	})
	var want, wantBad []string
	for p := range int32(parts) {
		for i := 0; i < perPart; i += 20 {
			var kvs []string
			for j := i; j < i+20; j++ {
				v := fmt.Sprintf("ok-%d-%d", p, j)
				if j%25 == 0 {
					v = fmt.Sprintf("bad-%d-%d", p, j)
					wantBad = append(wantBad, v)
				} else {
					want = append(want, v)
				}
				kvs = append(kvs, fmt.Sprintf("k%d", j%7), v)
			}
			produceRetrying(t, addrs, topic, p, kvs...)
		}
	}
	admin := newAdmin(t, addrs)
	allCommitted := func() bool {
		for p := range int32(parts) {
			if committedOf(t, admin, route.GroupID(), topic, p) < perPart {
				return false
			}
		}
		return true
	}
	waitFor(t, "every record delivered and committed", func() bool {
		mu.Lock()
		n := len(delivered)
		mu.Unlock()
		return n == len(want) && allCommitted()
	}, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("delivered %d of %d; Ready() = %v", len(delivered), len(want), c.Ready())
	})
	close(stop)
	churn.Wait()
	dups := 0
	mu.Lock()
	for _, n := range delivered {
		dups += n - 1
	}
	mu.Unlock()
	t.Logf("leader moves: %d, duplicate deliveries: %d", churned.Load(), dups)
	got := readAllValues(t, pclient, dlq)
	for _, v := range wantBad {
		if got[v] == 0 {
			t.Errorf("dead letter %s missing", v)
		}
	}
	if len(got) != len(wantBad) {
		t.Errorf("dead-letter topic holds %d distinct records, want %d", len(got), len(wantBad))
	}
}

var churnEvery = 500 * time.Millisecond

func mustConfig(t *testing.T) *sarama.Config {
	t.Helper()
	return groupConfig(t)
}

// produceRetrying is produceTo, retried while leaders move.
func produceRetrying(t *testing.T, addrs []string, topic string, partition int32, kvs ...string) {
	t.Helper()
	sc := plainConfig()
	sc.Producer.Retry.Max = 50
	sc.Producer.Retry.Backoff = 20 * time.Millisecond
	produceWith(t, sc, addrs, topic, partition, kvs...)
}

// readAllValues counts the values of every record topic holds.
func readAllValues(t *testing.T, client sarama.Client, topic string) map[string]int {
	t.Helper()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	out := map[string]int{}
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			out[string(m.Value)]++
			if m.Offset+1 >= end {
				break
			}
		}
		pc.Close()
	}
	return out
}
