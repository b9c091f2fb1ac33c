package kafka

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// A route whose brokers cannot be reached when it starts (a reload, or a
// start, during a broker restart) says why through Ready and its log, and
// tries again until they answer: then it joins and consumes. Before, its
// consumer returned at once and the route stayed silent, not ready and
// consuming nothing, until the bridge was restarted.
func TestConsumerConnectsOnceTheBrokersAnswer(t *testing.T) {
	const topic = "late"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close() // nothing listens there until the cluster starts
	addrs := []string{l.Addr().String()}

	var mu sync.Mutex
	var got []string
	tg := target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(d.Record.Value))
		return nil, nil
	})
	sc := groupConfig(t)
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 10 * time.Millisecond
	logs := &logBuffer{}
	c := NewConsumer(ConsumerOptions{Route: testRoute("late", topic), Brokers: addrs, Sarama: sc, Target: tg,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), ShutdownTimeout: 5 * time.Second})
	startRun(t, c, patience)
	waitFor(t, "Ready to say why the route has not joined", func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), "join group") && logs.contains("cannot connect to the brokers; retrying")
	}, func() string { return "Ready: " + errString(c.Ready()) })

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	produceTo(t, addrs, topic, 0, "k", "v")
	waitFor(t, "the record once the brokers answer", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0] == "v"
	}, func() string { return "Ready: " + errString(c.Ready()) })
	waitFor(t, "the route ready", func() bool { return c.Ready() == nil }, func() string { return errString(c.Ready()) })
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
