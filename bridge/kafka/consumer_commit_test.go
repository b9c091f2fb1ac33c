package kafka

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
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
	r := newCommitRig(t, "commits", kerr.GroupAuthorizationFailed.Code)
	r.refusing.Store(true)
	r.c.offsetsEvery = 100 * time.Millisecond
	r.c.commitsStale = 2 * time.Second
	r.run(t)
	defer r.stop()

	produceN(t, r.addrs, r.topic, 10)
	state := func() string { return describe(r.c, r.topic) }
	waitFor(t, "10 deliveries", func() bool { return r.delivered.Load() == 10 }, state)
	waitFor(t, "Ready to report the commits", func() bool {
		err := r.c.Ready()
		return err != nil && strings.Contains(err.Error(), "offsets not committed") && strings.Contains(err.Error(), r.topic+"/0")
	}, state)
	admin := newAdmin(t, r.addrs)
	if got := committed(t, admin, r.group(), r.topic); got == 10 {
		t.Fatalf("committed offset %d although every commit was refused", got)
	}

	r.refusing.Store(false)
	waitFor(t, "the commit to go through and Ready to be nil", func() bool {
		return r.c.Ready() == nil && committed(t, admin, r.group(), r.topic) == 10
	}, state)
}

// commitRig is a consumer of a one-partition topic whose target counts its
// deliveries, on a cluster that refuses offset commits while refusing is set.
type commitRig struct {
	c         *Consumer
	topic     string
	addrs     []string
	cluster   *kfake.Cluster
	refusing  atomic.Bool
	delivered atomic.Int32
	logs      logBuffer
	cancel    context.CancelFunc
	done      chan error
}

// newCommitRig makes the rig of topic; refused commits get code.
func newCommitRig(t *testing.T, topic string, code int16) *commitRig {
	t.Helper()
	return newCommitRigWith(t, topic, code, 1, groupConfig(t))
}

// newCommitRigWith is newCommitRig of a topic of the given partitions, its
// consumer with the sarama configuration sc.
func newCommitRigWith(t *testing.T, topic string, code int16, partitions int32, sc *sarama.Config) *commitRig {
	t.Helper()
	r := &commitRig{topic: topic, done: make(chan error, 1)}
	cluster := startClusterWith(t, topic, partitions)
	r.addrs, r.cluster = cluster.ListenAddrs(), cluster
	refuseCommits(cluster, code, &r.refusing)
	tg := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		r.delivered.Add(1)
		return &target.Result{}, nil
	})
	r.c = NewConsumer(ConsumerOptions{Route: testRoute(topic, topic), Brokers: r.addrs, Sarama: sc, Target: tg,
		Logger: slog.New(slog.NewTextHandler(&r.logs, nil)), ShutdownTimeout: 5 * time.Second})
	return r
}

func (r *commitRig) group() string { return r.c.opts.Route.GroupID() }

// run starts the consumer; stop (or the test's end) stops it.
func (r *commitRig) run(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() { r.done <- r.c.Run(ctx) }()
}

// stop ends the consumer's context (SIGTERM) and returns what Run returned.
func (r *commitRig) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(patience):
		return errors.New("Run did not return")
	}
}

// At the end of a session (here: shutdown) the consumer commits its claims'
// marks and checks with the coordinator that they are committed, trying
// again while the coordinator refuses (it moved, say) rather than leaving
// the restarted bridge to redeliver what was delivered; if they never are,
// Run says so instead of returning nil.
func TestConsumerFinalCommitIsVerified(t *testing.T) {
	for _, transient := range []bool{true, false} {
		t.Run(map[bool]string{true: "coordinator back", false: "commits refused"}[transient], func(t *testing.T) {
			r := newCommitRig(t, "final", kerr.NotCoordinator.Code)
			r.run(t)
			admin := newAdmin(t, r.addrs)
			state := func() string { return describe(r.c, r.topic) }

			produceN(t, r.addrs, r.topic, 10)
			waitFor(t, "10 deliveries", func() bool { return r.delivered.Load() == 10 }, state) // the group exists
			waitFor(t, "10 committed", func() bool { return committed(t, admin, r.group(), r.topic) == 10 }, state)
			r.refusing.Store(true)
			produceN(t, r.addrs, r.topic, 5)
			waitFor(t, "15 deliveries", func() bool { return r.delivered.Load() == 15 }, state)
			if transient {
				go func() {
					time.Sleep(500 * time.Millisecond) // the coordinator is back a moment later
					r.refusing.Store(false)
				}()
			}
			err := r.stop() // SIGTERM
			r.refusing.Store(false)
			got := committed(t, admin, r.group(), r.topic)
			switch {
			case transient && (err != nil || got != 15):
				t.Errorf("Run = %v, committed %d; want nil and 15", err, got)
			case !transient && (err == nil || !strings.Contains(err.Error(), "final commit") || got != 10):
				t.Errorf("Run = %v, committed %d; want an error about the final commit, and 10", err, got)
			case !transient && !r.logs.contains("shutdown timeout reached with no record in flight: the coordinator has not taken the final commit"):
				// Every record was delivered: the log says what the
				// shutdown waited for, not that records were abandoned.
				t.Errorf("the log does not say what held the shutdown:\n%s", r.logs.String())
			}
		})
	}
}

// Leaving the group at shutdown is a courtesy to the group's other members
// (they take the partitions at once instead of after the session timeout):
// when the coordinator refuses it, what was delivered is committed all the
// same, so Run returns nil (a warning is logged) and SIGTERM exits 0.
func TestConsumerLeaveRefusedAtShutdownIsNoFailure(t *testing.T) {
	r := newCommitRig(t, "leave", kerr.NotCoordinator.Code)
	var leaves atomic.Int32
	cluster := r.cluster
	cluster.ControlKey(int16(kmsg.LeaveGroup), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		leaves.Add(1)
		resp := kreq.(*kmsg.LeaveGroupRequest).ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil, true
	})
	r.run(t)
	admin := newAdmin(t, r.addrs)
	state := func() string { return describe(r.c, r.topic) }
	produceN(t, r.addrs, r.topic, 10)
	waitFor(t, "10 deliveries", func() bool { return r.delivered.Load() == 10 }, state)
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v, want nil: the leave was refused, the commit was not", err)
	}
	if leaves.Load() == 0 {
		t.Fatal("the consumer never asked to leave the group")
	}
	if got := committed(t, admin, r.group(), r.topic); got != 10 {
		t.Errorf("committed %d, want 10", got)
	}
}
