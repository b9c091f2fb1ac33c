package bridge

// A replay whose partition consumer sarama shuts down in the middle of a
// session (its fetch position fell below the log start: retention, or
// kafka-delete-records, moved past it while a throttled replay ran) must not
// wait for ever.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
)

// The log start of the dead-letter topic moves past the replay's fetch
// position while the replay runs (retention, or an operator's
// kafka-delete-records). sarama answers OFFSET_OUT_OF_RANGE by shutting the
// claim's partition consumer down and closing its messages, while the group
// session goes on. The replay must go on from the committed offset (sarama
// resets an out-of-range offset to the oldest) and finish with the records
// the topic still holds; it used to wait for the end of a session that
// nothing ended, for ever.
func TestReplayGoesOnWhenTheLogStartPassesItsFetchPosition(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	const n, deleteBefore = 3000, 2990
	pad := strings.Repeat("x", 8<<10) // sarama buffers some 1800 of them: 3000 reach past that
	cl, err := kgo.NewClient(kgo.SeedBrokers(rig.addrs...), kgo.DefaultProduceTopic(replayDLQ))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		r := &kgo.Record{Value: []byte(fmt.Sprintf("r%04d %s", i, pad)), Headers: []kgo.RecordHeader{
			{Key: dispatch.HeaderErrorRoute, Value: []byte("orders-billing")},
			{Key: dispatch.HeaderErrorTopic, Value: []byte(replaySource)},
			{Key: dispatch.HeaderErrorPartition, Value: []byte("0")},
			{Key: dispatch.HeaderErrorOffset, Value: []byte(fmt.Sprint(i))},
		}}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// At the first request, the records below deleteBefore go, far past
	// what the replay's consumer has fetched by then.
	var once sync.Once
	rig.onBody = func(string) {
		once.Do(func() {
			admin, err := sarama.NewClusterAdmin(rig.addrs, sarama.NewConfig())
			if err != nil {
				t.Error(err)
				return
			}
			defer admin.Close()
			if err := admin.DeleteRecords(replayDLQ, map[int32]int64{0: deleteBefore}); err != nil {
				t.Error(err)
			}
		})
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		rep *ReplayReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := rig.bridge.Replay(ctx, ReplayOptions{Route: "orders-billing", Partition: -1, FromOffset: -1, ToOffset: -1})
		done <- result{rep, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(time.Minute): // a hang guard: the replay needs a few seconds
		cancel()
		res = <-done
		t.Fatalf("the replay did not finish after the log start moved; interrupted, it reports %+v", res.rep)
	}
	if res.err != nil {
		t.Fatalf("Replay: %v", res.err)
	}
	got := map[string]bool{}
	for _, b := range rig.received() {
		got[b[:5]] = true
	}
	for i := deleteBefore; i < n; i++ {
		if id := fmt.Sprintf("r%04d", i); !got[id] {
			t.Errorf("record %s, still in the topic, was not replayed", id)
		}
	}
	if res.rep.Committed[0] != n {
		t.Fatalf("report %+v: want committed %d", res.rep, n)
	}
}
