package bridge

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/kafka"
)

// sessions is a member of the replay group that counts its group sessions
// and holds its claims until the session ends: a replay that runs.
type sessions struct {
	joinOnly
	n atomic.Int32
}

func (s *sessions) Setup(sess sarama.ConsumerGroupSession) error {
	s.n.Add(1)
	return s.joinOnly.Setup(sess)
}

// A dry run while a replay of the route runs lists every record and leaves
// the running replay alone. It joined the replay group: the running replay
// lost partitions to it (and ended without replaying them, reporting
// nothing left), and the dry run listed only the partitions it was given;
// given none, as here, it waited for ever.
func TestDryRunDoesNotJoinTheReplayGroup(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	rig.deadLetterOf(t, "orders-billing", "a", "b", "c")

	sc, err := kafka.NewConfig(rig.bridge.cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	sc.Consumer.Group.Rebalance.GroupStrategies = replayStrategies() // as a replay's
	running, err := sarama.NewConsumerGroup(rig.addrs, ReplayGroup("hookbridge.orders-billing"), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	member := &sessions{joinOnly: joinOnly{joined: make(chan struct{})}}
	mctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() {
		for mctx.Err() == nil {
			_ = running.Consume(mctx, []string{replayDLQ}, member)
		}
	}()
	select {
	case <-member.joined:
	case <-time.After(time.Minute): // a hang guard only
		t.Fatal("the running replay never joined its group")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a hang guard only
	defer cancel()
	var out strings.Builder
	rep, err := rig.bridge.Replay(ctx, ReplayOptions{Route: "orders-billing", DryRun: true, Out: &out,
		Partition: -1, FromOffset: -1, ToOffset: -1})
	if err != nil {
		t.Fatalf("dry run: %v; listed:\n%s", err, out.String())
	}
	for _, at := range []string{replayDLQ + "/0@0 ", replayDLQ + "/0@1 ", replayDLQ + "/0@2 "} {
		if !strings.Contains(out.String(), at) {
			t.Fatalf("the listing has no %q:\n%s", at, out.String())
		}
	}
	if rep.Seen != 3 || rep.Replayed != 3 || len(rep.Committed) != 0 {
		t.Fatalf("report %+v, want 3 read and listed, nothing committed", rep)
	}
	if n := member.n.Load(); n != 1 {
		t.Fatalf("the running replay's group sessions: %d, want 1 (the dry run rebalanced its group)", n)
	}
}
