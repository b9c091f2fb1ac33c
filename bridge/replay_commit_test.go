package bridge

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A replay whose commits the broker refuses must not end as if they went
// through: its report's offsets would be a lie, and the operator would not
// know that the next replay sends the records again. It fails, saying so;
// once commits go through, the next replay sends them again and succeeds.
func TestReplayReportsAFinalCommitThatDidNotGoThrough(t *testing.T) {
	rig := newReplayRig(t, 200, "oldest")
	var refusing atomic.Bool
	refusing.Store(true)
	rig.cluster.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		rig.cluster.KeepControl()
		if !refusing.Load() {
			return nil, nil, false
		}
		req := kreq.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.GroupAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	rig.deadLetterOf(t, "orders-billing", "a", "b", "c")

	o := ReplayOptions{Route: "orders-billing", Partition: -1, FromOffset: -1, ToOffset: -1}
	rep, err := rig.bridge.Replay(context.WithoutCancel(t.Context()), o)
	if err == nil || !strings.Contains(err.Error(), "final commit") || !strings.Contains(err.Error(), replayDLQ+"/0 (committed -1, marked 3)") {
		t.Fatalf("Replay error %v; want the final commit reported as not gone through, with the partition", err)
	}
	if rep == nil || rep.Delivered != 3 {
		t.Fatalf("report %+v, want 3 delivered", rep)
	}

	refusing.Store(false)
	rep = rig.replayWith(t, o)
	if rep.Delivered != 3 || rep.Committed[0] != 3 {
		t.Fatalf("second replay: %+v; want the 3 records delivered again and committed", rep)
	}
	if got := len(rig.received()); got != 6 {
		t.Errorf("the receiver got %d requests, want 6 (each record twice)", got)
	}
}
