package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// duplicateKeys returns the keys that one JSON object line names more than
// once.
func duplicateKeys(line []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		if seen[key] {
			dups = append(dups, key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return dups, nil
}

// A route's log lines carry its route and group once. The lines a route
// logs when it cannot leave its group at shutdown (the brokers are down, as
// when a replica gets SIGTERM during a broker outage) named the group twice,
// "group":"x","group":"x": a JSON object with a duplicate key, which log
// stores that refuse such documents (Elasticsearch) drop, and those are the
// lines an operator reads after a failed drill.
func TestConsumerLogLinesNameTheirGroupOnce(t *testing.T) {
	const topic = "logkeys"
	cluster, ln := startBreakable(t, topic, 1)
	addrs := cluster.ListenAddrs()
	logs := &logBuffer{}
	tg := &deliveryCounter{}
	c := NewConsumer(ConsumerOptions{Route: testRoute(topic, topic), Brokers: addrs, Sarama: groupConfig(t), Target: tg,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), ShutdownTimeout: 2 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	produceN(t, addrs, topic, 5)
	state := func() string { return fmt.Sprintf("%d records delivered; %s", tg.distinct(), describe(c, topic)) }
	waitFor(t, "5 records delivered", func() bool { return tg.distinct() == 5 }, state)

	ln.refuse() // the broker goes away, then the replica is stopped
	cancel()
	select {
	case <-done:
	case <-time.After(2 * patience):
		t.Fatal("Run did not return")
	}
	if !logs.contains(`"msg":"leaving the consumer group"`) {
		t.Fatalf("no line says the group could not be left:\n%s", logs)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		dups, err := duplicateKeys([]byte(line))
		if err != nil && err != io.EOF {
			t.Fatalf("log line is not a JSON object: %v: %s", err, line)
		}
		if len(dups) > 0 {
			t.Errorf("log line names %v more than once: %s", dups, line)
		}
	}
}
