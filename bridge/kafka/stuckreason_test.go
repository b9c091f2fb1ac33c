package kafka

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// missingTopic is a reply producer whose every write fails as a write to a
// topic that does not exist does.
type missingTopic struct{}

func (missingTopic) Produce(context.Context, []target.Output) error {
	return errors.New("kafka: produce to typo: topic does not exist")
}

// A record delivered by a handler whose output names a topic that does not
// exist holds its partition while the reply write is retried. /readyz names
// it, and must not say it cannot be dead-lettered: nothing failed, and the
// dead-letter topic is fine.
func TestConsumerStuckOnReplyDoesNotBlameDeadLetters(t *testing.T) {
	const topic = "orders"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	route := testRoute("stuck-reply", topic)
	produce(t, addrs, topic, "a", "first")
	replies := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return &target.Result{Outputs: []target.Output{{Topic: "typo", Value: []byte("out")}}}, nil
	})
	ev := &stuckEvents{}
	chain := target.Chain(replies,
		dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: route.Name, Group: route.GroupID(),
			Topic: "dead-letters", Backoff: 100 * time.Millisecond}, &deadLetters{}, ev),
		dispatch.Reply("", missingTopic{}, ev, 100*time.Millisecond),
	)
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: groupConfig(t), Target: chain,
		Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
	ev.consumer = c
	startRun(t, c, patience)

	waitFor(t, "the record to be reported stuck", func() bool { return ev.sawStuck(0) },
		func() string { return ev.String() + "; " + describe(c, topic) })
	err := c.Ready()
	if err == nil || !strings.Contains(err.Error(), "offset 0") {
		t.Fatalf("with the reply write failing, Ready() = %v, want an error naming offset 0", err)
	}
	if strings.Contains(err.Error(), "cannot be dead-lettered") {
		t.Errorf("with the reply write failing, Ready() = %q, which blames the dead-letter topic", err)
	}
}
