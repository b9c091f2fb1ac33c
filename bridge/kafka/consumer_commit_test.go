package kafka

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// refuseCommits makes the cluster answer every OffsetCommit with code while
// on is set.
func refuseCommits(cluster *kfake.Cluster, code int16, on *atomic.Bool) {
	cluster.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !on.Load() {
			return nil, nil, false
		}
		req := kreq.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// When the broker refuses the group's offset commits, the route keeps
// delivering (at-least-once holds: nothing is committed early), but Ready
// says so once it has lasted: a restart would redeliver everything since the
// committed offset, and sarama only logs the refusals. Once commits go
// through again, Ready is nil again.
func TestConsumerReportsFailingCommits(t *testing.T) {
	const topic = "commits"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	var refusing atomic.Bool
	refusing.Store(true)
	refuseCommits(cluster, kerr.GroupAuthorizationFailed.Code, &refusing)

	route := testRoute("commits", topic)
	var delivered atomic.Int32
	tg := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		delivered.Add(1)
		return &target.Result{}, nil
	})
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: groupConfig(t), Target: tg,
		Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
	c.offsetsEvery = 100 * time.Millisecond
	c.commitsStale = 2 * time.Second
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	produceN(t, addrs, topic, 10)
	state := func() string { return describe(c, topic) }
	waitFor(t, "10 deliveries", func() bool { return delivered.Load() == 10 }, state)
	waitFor(t, "Ready to report the commits", func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), "offsets not committed") && strings.Contains(err.Error(), topic+"/0")
	}, state)
	admin := newAdmin(t, addrs)
	if got := committed(t, admin, route.GroupID(), topic); got == 10 {
		t.Fatalf("committed offset %d although every commit was refused", got)
	}

	refusing.Store(false)
	waitFor(t, "the commit to go through and Ready to be nil", func() bool {
		return c.Ready() == nil && committed(t, admin, route.GroupID(), topic) == 10
	}, state)
}

// At the end of a session (here: shutdown) the consumer commits its claims'
// marks and checks with the coordinator that they are committed, trying
// again while the coordinator refuses (it moved, say) rather than leaving
// the restarted bridge to redeliver what was delivered; if they never are,
// Run says so instead of returning nil.
func TestConsumerFinalCommitIsVerified(t *testing.T) {
	for _, transient := range []bool{true, false} {
		t.Run(map[bool]string{true: "coordinator back", false: "commits refused"}[transient], func(t *testing.T) {
			topic := "final"
			cluster := startCluster(t, topic)
			addrs := cluster.ListenAddrs()
			var refusing atomic.Bool
			refuseCommits(cluster, kerr.NotCoordinator.Code, &refusing)
			route := testRoute("final", topic)
			var delivered atomic.Int32
			tg := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
				delivered.Add(1)
				return &target.Result{}, nil
			})
			c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: groupConfig(t), Target: tg,
				Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			admin := newAdmin(t, addrs)
			state := func() string { return describe(c, topic) }

			produceN(t, addrs, topic, 10)
			waitFor(t, "10 deliveries", func() bool { return delivered.Load() == 10 }, state) // the group exists
			waitFor(t, "10 committed", func() bool { return committed(t, admin, route.GroupID(), topic) == 10 }, state)
			refusing.Store(true)
			produceN(t, addrs, topic, 5)
			waitFor(t, "15 deliveries", func() bool { return delivered.Load() == 15 }, state)
			cancel() // SIGTERM
			if transient {
				go func() {
					time.Sleep(500 * time.Millisecond) // the coordinator is back a moment later
					refusing.Store(false)
				}()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(patience):
				t.Fatal("Run did not return")
			}
			refusing.Store(false)
			got := committed(t, admin, route.GroupID(), topic)
			switch {
			case transient && (err != nil || got != 15):
				t.Errorf("Run = %v, committed %d; want nil and 15", err, got)
			case !transient && (err == nil || !strings.Contains(err.Error(), "final commit") || got != 10):
				t.Errorf("Run = %v, committed %d; want an error about the final commit, and 10", err, got)
			}
		})
	}
}
