package kafka

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// answerFromLaggingLeader makes the cluster answer every fetch of topic,
// while lagging is set, as a leader elected a moment ago whose high
// watermark has not caught up with its predecessor's: nothing to read, the
// high watermark at hwm. It counts the fetches that do not wait
// (RecordBefore's) in checks.
func answerFromLaggingLeader(cluster *kfake.Cluster, topic string, hwm int64, lagging *atomic.Bool, checks *atomic.Int32) {
	cluster.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := kreq.(*kmsg.FetchRequest)
		if !lagging.Load() {
			return nil, nil, false
		}
		if req.MaxWaitMillis == 0 {
			checks.Add(1)
		}
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				if rt.Topic == topic || rt.Topic == "" {
					sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hwm, hwm, 0
					sp.RecordBatches = []byte{} // no records (sarama reads a null as malformed)
				} else {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// The check of a partition's empty tail (transaction markers past its
// last record) asks the leader whether a record lies between the next
// offset to commit and the latest offset, and marks up to the latest when
// none does. A leader elected since the latest offset was looked up may
// have a high watermark below it for a moment, and shows nothing past that:
// the check took that for an empty tail and committed past records it had
// not delivered (lost if the replica then died).
func TestEmptyTailCheckTrustsNoLeaderBehindTheEnd(t *testing.T) {
	r := newCommitRig(t, "lagging-leader", 0)
	r.c.offsetsEvery = 100 * time.Millisecond
	var lagging atomic.Bool
	var checks atomic.Int32
	answerFromLaggingLeader(r.cluster, r.topic, 5, &lagging, &checks)
	r.run(t)
	defer r.stop()
	admin := newAdmin(t, r.addrs)
	state := func() string {
		return fmt.Sprintf("delivered %d, committed %d; %s", r.delivered.Load(), committed(t, admin, r.group(), r.topic), describe(r.c, r.topic))
	}

	produceN(t, r.addrs, r.topic, 5)
	waitFor(t, "the first 5 records delivered and committed", func() bool {
		return r.delivered.Load() == 5 && committed(t, admin, r.group(), r.topic) == 5
	}, state)

	// Two records more on the old leader; the partition's latest offset is
	// 7, and the leader the consumer now reaches shows nothing past 5.
	// Records 5 and 6 are not delivered (but for one a fetch waiting on the
	// old leader may bring), and nothing may be marked past them.
	lagging.Store(true)
	produceN(t, r.addrs, r.topic, 2)
	waitFor(t, "the latest offset looked up", func() bool { return partitionLatest(r.c, r.topic, 0) == 7 }, state)
	from := checks.Load()
	markedPast := func() bool {
		marked, _ := partitionPosition(r.c, r.topic, 0)
		return marked > int64(r.delivered.Load())
	}
	waitFor(t, "three checks of the tail", func() bool { return checks.Load() >= from+3 || markedPast() }, state)
	// What the consumer marks, sarama commits within a second. (A fetch
	// that waited on the old leader may have brought record 5.)
	if marked, _ := partitionPosition(r.c, r.topic, 0); marked > int64(r.delivered.Load()) {
		t.Fatalf("offset %d marked for commit with %d records delivered", marked, r.delivered.Load())
	}

	lagging.Store(false)
	waitFor(t, "every record delivered and committed", func() bool {
		return r.delivered.Load() == 7 && committed(t, admin, r.group(), r.topic) == 7
	}, state)
}

// partitionPosition is the tracker's position of partition of topic: the
// offset marked for commit, and the first record held, or -1s.
func partitionPosition(c *Consumer, topic string, partition int32) (marked, first int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.parts[topicPartition{topic, partition}]; p != nil {
		return p.tr.position()
	}
	return -1, -1
}

// partitionLatest is the latest offset the consumer looked up for
// partition of topic, or -1.
func partitionLatest(c *Consumer, topic string, partition int32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.parts[topicPartition{topic, partition}]; p != nil {
		return p.latest.Load()
	}
	return -1
}
