package bridge

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A replay whose dead-letter topic the broker refuses to let it read (the
// ACLs grant the principal DESCRIBE, so the topic is listed and its offsets
// are answered, but no READ) fails with an error that names the topic and
// the grant it lacks. Before, it never ended: a warning twice a second,
// forever, and the operator's command hung. Once the grant is there, a
// replay delivers the records.
func TestReplayOfATopicItMayNotReadFails(t *testing.T) {
	rig := newReplayRig(t, 200, "oldest")
	rig.deadLetterOf(t, "orders-billing", "a", "b", "c")
	var refusing atomic.Bool
	refusing.Store(true)
	rig.cluster.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		rig.cluster.KeepControl()
		if !refusing.Load() {
			return nil, nil, false
		}
		req := kreq.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				sp.RecordBatches = []byte{}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	rep, err := refusedReplay(t, rig, "every fetch")
	if err == nil || !strings.Contains(err.Error(), "READ") || !strings.Contains(err.Error(), replayDLQ) ||
		!strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("Replay error %v; want one naming %s, the READ it lacks and the broker's refusal", err, replayDLQ)
	}
	if rep == nil || rep.Delivered != 0 || len(rep.Committed) != 0 {
		t.Fatalf("report %+v, want nothing delivered or committed", rep)
	}
	if got := rig.received(); len(got) != 0 {
		t.Fatalf("the receiver got %q", got)
	}

	refusing.Store(false)
	rep = rig.replayWith(t, ReplayOptions{Route: "orders-billing", Partition: -1, FromOffset: -1, ToOffset: -1})
	if rep.Delivered != 3 || rep.Committed[0] != 3 {
		t.Fatalf("replay once the broker lets it read: %+v; want the 3 records delivered and committed", rep)
	}
}

// A replay whose group the broker refuses the principal (an ACL grants no
// READ on the group "<route group>.replay") fails with an error that names
// that group and the grant it lacks. Before, it said only "dlq replay: kafka
// server: The client is not authorized to access this group": no group a
// configuration holds, so the operator could not tell which one to grant.
func TestReplayOfAGroupItMayNotUseNamesIt(t *testing.T) {
	rig := newReplayRig(t, 200, "oldest")
	rig.deadLetterOf(t, "orders-billing", "a")
	const group = "hookbridge.orders-billing.replay"
	rig.cluster.ControlKey(int16(kmsg.FindCoordinator), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		rig.cluster.KeepControl()
		req := kreq.(*kmsg.FindCoordinatorRequest)
		if req.CoordinatorType != 0 || (req.CoordinatorKey != group && !(len(req.CoordinatorKeys) == 1 && req.CoordinatorKeys[0] == group)) {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.ErrorCode, resp.NodeID = kerr.GroupAuthorizationFailed.Code, -1
		for _, key := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.ErrorCode, c.NodeID = key, kerr.GroupAuthorizationFailed.Code, -1
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp, nil, true
	})

	rep, err := refusedReplay(t, rig, "the group")
	if err == nil || !strings.Contains(err.Error(), group) || !strings.Contains(err.Error(), "READ") ||
		!strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("Replay error %v; want one naming group %s, the READ it lacks and the broker's refusal", err, group)
	}
	if rep != nil && rep.Delivered != 0 {
		t.Fatalf("report %+v, want nothing delivered", rep)
	}
	if got := rig.received(); len(got) != 0 {
		t.Fatalf("the receiver got %q", got)
	}
}

// refusedReplay replays route orders-billing of rig while the broker refuses
// what, and fails the test if the replay does not end by itself.
func refusedReplay(t *testing.T, rig *replayRig, what string) (*ReplayReport, error) {
	t.Helper()
	o := ReplayOptions{Route: "orders-billing", Partition: -1, FromOffset: -1, ToOffset: -1}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard only
	defer cancel()
	rep, err := rig.bridge.Replay(ctx, o)
	if ctx.Err() != nil {
		t.Fatalf("Replay did not end while the broker refused %s (%v)", what, err)
	}
	return rep, err
}
