package kafka

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// Under cooperative rebalancing a member that joins a running group has no
// claim when its "joined group" line is written: its partitions come in a
// second step of the rebalance, and the members that give them up go on in
// the same session, with no line of their own either. A "claims changed"
// line then says, for each member, what it was given or gave up, and what
// it holds after.
func TestClaimsChangedLineUnderCooperativeRebalancing(t *testing.T) {
	const topic = "ledger"
	addrs := startClusterWith(t, topic, 4).ListenAddrs()
	route := testRoute("ledger", topic)
	first, firstLogs := runLoggedRoute(t, addrs, route, cooperativeConfig(t))
	waitFor(t, "the first member to own the 4 partitions", func() bool { return len(owned(first, topic)) == 4 },
		func() string { return describe(first, topic) })
	second, secondLogs := runLoggedRoute(t, addrs, route, cooperativeConfig(t))
	state := func() string {
		return fmt.Sprintf("first: %s\n%s\nsecond: %s\n%s", describe(first, topic), firstLogs, describe(second, topic), secondLogs)
	}
	waitFor(t, "each member to own 2 partitions, and a claims changed line of each to say so", func() bool {
		a, b := owned(first, topic), owned(second, topic)
		if len(a) != 2 || len(b) != 2 {
			return false
		}
		gave, ok := lastClaimsChanged(firstLogs)
		if !ok || !slices.Equal(gave.Revoked[topic], b) || !slices.Equal(gave.Claims[topic], a) || len(gave.Added) != 0 {
			return false
		}
		got, ok := lastClaimsChanged(secondLogs)
		if !ok || !slices.Equal(got.Claims[topic], b) || len(got.Revoked) != 0 {
			return false
		}
		// What the second member holds came with its join or after it.
		joined := joinedClaims(t, secondLogs)
		return slices.Equal(sortedUnion(joined[topic], got.Added[topic]), b)
	}, state)
	if n := strings.Count(firstLogs.String(), `"msg":"joined group"`); n != 1 {
		t.Errorf("the first member wrote %d joined group lines, want 1 (the session goes on); %s", n, state())
	}
}

// Under an eager strategy every rebalance starts a session whose "joined
// group" line names all its claims: no "claims changed" line repeats them.
func TestNoClaimsChangedLineUnderEagerRebalancing(t *testing.T) {
	const topic = "ledger"
	addrs := startClusterWith(t, topic, 4).ListenAddrs()
	route := testRoute("ledger", topic)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first, firstLogs, firstDone := startLoggedRoute(ctx, addrs, route, groupConfig(t))
	waitFor(t, "the first member to own the 4 partitions", func() bool { return len(owned(first, topic)) == 4 },
		func() string { return describe(first, topic) })
	second, secondLogs, secondDone := startLoggedRoute(ctx, addrs, route, groupConfig(t))
	waitFor(t, "each member to own 2 partitions", func() bool {
		return len(owned(first, topic)) == 2 && len(owned(second, topic)) == 2
	}, func() string { return describe(first, topic) + "\n" + describe(second, topic) })
	cancel() // the end of a session writes what its claim log gathered
	for _, done := range []chan error{firstDone, secondDone} {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(patience):
			t.Fatal("Run did not return")
		}
	}
	for _, logs := range []*logBuffer{firstLogs, secondLogs} {
		if strings.Contains(logs.String(), "claims changed") {
			t.Errorf("a claims changed line under an eager strategy:\n%s", logs)
		}
	}
}

// runLoggedRoute runs a consumer of route, every record delivered at once,
// with the sarama configuration sc until the test ends; its log goes, as
// JSON, to the buffer it returns.
func runLoggedRoute(t *testing.T, addrs []string, route config.Route, sc *sarama.Config) (*Consumer, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	c := newLoggedConsumer(addrs, route, sc, logs)
	startRun(t, c, patience)
	return c, logs
}

// startLoggedRoute is runLoggedRoute until ctx ends; done has Run's error.
func startLoggedRoute(ctx context.Context, addrs []string, route config.Route, sc *sarama.Config) (*Consumer, *logBuffer, chan error) {
	logs := &logBuffer{}
	c := newLoggedConsumer(addrs, route, sc, logs)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return c, logs, done
}

func newLoggedConsumer(addrs []string, route config.Route, sc *sarama.Config, logs *logBuffer) *Consumer {
	tg := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) { return &target.Result{}, nil })
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: tg,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), ShutdownTimeout: 5 * time.Second})
	c.offsetsEvery = 100 * time.Millisecond
	return c
}

// claimsChanged is a "claims changed" line.
type claimsChanged struct {
	Added, Revoked, Claims map[string][]int32
}

// lastClaimsChanged is the last "claims changed" line in logs.
func lastClaimsChanged(logs *logBuffer) (claimsChanged, bool) {
	var last claimsChanged
	found := false
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			claimsChanged
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "claims changed" {
			last, found = line.claimsChanged, true
		}
	}
	return last, found
}

// joinedClaims is the claims of the first "joined group" line in logs.
func joinedClaims(t *testing.T, logs *logBuffer) map[string][]int32 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line struct {
			Msg    string             `json:"msg"`
			Claims map[string][]int32 `json:"claims"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "joined group" {
			return line.Claims
		}
	}
	t.Fatalf("no joined group line in:\n%s", logs)
	return nil
}

func sortedUnion(a, b []int32) []int32 {
	set := make(map[int32]bool)
	for _, p := range append(slices.Clone(a), b...) {
		set[p] = true
	}
	return slices.Sorted(maps.Keys(set))
}
