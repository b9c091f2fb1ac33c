package kafka

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// A route whose topic does not exist when it starts (Hookbridge never
// creates topics) does not fail the bridge and does not consume in silence:
// it tries to join again and again, each failed try is a warning naming the
// topic, and Ready says why the route has not joined. It consumes nothing,
// not even its topics that exist, until the missing one is created; then it
// joins and delivers the records of all its topics.
func TestConsumerWaitsForItsTopicToExist(t *testing.T) {
	const there, missing = "there", "not-yet"
	addrs := startCluster(t, there).ListenAddrs()
	admin := newAdmin(t, addrs)
	produce(t, addrs, there, "k", "a")
	route := testRoute("waits", there)
	route.Topics = append(route.Topics, missing)
	tg := &partitionRecorder{}
	logs := &logBuffer{}
	sc := groupConfig(t)
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: tg,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), ShutdownTimeout: 5 * time.Second})
	startRun(t, c, patience)

	warning := `level=WARN msg="consume failed; rejoining" route=waits group=hookbridge.waits error="` + missing + `: ` +
		sarama.ErrUnknownTopicOrPartition.Error() + `"`
	waitFor(t, "two failed tries to join, each a warning naming the topic", func() bool {
		return strings.Count(logs.String(), warning) >= 2
	}, logs.String)
	err := c.Ready()
	if err == nil || !strings.Contains(err.Error(), "has not joined group hookbridge.waits: "+missing+": ") ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Ready() = %v, want it to say that the route has not joined because %s does not exist", err, missing)
	}
	// Consume failed before the group was joined: no partition was claimed.
	if got := tg.String(); got != "delivered map[]" {
		t.Errorf("%s before the missing topic exists, want nothing", got)
	}

	if err := admin.CreateTopic(missing, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	produce(t, addrs, missing, "k", "b")
	waitFor(t, "the records of both topics delivered", func() bool { return slices.Equal(tg.of(0), []int64{0, 0}) }, tg.String)
	waitFor(t, "the route ready", func() bool { return c.Ready() == nil }, func() string { return fmt.Sprint(c.Ready()) })
	for _, topic := range []string{there, missing} {
		waitFor(t, topic+" committed", func() bool { return committedOf(t, admin, route.GroupID(), topic, 0) == 1 },
			func() string { return fmt.Sprintf("committed %d", committedOf(t, admin, route.GroupID(), topic, 0)) })
	}
}

// The waits between failed tries to join double from 1 s up to rejoinMax,
// and a session that ended normally starts the count again.
func TestRejoinWait(t *testing.T) {
	failed := sarama.ErrUnknownTopicOrPartition
	var got []time.Duration
	w := time.Duration(0)
	for range 6 {
		w = rejoinWait(w, failed)
		got = append(got, w)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, rejoinMax, rejoinMax}
	if !slices.Equal(got, want) {
		t.Errorf("waits after failures %v, want %v", got, want)
	}
	if w := rejoinWait(w, nil); w != 0 {
		t.Errorf("wait after a session that ended normally: %v, want 0", w)
	}
	if w := rejoinWait(0, failed); w != time.Second {
		t.Errorf("first wait after the count started again: %v, want 1s", w)
	}
}
